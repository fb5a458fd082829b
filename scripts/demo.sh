#!/usr/bin/env bash
# The main job, end to end: deploy the example stack (demo/Dockerfile + docker-compose.yml, database
# bind-mounted at ./data) through three releases with `deploy`:
#   v1  first deploy;  v2  one migration, deployed;  v3  migrates, then crashes on boot: rolled
#   back to v2 with the pre-migration database restored.
# Installs what a fresh Debian/Ubuntu machine lacks (Python venv, Docker engine and Compose) and
# leaves the stack running on http://127.0.0.1:${APP_PORT:-8000}. Stop it with:
#   docker compose -p litedeploy-demo down
set -euo pipefail
# shellcheck source=scripts/bootstrap.sh
source "$(dirname "$0")/bootstrap.sh"
# shellcheck source=scripts/docker.sh
source "$(dirname "$0")/docker.sh"
cd "$ROOT"

ensure_venv
ensure_docker_engine
ensure_compose
# The public base image when a registry answers; otherwise one built locally with debootstrap.
if docker image inspect python:3.12-slim >/dev/null 2>&1 || docker pull -q python:3.12-slim >/dev/null 2>&1; then
  base=python:3.12-slim
else
  ensure_base_image
  base=$LITEDEPLOY_BASE_IMAGE
fi
# litedeploy's own image (the self-contained entrypoint), which the demo copies it from.
ensure_base_image
ensure_nopython_image
ensure_wheelhouse
ensure_litedeploy_image

build() {  # quiet unless it fails (the legacy builder prints a deprecation notice each time)
  local log
  log=$(mktemp)
  docker build -q "$@" >/dev/null 2>"$log" || { cat "$log" >&2; rm -f "$log"; exit 1; }
  rm -f "$log"
}
say "building the releases v1, v2, v3 (FROM $base, the entrypoint from $LITEDEPLOY_IMAGE)"
build --build-arg BASE_IMAGE="$base" --build-arg LITEDEPLOY_IMAGE="$LITEDEPLOY_IMAGE" \
  -t litedeploy-demo:v1 demo
build -t litedeploy-demo:v2 demo/releases/v2
build -t litedeploy-demo:v3 demo/releases/v3

export COMPOSE_PROJECT_NAME=litedeploy-demo APP_PORT=${APP_PORT:-8000}
say "starting from nothing: removing the demo's previous stack, ./data and ./.litedeploy"
docker compose down -t 0 >/dev/null 2>&1 || true
rm -rf data .litedeploy

run() { printf '\n$ %s\n' "$*"; "$@"; }
show() { printf '\n$ curl -s http://127.0.0.1:%s/products\n' "$APP_PORT"
         python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
           "http://127.0.0.1:$APP_PORT/products"; }

run deploy --tag v1
say "the shop gets products and reviews"
python3 - data/app.db <<'PY'
import sqlite3, sys
with sqlite3.connect(sys.argv[1]) as db:
    db.execute("PRAGMA foreign_keys = ON")
    db.executemany("INSERT INTO products(id, title, price, sku) VALUES (?, ?, ?, ?)",
                   [(1, "Lamp", 1250, "L-1"), (2, "Desk", 9900, "D-1"), (3, "Chair", 4500, "C-1")])
    db.executemany("INSERT INTO reviews(product_id, body, stars) VALUES (?, ?, ?)",
                   [(1, "great", 5), (2, "ok", 3), (2, "wobbly", 2), (3, "comfy", 4)])
PY
show
run deploy --tag v2
set +e
run deploy --tag v3
code=$?
set -e
printf '(deploy exited %s: failed and rolled back)\n' "$code"
show
run deploy status
run deploy history
printf '\nThe stack is running on http://127.0.0.1:%s; stop it with: docker compose -p litedeploy-demo down\n' "$APP_PORT"
