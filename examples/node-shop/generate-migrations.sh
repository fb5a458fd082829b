#!/usr/bin/env bash
# Regenerate the shop's migrations with drizzle-kit itself (the pinned devDependency, 0.31.11),
# release by release, as its team would have run `drizzle-kit generate --name NAME` at each one:
#
#   v1  releases/v1/schema.ts  0000_users_and_products      users, products
#   v2  releases/v2/schema.ts  0001_add_reviews             reviews -> products ON DELETE CASCADE
#   v3  releases/v3/schema.ts  0002_optional_description    products rebuilt (__new_products)
#   v4  src/schema.ts          0003_add_shop_account        `generate --custom`, body from
#                                                           releases/v4/add_shop_account.sql
#
# Writes ./drizzle (drizzle-kit's output after v4: what the app ships) and releases/vN/drizzle
# (its output as it stood at release vN, N = 1..3: what that release's image ships). None of
# these steps renames anything, so drizzle-kit asks no questions. Then checks that src/schema.ts
# is the schema of the last release: drizzle-kit must find nothing to generate from it.
#
# Re-running rewrites every file with new timestamps (journal `when`) and snapshot ids: commit
# the whole output together. Installs drizzle-kit with `npm ci` in a temporary folder (the npm
# registry must answer); the example's own node_modules stay as they are.
#
# usage: examples/node-shop/generate-migrations.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "generate-migrations: $*" >&2; exit 1; }

work="$(mktemp -d -t node-shop-generate.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cp "$HERE/package.json" "$HERE/package-lock.json" "$HERE/drizzle.config.ts" "$work/"
mkdir "$work/src"
echo "== npm ci in $work (drizzle-kit; no install scripts: generating needs no SQLite)" >&2
(cd "$work" && npm ci --include=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
kit="$work/node_modules/.bin/drizzle-kit"
echo "== drizzle-kit $("$kit" --version 2>/dev/null | tr '\n' ' ')" >&2

count() {
  [[ -d "$work/drizzle" ]] || { echo 0; return; }
  find "$work/drizzle" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]_*.sql' | wc -l
}

# generate SCHEMA NAME [--custom]: one `drizzle-kit generate`, which must write one migration.
generate() {
  local schema="$1" name="$2" before
  shift 2
  cp "$schema" "$work/src/schema.ts"
  before="$(count)"
  echo "-- $name" >&2
  (cd "$work" && "$kit" generate --name "$name" "$@" </dev/null) >&2
  [[ "$(count)" -eq $((before + 1)) ]] || die "$name: drizzle-kit wrote $(($(count) - before)) migrations, expected 1"
}

# keep RELEASE: drizzle-kit's whole output as it stands now is what that release ships.
keep() {
  rm -rf "$HERE/releases/$1/drizzle"
  cp -R "$work/drizzle" "$HERE/releases/$1/drizzle"
}

generate "$HERE/releases/v1/schema.ts" users_and_products
keep v1
generate "$HERE/releases/v2/schema.ts" add_reviews
keep v2
generate "$HERE/releases/v3/schema.ts" optional_description
keep v3
generate "$HERE/src/schema.ts" add_shop_account --custom
custom=("$work"/drizzle/0003_add_shop_account.sql)
[[ -f "${custom[0]}" ]] || die "drizzle-kit did not write drizzle/0003_add_shop_account.sql"
{ echo; cat "$HERE/releases/v4/add_shop_account.sql"; } >>"${custom[0]}"

echo "-- check: src/schema.ts is the last release's schema" >&2
before="$(count)"
(cd "$work" && "$kit" generate </dev/null) >&2
[[ "$(count)" -eq "$before" ]] || die "src/schema.ts differs from releases/v3/schema.ts: drizzle-kit generated a migration from it"

rm -rf "$HERE/drizzle"
cp -R "$work/drizzle" "$HERE/drizzle"
echo "done; review with: git status -- examples/node-shop" >&2
