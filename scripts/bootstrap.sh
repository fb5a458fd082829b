# Sourced by scripts/test.sh and scripts/demo.sh: install what a fresh Debian/Ubuntu machine lacks.
# Idempotent: every step looks at the machine first and does nothing when it is already done.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"

say() { printf '==> %s\n' "$*" >&2; }

apt_install() {
  # Install Debian packages when missing; needs root (or sudo) on a fresh machine.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  say "installing ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_python() {
  # Python >= 3.11 with venv; Debian 12 and Ubuntu 24.04 ship 3.11 / 3.12.
  if ! python3 -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    apt_install python3 python3-venv python3-pip
  fi
  python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null || {
    echo "error: Python 3.11 or newer is required (found $(python3 --version 2>&1))" >&2
    exit 1
  }
}

ensure_venv() {
  # A project virtualenv with litedeploy installed in editable mode, plus its dev tools.
  ensure_python
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    python3 -m venv "$VENV"
  fi
  local stamp="$VENV/.installed"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    say "installing litedeploy and its dev tools into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[dev]"
    touch "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

ensure_node() {
  # Node.js >= 20 and npm, for drizzle's own migrator in the interop tests.
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    echo "error: Node.js 20 or newer is needed for the drizzle interop tests (found $(node --version));" \
      "install it from your distribution's backports or NodeSource" >&2
    exit 1
  fi
}

ensure_drizzle_harness() {
  # The pinned drizzle-orm / drizzle-kit / better-sqlite3 installs the interop tests run.
  ensure_node
  apt_install make g++ python3
  # better-sqlite3 compiles from source when its prebuilt binary cannot be downloaded; point
  # node-gyp at the installed headers instead of letting it download them.
  if [ -f /usr/include/node/node.h ] && [ -z "${npm_config_nodedir:-}" ]; then
    export npm_config_nodedir=/usr
  fi
  local dir
  for dir in "$ROOT"/tests/interop/drizzle0 "$ROOT"/tests/interop/drizzle1; do
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
      say "npm ci in ${dir#"$ROOT"/}"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
      touch "$dir/node_modules"
    fi
  done
}

ensure_node_shop_modules() {
  # The Node example's node_modules (examples/node-shop), production dependencies only: its
  # image copies them, since containers here cannot reach the npm registry. better-sqlite3's
  # native module takes about 1.5 min to compile; when the interop harness holds the same
  # version's, built by this Node, that build is copied instead. Either way it must load in
  # this Node before the install counts as done.
  ensure_node
  local dir="$ROOT/examples/node-shop"
  local stamp="$dir/node_modules/.litedeploy-installed" want
  want="$(node --version) $(sha256sum <"$dir/package-lock.json" | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "examples/node-shop/node_modules: up to date"
    return 0
  fi
  say "npm ci --omit=dev in examples/node-shop"
  (cd "$dir" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  local harness="$ROOT/tests/interop/drizzle0/node_modules/better-sqlite3"
  local module=build/Release/better_sqlite3.node
  if [ -f "$harness/$module" ] &&
    [ "$(node -p "require('$harness/package.json').version")" = \
      "$(node -p "require('$dir/node_modules/better-sqlite3/package.json').version")" ]; then
    install -D -m 0755 "$harness/$module" "$dir/node_modules/better-sqlite3/$module"
  fi
  if ! better_sqlite3_loads "$dir"; then
    say "compiling better-sqlite3 for node $(node --version) (about 1.5 min)"
    apt_install make g++ python3
    if [ -f /usr/include/node/node.h ] && [ -z "${npm_config_nodedir:-}" ]; then
      export npm_config_nodedir=/usr
    fi
    rm -rf "$dir/node_modules/better-sqlite3/build"
    (cd "$dir" && npm rebuild better-sqlite3 --no-audit --no-fund --loglevel=error >/dev/null)
    better_sqlite3_loads "$dir" || {
      echo "error: better-sqlite3 does not load in node $(node --version) after compiling it" >&2
      exit 1
    }
  fi
  echo "$want" >"$stamp"
}

better_sqlite3_loads() {
  (cd "$1" && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()") \
    2>/dev/null
}
