# shellcheck shell=bash
# Sourced by scripts/test.sh after bootstrap.sh: the Docker engine, both Compose versions, the
# base image and the wheelhouse that the deploy integration tests need (see
# ../shared/docs/docker-here.md for why each step looks the way it does).
# Idempotent: every step looks at the machine first and does nothing when it is already done.

LITEDEPLOY_BASE_IMAGE=${LITEDEPLOY_BASE_IMAGE:-litedeploy-base:bookworm}
# Debian 12 without Python: the litedeploy image's base in tests, and proof that the bundle
# needs no Python.
LITEDEPLOY_NOPYTHON_IMAGE=${LITEDEPLOY_NOPYTHON_IMAGE:-litedeploy-bundle-nopython:bookworm}
COMPOSE_PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
# The docker CLI and the Compose v2 plugin that the litedeploy image carries for `deploy`: this
# host's own, in an image FROM scratch (the Dockerfile's DOCKER_CLI_IMAGE; no registry here).
LITEDEPLOY_DOCKER_CLI_IMAGE=${LITEDEPLOY_DOCKER_CLI_IMAGE:-litedeploy-docker-cli:local}
# The example stack's reverse proxy (examples/proxy): nginx-light on a local Debian (the public
# nginx image cannot be pulled here), under the tag docker-compose.yml names.
LITEDEPLOY_PROXY_BASE_IMAGE=${LITEDEPLOY_PROXY_BASE_IMAGE:-litedeploy-nginx-base:bookworm}
LITEDEPLOY_PROXY_IMAGE=litedeploy-proxy:nginx
STARTED_DOCKERD_PID=""

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_docker_engine() {
  # A Docker engine that answers; started here (and only then stopped by stop_docker_engine)
  # when none runs and we are root, as on a fresh CI machine.
  command -v dockerd >/dev/null || apt_install docker.io
  local version
  if version=$(docker info --format '{{.ServerVersion}}' 2>/dev/null); then
    say "Docker engine $version: already running"
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: no Docker engine answers and only root can start one here;" \
      "start dockerd (or the docker service) and run this again" >&2
    exit 1
  fi
  local log
  log=$(mktemp -t litedeploy-dockerd.XXXXXX.log)
  say "starting dockerd (log: $log)"
  dockerd >"$log" 2>&1 &
  STARTED_DOCKERD_PID=$!
  local waited=0
  until docker info >/dev/null 2>&1; do
    if ! kill -0 "$STARTED_DOCKERD_PID" 2>/dev/null; then
      STARTED_DOCKERD_PID=""
      echo "error: dockerd exited at start; the end of its log ($log):" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    if [ "$waited" -ge 120 ]; then
      echo "error: dockerd did not answer within 60 s; the end of its log ($log):" >&2
      tail -n 20 "$log" >&2
      exit 1 # the EXIT trap stops it
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
}

stop_docker_engine() {
  # Stop the engine ensure_docker_engine started, if it did; never one that was already there.
  [ -n "$STARTED_DOCKERD_PID" ] || return 0
  local pid=$STARTED_DOCKERD_PID waited=0
  STARTED_DOCKERD_PID=""
  kill -0 "$pid" 2>/dev/null || return 0
  say "stopping the dockerd this script started"
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 60 ]; do
    sleep 0.5
    waited=$((waited + 1))
  done
  kill -KILL "$pid" 2>/dev/null || true
}

debian_mirror() {
  # The machine's own Debian mirror (deb822 or one-line format), else deb.debian.org.
  local mirror=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { if (uri != "" && ok && !done) { print uri; done = 1 } uri = ""; ok = 0; next }
      $1 == "URIs:" { uri = $2 }
      $1 == "Suites:" { for (i = 2; i <= NF; i++) if ($i == "bookworm") ok = 1 }
      END { if (uri != "" && ok && !done) print uri }
    ' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(sed -E 's/\[[^]]*\]//' /etc/apt/sources.list |
      awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }')
  fi
  echo "${mirror:-http://deb.debian.org/debian}"
}

install_compose_v2() {
  # Debian trixie's docker-compose .deb (a static Go binary that runs on bookworm), fetched with
  # apt pointed at a throw-away trixie source list: the machine's own sources and state stay as
  # they are.
  local work
  work=$(mktemp -d -t litedeploy-compose.XXXXXX)
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/deb"
  chmod -R a+rwX "$work" # apt downloads as the unprivileged _apt user
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) trixie main" \
    >"$work/trixie.list"
  local apt_opts=(
    -o "Dir::Etc::SourceList=$work/trixie.list" -o "Dir::Etc::SourceParts=$work/parts"
    -o "Dir::Etc::Preferences=$work/none" -o "Dir::Etc::PreferencesParts=$work/parts"
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
  )
  apt-get "${apt_opts[@]}" update -qq
  (cd "$work/deb" && apt-get "${apt_opts[@]}" download -qq docker-compose)
  dpkg-deb -x "$work"/deb/docker-compose_*.deb "$work/root"
  as_root install -D -m 0755 "$work/root/usr/libexec/docker/cli-plugins/docker-compose" \
    "$COMPOSE_PLUGIN_DIR/docker-compose"
  rm -rf "$work"
}

ensure_compose() {
  # Compose v2 (`docker compose`) and v1 (`docker-compose` 1.29): the deploy tests run with both.
  if ! docker compose version >/dev/null 2>&1; then
    say "installing Compose v2 from Debian trixie into $COMPOSE_PLUGIN_DIR"
    install_compose_v2
  fi
  command -v docker-compose >/dev/null || apt_install docker-compose
  local flavours=() versions=() v
  if v=$(docker compose version --short 2>/dev/null); then flavours+=(v2) versions+=("v2 $v"); fi
  if v=$(docker-compose version --short 2>/dev/null); then flavours+=(v1) versions+=("v1 $v"); fi
  if [ ${#flavours[@]} -eq 0 ]; then
    echo "error: neither \`docker compose\` nor \`docker-compose\` works" >&2
    exit 1
  fi
  [ ${#flavours[@]} -eq 2 ] || echo "warning: only Compose ${flavours[*]} works here" >&2
  export LITEDEPLOY_COMPOSE_FLAVOURS="${flavours[*]}"
  say "Compose ${versions[0]}${versions[1]:+, ${versions[1]}}"
}

# The unprivileged operator the deploy tests run `deploy` as: in the docker group, owning
# nothing but the stacks the tests give it (tests/deploy/test_deploy_nonroot.py).
LITEDEPLOY_OPERATOR=${LITEDEPLOY_OPERATOR:-litedeploy-op}
export LITEDEPLOY_OPERATOR

ensure_operator_user() {
  if id -u "$LITEDEPLOY_OPERATOR" >/dev/null 2>&1; then
    as_root usermod -aG docker "$LITEDEPLOY_OPERATOR"
    return 0
  fi
  say "creating the test operator $LITEDEPLOY_OPERATOR (group docker, not root)"
  as_root useradd --create-home --shell /bin/sh --groups docker "$LITEDEPLOY_OPERATOR"
}

ensure_base_image() {
  # The image the demo's Dockerfile builds FROM in tests, and the bundle's builder: no registry
  # is reachable, so it is a minimal Debian made with debootstrap and imported. Built once per
  # engine, cached by its tag.
  export LITEDEPLOY_BASE_IMAGE
  debootstrap_image "$LITEDEPLOY_BASE_IMAGE" python3,python3-venv,sqlite3,ca-certificates
}

ensure_nopython_image() {
  # Debian 12 minbase and nothing else (no Python): what the bundle must run on.
  export LITEDEPLOY_NOPYTHON_IMAGE
  debootstrap_image "$LITEDEPLOY_NOPYTHON_IMAGE" ""
  if docker run --rm --entrypoint /bin/sh "$LITEDEPLOY_NOPYTHON_IMAGE" -c 'command -v python3'; then
    echo "error: $LITEDEPLOY_NOPYTHON_IMAGE has a python3; remove the tag and run this again" >&2
    exit 1
  fi
}

ensure_proxy_image() {
  # The proxy image FROM Debian's nginx-light (debootstrapped once, cached by tag); the build
  # itself is a few cached layers, so it runs every time and picks up examples/proxy's edits.
  debootstrap_image "$LITEDEPLOY_PROXY_BASE_IMAGE" nginx-light
  quiet_build --build-arg BASE_IMAGE="$LITEDEPLOY_PROXY_BASE_IMAGE" -t "$LITEDEPLOY_PROXY_IMAGE" \
    "$ROOT/examples/proxy"
}

debootstrap_image() {
  # debootstrap --variant=minbase bookworm (plus the comma-separated packages $2), imported as
  # the tag $1 unless an image has that tag already.
  local tag=$1 include=$2
  if docker image inspect "$tag" >/dev/null 2>&1; then
    say "base image $tag: already built"
    return 0
  fi
  apt_install debootstrap
  local mirror rootfs log
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d -t litedeploy-rootfs.XXXXXX)
  log="$rootfs.log"
  say "building $tag with debootstrap from $mirror (log: $log)"
  if ! as_root debootstrap --variant=minbase ${include:+--include="$include"} \
    bookworm "$rootfs" "$mirror" >"$log" 2>&1; then
    echo "error: debootstrap failed; the end of its log:" >&2
    tail -n 20 "$log" >&2
    remove_rootfs "$rootfs"
    exit 1
  fi
  as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  as_root tar -C "$rootfs" -c . | docker import --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
  remove_rootfs "$rootfs"
  rm -f "$log"
}

remove_rootfs() {
  # A failed debootstrap can leave /proc, /sys or a bind-mounted /dev inside the folder: unmount
  # them first, and never let rm cross into another file system.
  local mounts
  mounts=$(findmnt -R -n -l -o TARGET --target "$1" | grep -F "$1/" | sort -r || true)
  [ -z "$mounts" ] || echo "$mounts" | while read -r m; do as_root umount -l "$m" || true; done
  as_root rm -rf --one-file-system "$1"
}

ensure_wheelhouse() {
  # Wheels of litedeploy's dependencies, its build backend and the bundle's build tools
  # (bundle/requirements.txt) in wheels/, so that the images build offline: containers here
  # cannot reach the package index. The images build litedeploy itself from its sources, so
  # only pyproject.toml or bundle/requirements.txt being newer than the wheelhouse's
  # litedeploy wheel calls for a rebuild.
  export LITEDEPLOY_WHEELHOUSE="$ROOT/wheels"
  local wheel
  wheel=$(find "$LITEDEPLOY_WHEELHOUSE" -maxdepth 1 -name 'litedeploy-*.whl' -print -quit || true)
  if [ -n "$wheel" ] && [ "$wheel" -nt "$ROOT/pyproject.toml" ] &&
    [ "$wheel" -nt "$ROOT/bundle/requirements.txt" ]; then
    say "wheelhouse ${LITEDEPLOY_WHEELHOUSE#"$ROOT"/}/: up to date"
    return 0
  fi
  say "building the wheelhouse in ${LITEDEPLOY_WHEELHOUSE#"$ROOT"/}/"
  rm -f "$LITEDEPLOY_WHEELHOUSE"/litedeploy-*.whl
  "$VENV/bin/python" -m pip wheel -q --disable-pip-version-check -w "$LITEDEPLOY_WHEELHOUSE" \
    "$ROOT" setuptools wheel -r "$ROOT/bundle/requirements.txt"
}

litedeploy_version() {
  sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml" | head -n 1
}

compose_plugin_path() {
  # The Compose v2 plugin the host's `docker compose` runs: the docker CLI's search path, in
  # its order.
  local dir
  for dir in "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins" /usr/local/lib/docker/cli-plugins \
    /usr/local/libexec/docker/cli-plugins /usr/lib/docker/cli-plugins \
    /usr/libexec/docker/cli-plugins; do
    if [ -x "$dir/docker-compose" ]; then
      readlink -f "$dir/docker-compose"
      return 0
    fi
  done
  return 1
}

ensure_docker_cli_image() {
  # The Dockerfile's DOCKER_CLI_IMAGE for local builds: this host's docker CLI and Compose v2
  # plugin, FROM scratch, at the paths the official docker:cli image has them
  # (/usr/local/bin/docker, /usr/local/libexec/docker/cli-plugins/docker-compose). They must
  # need nothing but glibc, which the litedeploy image's Debian 12 base has (the Dockerfile
  # runs both there, so a too-new glibc fails the build). Labelled with their checksums: new
  # binaries on the host make a new image, hence a new litedeploy image.
  export LITEDEPLOY_DOCKER_CLI_IMAGE
  if ! docker compose version >/dev/null 2>&1; then
    say "installing Compose v2 from Debian trixie into $COMPOSE_PLUGIN_DIR"
    install_compose_v2
  fi
  local docker_bin compose_bin sums have bin libs work
  docker_bin=$(readlink -f "$(command -v docker)")
  if ! compose_bin=$(compose_plugin_path); then
    echo "error: \`docker compose\` answers but its plugin is in none of the docker CLI's" \
      "plugin folders" >&2
    exit 1
  fi
  sums=$(sha256sum "$docker_bin" "$compose_bin" | cut -d' ' -f1 | sha256sum | cut -c1-16)
  have=$(docker image inspect --format '{{index .Config.Labels "org.litedeploy.docker-cli"}}' \
    "$LITEDEPLOY_DOCKER_CLI_IMAGE" 2>/dev/null || true)
  if [ "$have" = "$sums" ]; then
    say "docker CLI image $LITEDEPLOY_DOCKER_CLI_IMAGE: already built ($sums)"
    return 0
  fi
  for bin in "$docker_bin" "$compose_bin"; do
    # static ("not a dynamic executable"), or only the C library and its loader
    libs=$(ldd "$bin" 2>/dev/null |
      grep -v -e 'linux-vdso' -e 'libc\.so\.6' -e 'ld-linux' -e 'statically linked' || true)
    if [ -n "$libs" ]; then
      echo "error: $bin needs more than glibc, which the litedeploy image lacks:" >&2
      echo "$libs" >&2
      exit 1
    fi
  done
  work=$(mktemp -d -t litedeploy-docker-cli.XXXXXX)
  cp "$docker_bin" "$work/docker"
  cp "$compose_bin" "$work/docker-compose"
  printf '%s\n' 'FROM scratch' \
    'COPY docker /usr/local/bin/docker' \
    'COPY docker-compose /usr/local/libexec/docker/cli-plugins/docker-compose' \
    >"$work/Dockerfile"
  say "building $LITEDEPLOY_DOCKER_CLI_IMAGE from $docker_bin and $compose_bin"
  quiet_build -t "$LITEDEPLOY_DOCKER_CLI_IMAGE" --label "org.litedeploy.docker-cli=$sums" "$work"
  rm -rf "$work"
}

litedeploy_source_hash() {
  # What the litedeploy image is made of: the files its build reads, and the images it
  # builds from (a rebuilt base, or other docker CLI binaries, give a new hash).
  {
    (cd "$ROOT" && find Dockerfile .dockerignore pyproject.toml bundle entrypoint deploy -type f \
      ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    docker image inspect --format '{{.Id}}' "$LITEDEPLOY_BASE_IMAGE" "$LITEDEPLOY_NOPYTHON_IMAGE" \
      "$LITEDEPLOY_DOCKER_CLI_IMAGE"
  } | sha256sum | cut -c1-16
}

ensure_litedeploy_image() {
  # litedeploy:<version> and litedeploy:latest from the repository's Dockerfile: the bundle
  # (/opt/litedeploy) and the host CLI (/opt/litedeploy-deploy, `deploy` on PATH, with the
  # docker CLI and Compose v2) on Debian 12 without Python. Built FROM the local images (no
  # registry here; ensure_docker_cli_image first) and offline from the wheelhouse; skipped when
  # the image's label says it was built from exactly these sources (checking takes a fraction
  # of a second). $1, if given, is the one tag to build instead (litedeploy:latest untouched):
  # for trying a change on an engine that others' runs share.
  if [ -n "${1:-}" ]; then
    LITEDEPLOY_IMAGE=$1
  else
    LITEDEPLOY_IMAGE="litedeploy:$(litedeploy_version)"
  fi
  export LITEDEPLOY_IMAGE
  local hash current log tags=(-t "$LITEDEPLOY_IMAGE")
  [ -n "${1:-}" ] || tags+=(-t litedeploy:latest)
  if ! docker image inspect "$LITEDEPLOY_DOCKER_CLI_IMAGE" >/dev/null 2>&1; then
    echo "error: $LITEDEPLOY_DOCKER_CLI_IMAGE is missing: run ensure_docker_cli_image first" >&2
    exit 1
  fi
  hash=$(litedeploy_source_hash)
  current=$(docker image inspect --format '{{index .Config.Labels "org.litedeploy.source-hash"}}' \
    "$LITEDEPLOY_IMAGE" 2>/dev/null || true)
  if [ "$current" = "$hash" ]; then
    say "image $LITEDEPLOY_IMAGE: up to date ($hash)"
    [ -n "${1:-}" ] || docker tag "$LITEDEPLOY_IMAGE" litedeploy:latest
    return 0
  fi
  log=$(mktemp -t litedeploy-build.XXXXXX.log)
  say "building $LITEDEPLOY_IMAGE ($hash; log: $log)"
  if ! docker build "${tags[@]}" \
    --label "org.litedeploy.source-hash=$hash" \
    --build-arg BUILDER_IMAGE="$LITEDEPLOY_BASE_IMAGE" \
    --build-arg BASE_IMAGE="$LITEDEPLOY_NOPYTHON_IMAGE" \
    --build-arg DOCKER_CLI_IMAGE="$LITEDEPLOY_DOCKER_CLI_IMAGE" \
    --build-arg PIP_ARGS="--no-index --find-links /src/wheels" \
    "$ROOT" >"$log" 2>&1; then
    echo "error: building $LITEDEPLOY_IMAGE failed; the end of its log ($log):" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  rm -f "$log"
}

LITEDEPLOY_NODE_BASE_IMAGE=${LITEDEPLOY_NODE_BASE_IMAGE:-litedeploy-node-base:bookworm}

ensure_node_base_image() {
  # A Node image without Python, the base of the Node example (examples/node-shop): a minimal
  # Debian with the host's own Node binary copied in, so that the node_modules npm installs
  # on the host (better-sqlite3's native module) match it. Cached by tag, labelled with the
  # Node version: a different host Node makes a new one.
  export LITEDEPLOY_NODE_BASE_IMAGE
  ensure_node
  local node version have
  node=$(readlink -f "$(command -v node)")
  version=$(node --version)
  have=$(docker image inspect --format '{{index .Config.Labels "org.litedeploy.node"}}' \
    "$LITEDEPLOY_NODE_BASE_IMAGE" 2>/dev/null || true)
  if [ "$have" = "$version" ]; then
    say "Node base image $LITEDEPLOY_NODE_BASE_IMAGE (node $version): already built"
    return 0
  fi
  if ldd "$node" | grep -q 'libnode\|not found'; then
    echo "error: $node is not a self-contained Node binary (it needs $(ldd "$node" | grep -o 'libnode[^ ]*' | head -n 1));" \
      "install Node.js 20 from NodeSource or nodejs.org, whose binary the image can carry" >&2
    exit 1
  fi
  apt_install debootstrap
  local mirror rootfs log
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d -t litedeploy-node-rootfs.XXXXXX)
  log="$rootfs.log"
  say "building $LITEDEPLOY_NODE_BASE_IMAGE (node $version, no Python) with debootstrap (log: $log)"
  if ! as_root debootstrap --variant=minbase --include=ca-certificates,libstdc++6 \
    bookworm "$rootfs" "$mirror" >"$log" 2>&1; then
    echo "error: debootstrap failed; the end of its log:" >&2
    tail -n 20 "$log" >&2
    remove_rootfs "$rootfs"
    exit 1
  fi
  as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  as_root install -m 0755 "$node" "$rootfs/usr/local/bin/node"
  as_root chroot "$rootfs" useradd --uid 1000 --user-group --create-home --shell /bin/sh node
  if ! as_root chroot "$rootfs" /usr/local/bin/node --version >/dev/null; then
    echo "error: the copied node does not run inside the new image" >&2
    remove_rootfs "$rootfs"
    exit 1
  fi
  as_root tar -C "$rootfs" -c . | docker import --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.litedeploy.node=$version" --change 'CMD ["node"]' \
    - "$LITEDEPLOY_NODE_BASE_IMAGE" >/dev/null
  remove_rootfs "$rootfs"
  rm -f "$log"
}

quiet_build() {
  # `docker build -q ARGS`, silent unless it fails (the legacy builder prints a deprecation
  # notice every time).
  local log
  log=$(mktemp)
  if ! docker build -q "$@" >/dev/null 2>"$log"; then
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
}
