#!/usr/bin/env bash
# Build litedeploy's image (litedeploy:<version> and litedeploy:latest): the self-contained
# entrypoint at /opt/litedeploy, for `COPY --from` into any glibc image and for one-shot
# migration containers, and the host CLI `deploy` with the docker CLI and Compose v2. Installs
# what a fresh Debian/Ubuntu machine lacks (venv, Docker engine, Compose v2, the local base
# images, the wheelhouse, the docker CLI image); does nothing when the image is up to date.
# Starts a Docker engine only when none answers, and stops only the one it started.
set -euo pipefail
# shellcheck source=scripts/bootstrap.sh
source "$(dirname "$0")/bootstrap.sh"
# shellcheck source=scripts/docker.sh
source "$(dirname "$0")/docker.sh"
cd "$ROOT"
trap stop_docker_engine EXIT

ensure_venv
ensure_docker_engine
ensure_base_image
ensure_nopython_image
ensure_wheelhouse
ensure_docker_cli_image
ensure_litedeploy_image
