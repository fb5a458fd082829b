#!/usr/bin/env bash
# Regenerate the Drizzle migration fixtures under tests/fixtures/ with drizzle-kit itself.
#
#   tests/fixtures/drizzle-journal/shop/           0.x journal format  (drizzle-kit 0.31.11, harness drizzle0/)
#   tests/fixtures/drizzle-journal/not-null-trap/  0.x journal format  (drizzle-kit 0.31.11)
#   tests/fixtures/drizzle-folders/shop/           1.0 folder format   (drizzle-kit 1.0.0-rc.5, harness drizzle1/)
#
# Each history is a folder of schema steps in tests/interop/schema-steps/<history>/,
# NNNN_<name>.ts, each holding the FULL schema after that step. For every step, in
# order, the step is copied to <harness>/.gen/schema.ts (so that `drizzle-orm` resolves
# from the harness's node_modules) and `drizzle-kit generate --name <name>` is run.
#
# Renames: drizzle-kit cannot tell a rename from drop+create and asks. A step that
# renames something has a NNNN_<name>.hints.json beside it, in drizzle-kit 1.0's
# `--hints` format:
#   - drizzle-kit 1.0 takes it as `--hints-file` (non-interactive, built in);
#   - drizzle-kit 0.31 has no such option, so answer-rename-prompts.py runs it in a
#     pseudo-terminal and picks the matching "~ old › new  rename column" option of its
#     prompt. drizzle-kit still writes every file itself; nothing is hand-written.
#
# The tests use the committed output. Re-running this rewrites the fixtures with new
# timestamps (journal `when`, folder names) and new snapshot ids, so commit the whole
# output together. Needs `npm ci` in both harness folders, node and python3.
#
# usage: tests/interop/generate-fixtures.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
FIXTURES="$ROOT/tests/fixtures"
STEPS="$HERE/schema-steps"
PYTHON="${PYTHON:-python3}"

die() { echo "generate-fixtures: $*" >&2; exit 1; }

for harness in drizzle0 drizzle1; do
  [[ -x "$HERE/$harness/node_modules/.bin/drizzle-kit" ]] ||
    die "missing $harness/node_modules: run 'npm ci --no-audit --no-fund' in tests/interop/$harness"
done

# count_migrations HARNESS OUT_DIR -> number of migrations drizzle-kit has written so far
count_migrations() {
  local harness="$1" out="$2"
  if [[ ! -d "$out" ]]; then echo 0; return; fi
  if [[ "$harness" == drizzle0 ]]; then
    find "$out" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]_*.sql' | wc -l
  else
    find "$out" -mindepth 2 -maxdepth 2 -name migration.sql | wc -l
  fi
}

# generate_history HARNESS HISTORY DEST
generate_history() {
  local harness="$1" history="$2" dest="$3"
  local dir="$HERE/$harness"
  local kit="$dir/node_modules/.bin/drizzle-kit"
  local work="$dir/.gen"
  local steps=("$STEPS/$history"/[0-9][0-9][0-9][0-9]_*.ts)
  [[ -e "${steps[0]}" ]] || die "no schema steps in $STEPS/$history"

  echo "== $history with $harness ($("$kit" --version 2>/dev/null | tr '\n' ' '))" >&2
  rm -rf "$work"
  mkdir -p "$work"

  local step tag name hints before after
  for step in "${steps[@]}"; do
    tag="$(basename "$step" .ts)"
    name="${tag#*_}"
    hints="${step%.ts}.hints.json"
    cp "$step" "$work/schema.ts"
    before="$(count_migrations "$harness" "$work/out")"

    local args=(generate --dialect sqlite --schema .gen/schema.ts --out .gen/out --name "$name")
    echo "-- $tag" >&2
    if [[ "$harness" == drizzle0 && -f "$hints" ]]; then
      (cd "$dir" && "$PYTHON" "$HERE/answer-rename-prompts.py" "$hints" -- "$kit" "${args[@]}") >&2
    elif [[ -f "$hints" ]]; then
      (cd "$dir" && "$kit" "${args[@]}" --hints-file "$hints" </dev/null) >&2
    else
      (cd "$dir" && "$kit" "${args[@]}" </dev/null) >&2
    fi

    after="$(count_migrations "$harness" "$work/out")"
    [[ "$after" -eq $((before + 1)) ]] ||
      die "$tag: drizzle-kit wrote $((after - before)) migrations, expected 1"
    # 1.0 folder names have one-second precision: keep them distinct and ordered.
    [[ "$harness" == drizzle1 ]] && sleep 1.1
  done

  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  cp -R "$work/out" "$dest"
  rm -rf "$work"
  echo "   -> ${dest#"$ROOT"/}" >&2
}

generate_history drizzle0 shop "$FIXTURES/drizzle-journal/shop"
generate_history drizzle0 not-null-trap "$FIXTURES/drizzle-journal/not-null-trap"
generate_history drizzle1 shop "$FIXTURES/drizzle-folders/shop"

echo "done; review with: git status -- tests/fixtures" >&2
