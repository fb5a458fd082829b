#!/usr/bin/env bash
# The whole test suite, from a fresh Debian/Ubuntu machine: installs what it needs, then runs
# ruff, mypy --strict and pytest (unit, CLI, drizzle interop and Docker deploy tests).
# Starts a Docker engine only when none answers, and stops only the one it started.
# Extra arguments go to pytest, e.g. scripts/test.sh -k interop, or scripts/test.sh -m docker
set -euo pipefail
# shellcheck source=scripts/bootstrap.sh
source "$(dirname "$0")/bootstrap.sh"
# shellcheck source=scripts/docker.sh
source "$(dirname "$0")/docker.sh"
cd "$ROOT"
trap stop_docker_engine EXIT

ensure_venv
ensure_drizzle_harness
ensure_node_shop_modules # after the harness: reuses its compiled better-sqlite3
ensure_docker_engine
ensure_compose
ensure_operator_user # after the engine: the docker group exists once docker.io is installed
ensure_base_image
ensure_nopython_image
ensure_wheelhouse
ensure_docker_cli_image # the host's docker CLI and Compose v2, for the image's `deploy`
ensure_litedeploy_image # the bundle image, FROM the local base images, from the wheelhouse
ensure_node_base_image
ensure_proxy_image # nginx for the example stack (docker-compose.yml: proxy)

say "ruff"
ruff check .
ruff format --check .
say "mypy --strict"
mypy
say "pytest"
pytest "$@"
