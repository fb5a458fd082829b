#!/usr/bin/env bash
# The whole test suite, from a fresh Debian/Ubuntu machine: installs what it needs, then runs
# ruff, mypy --strict and pytest (unit, CLI and drizzle interop tests).
# Extra arguments go to pytest, e.g. scripts/test.sh -k interop
set -euo pipefail
# shellcheck source=scripts/bootstrap.sh
source "$(dirname "$0")/bootstrap.sh"
cd "$ROOT"

ensure_venv
ensure_drizzle_harness

say "ruff"
ruff check .
ruff format --check .
say "mypy --strict"
mypy
say "pytest"
pytest "$@"
