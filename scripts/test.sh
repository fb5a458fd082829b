#!/usr/bin/env bash
# The whole test suite, from a fresh Debian/Ubuntu machine: installs what it needs, then runs
# ruff, mypy --strict and pytest (unit, CLI, drizzle interop and Docker deploy tests).
# Starts a Docker engine only when none answers, and stops only the one it started.
# Extra arguments go to one pytest run, e.g. scripts/test.sh -k interop, or scripts/test.sh -m docker;
# without them the Docker and the other tests run side by side (see the end).
set -euo pipefail
# shellcheck source=scripts/bootstrap.sh
source "$(dirname "$0")/bootstrap.sh"
# shellcheck source=scripts/docker.sh
source "$(dirname "$0")/docker.sh"
# shellcheck source=scripts/engines.sh
source "$(dirname "$0")/engines.sh"
cd "$ROOT"
stop_all() {
  stop_fleet_sshd || true
  stop_fleet_engines || true
  stop_docker_engine
}
trap stop_all EXIT

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
ensure_fleet_engines 3 # three more engines for the fleet tests (tests/deploy/test_fleet.py)
ensure_fleet_sshd      # one of them reached over ssh://
export FLEET_ENGINES FLEET_SSH_ENDPOINTS FLEET_SSH_PATH

say "ruff"
ruff check .
ruff format --check .
say "mypy --strict"
mypy
if [ $# -gt 0 ]; then
  say "pytest $*"
  pytest "$@"
  exit
fi
# The Docker tests mostly wait on containers and the others mostly compute, so on a small machine
# they run side by side: two pytest processes, one per side of the `docker` marker (the fleet's
# Docker tests, on their own engines, follow the non-Docker ones on the second side). That
# side's report is printed when both are done; the exit code is 0 only when both passed.
other_log=$(mktemp -t litedeploy-pytest.XXXXXX.log)
say "pytest -m 'not docker', then -m fleet (in the background; the report follows the Docker tests')"
(
  rc=0
  pytest -m "not docker" || rc=$?
  pytest -m fleet || rc=$?
  exit "$rc"
) >"$other_log" 2>&1 &
other_pid=$!
say "pytest -m 'docker and not fleet'"
docker_rc=0
pytest -m "docker and not fleet" || docker_rc=$?
other_rc=0
wait "$other_pid" || other_rc=$?
say "pytest -m 'not docker', then -m fleet (exit $other_rc)"
cat "$other_log"
rm -f "$other_log"
if [ "$docker_rc" -ne 0 ] || [ "$other_rc" -ne 0 ]; then
  echo "error: pytest failed (Docker tests: exit $docker_rc, the others: exit $other_rc)" >&2
  exit 1
fi
