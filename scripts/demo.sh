#!/usr/bin/env bash
# The main job, end to end: deploy the example stack (docker-compose.yml: the Node shop in
# examples/node-shop, drizzle-orm on better-sqlite3, database bind-mounted at ./data) through its
# four releases with `deploy`:
#   v1  users and products;  v2  reviews, ON DELETE CASCADE: expand-only, so it starts beside v1
#   behind the nginx proxy and takes over with no failed request (a client counts them);  v3
#   drizzle-kit's rebuild of products, which drizzle's own migrate() would answer by deleting
#   every review (shown on a copy first): recreated;  v4  migrates, then crashes: rolled back to
#   v3 with the database restored.
# The images have no Python: the entrypoint comes with one COPY from the litedeploy image
# (litedeploy:<version>, built from this tree by the repository's Dockerfile).
# Installs what a fresh Debian/Ubuntu machine lacks (Python venv, Node's node_modules, a Docker
# engine and Compose, the base images) and leaves the stack running on
# http://127.0.0.1:${APP_PORT:-8000}. Stop it with: docker compose -p litedeploy-node-shop down
set -euo pipefail
# shellcheck source=scripts/bootstrap.sh
source "$(dirname "$0")/bootstrap.sh"
# shellcheck source=scripts/docker.sh
source "$(dirname "$0")/docker.sh"
cd "$ROOT"

ensure_venv
ensure_node_shop_modules
ensure_docker_engine
ensure_compose
ensure_node_base_image
# litedeploy's own image (the self-contained entrypoint bundle, the repository's Dockerfile),
# built from local base images and the wheelhouse: the shop's images copy it from there.
ensure_base_image
ensure_nopython_image
ensure_wheelhouse
ensure_litedeploy_image
ensure_proxy_image # nginx in front of the shop (docker-compose.yml: proxy)

say "building the releases v1..v4 (FROM $LITEDEPLOY_NODE_BASE_IMAGE, /opt/litedeploy from $LITEDEPLOY_IMAGE)"
for release in v1 v2 v3 v4; do
  args=(--build-arg NODE_BASE="$LITEDEPLOY_NODE_BASE_IMAGE" --build-arg LITEDEPLOY_IMAGE="$LITEDEPLOY_IMAGE")
  case $release in
    v4) args+=(--build-arg SHOP_FAIL=crash) ;; # v4 ships ./drizzle, the app's newest migrations
    *) args+=(--build-arg MIGRATIONS="releases/$release/drizzle") ;;
  esac
  quiet_build "${args[@]}" -t "litedeploy-node-shop:$release" examples/node-shop
done

export COMPOSE_PROJECT_NAME=litedeploy-node-shop APP_PORT=${APP_PORT:-8000}
say "starting from nothing: removing the demo's previous stack, ./data, ./.litedeploy and its rollback tags"
docker compose down -t 0 >/dev/null 2>&1 || true
rm -rf data proxy .litedeploy
# deploy prunes only the rollback tags its history names: with the history gone, the previous
# run's would stay forever
mapfile -t old_tags < <(docker image ls litedeploy-node-shop --format '{{.Repository}}:{{.Tag}}' | grep ':rollback-' || true)
if [ "${#old_tags[@]}" -gt 0 ]; then docker image rm "${old_tags[@]}" >/dev/null || true; fi
work=$(mktemp -d -t litedeploy-node-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT # the engine stays up (if this started it): the stack keeps running

run() { printf '\n$ %s\n' "$*"; "$@"; }
api() { # METHOD PATH [JSON]: the request, shown as curl would be typed, and the answer
  local url="http://127.0.0.1:$APP_PORT$2"
  printf '$ curl -s %s%s\n' "${3:+-X $1 -d '$3' }" "$url"
  "$VENV/bin/python" - "$1" "$url" "${3:-}" <<'PY'
import sys, urllib.error, urllib.request
method, url, body = sys.argv[1:]
request = urllib.request.Request(url, data=body.encode() or None, method=method,
                                 headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(request, timeout=5) as response:
        print(response.read().decode())
except urllib.error.HTTPError as error:
    print(f"{error.read().decode()}  (HTTP {error.code})")
PY
}

run deploy --tag v1
say "the shop gets three products through its API"
api POST /products '{"name": "Lamp", "description": "Brass, 40 cm", "price": 4900}'
api POST /products '{"name": "Desk", "description": "", "price": 24900}'
api POST /products '{"name": "Chair", "description": "Oak", "price": 12900}'

say "v2 only adds a table (expand-only): it starts beside v1 and the proxy switches to it when it is healthy; a client reads through the proxy every 20 ms meanwhile"
probe_flag="$work/probe.stop"
"$VENV/bin/python" - "http://127.0.0.1:$APP_PORT/products" "$probe_flag" >"$work/probe.out" <<'PY' &
import os, sys, time, urllib.request
url, flag = sys.argv[1:]
ok = failed = 0
while not os.path.exists(flag):
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read()
            ok += 1
    except OSError:
        failed += 1
    time.sleep(max(0.0, 0.02 - (time.monotonic() - started)))
print(f"the client made {ok + failed} requests through the proxy during the deploy: {failed} failed")
PY
probe_pid=$!
sleep 0.5
run deploy --tag v2
touch "$probe_flag"
wait "$probe_pid"
cat "$work/probe.out"
say "v2 takes reviews"
api POST /reviews '{"product_id": 1, "author": "ann", "rating": 5, "body": "Bright and warm"}'
api POST /reviews '{"product_id": 2, "author": "bo", "rating": 3, "body": "Wobbles a bit"}'
api POST /reviews '{"product_id": 2, "author": "cy", "rating": 4, "body": "Roomy"}'
api POST /reviews '{"product_id": 3, "author": "di", "rating": 5, "body": "Sturdy"}'
api GET /products

say "v3 makes a product's description optional: drizzle-kit rebuilds products (0002_optional_description)"
sed 's/^/    /' examples/node-shop/drizzle/0002_optional_description.sql
echo
say "what drizzle's own migrate() does with v3, on a copy of this database (the app's src/migrate.js)"
mkdir "$work/copy"
"$VENV/bin/python" - data/app.db "$work/copy/app.db" <<'PY'
import sqlite3, sys
source, target = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True), sqlite3.connect(sys.argv[2])
source.backup(target)  # SQLite's online backup: a consistent copy while v2 serves
target.close()
source.close()
PY
run docker run --rm --network none --entrypoint node -v "$work/copy:/data" litedeploy-node-shop:v3 src/migrate.js
"$VENV/bin/python" - data/app.db "$work/copy/app.db" <<'PY'
import sqlite3, sys
def reviews(path):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute("SELECT id, product_id, author, body FROM reviews ORDER BY id").fetchall()
live, migrated = reviews(sys.argv[1]), reviews(sys.argv[2])
lost = [r for r in live if r not in migrated]
print(f"drizzle's migrate() reported success and lost {len(lost)} of {len(live)} reviews:")
for row in lost:
    print("  reviews row id={} product_id={} author={!r} body={!r}".format(*row))
PY

run deploy --tag v3
printf '\n$ docker logs $(docker compose ps -q app) 2>&1 | grep ^entrypoint:  # v3'"'"'s start\n'
docker logs "$(docker compose ps -q app)" 2>&1 | grep '^entrypoint: ' || true
api GET /products

set +e
run deploy --tag v4
code=$?
set -e
printf '(deploy exited %s: failed and rolled back)\n' "$code"
api GET /products
run deploy status
run deploy history
printf '\nThe stack is running on http://127.0.0.1:%s; stop it with: docker compose -p %s down\n' \
  "$APP_PORT" "$COMPOSE_PROJECT_NAME"
