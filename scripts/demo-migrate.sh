#!/usr/bin/env bash
# The entrypoint alone, no Docker: two releases of the demo shop migrate one database.
# Release 2 rebuilds the products table, the step where drizzle's migrate() deletes every review
# through ON DELETE CASCADE; litedeploy's entrypoint keeps them.
# Usage: scripts/demo.sh [WORK_DIR]   (default: a new temporary folder)
set -euo pipefail
# shellcheck source=scripts/bootstrap.sh
source "$(dirname "$0")/bootstrap.sh"
cd "$ROOT"
ensure_venv

work=${1:-$(mktemp -d -t litedeploy-demo.XXXXXX)}
mkdir -p "$work"
db="$work/app.db"
rm -f "$db" "$db"-wal "$db"-shm

run() { printf '\n$ %s\n' "$*"; "$@"; }
sql() { python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()' "$db" "$1"; }
query() { python3 -c 'import sqlite3, sys; [print(*r, sep=" | ") for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])]' "$db" "$1"; }

# Release 1 ships the first three migrations of demo/migrations (a drizzle-kit 0.x journal).
release1="$work/release1"
rm -rf "$release1" && cp -r demo/migrations "$release1"
python3 - "$release1/meta/_journal.json" <<'PY'
import json, sys
journal = json.load(open(sys.argv[1]))
journal["entries"] = journal["entries"][:3]
json.dump(journal, open(sys.argv[1], "w"), indent=2)
PY

say "release 1: migrate a new database"
run entrypoint run --db "$db" --migrations "$release1"

say "the app writes data: 2 users, 3 products, 4 reviews"
sql "INSERT INTO users(id,email,name) VALUES (1,'olena@example.com','Olena'),(2,'taras@example.com','Taras');
     INSERT INTO products(id,name,price,sku) VALUES (1,'Lamp','12.50','L-1'),(2,'Desk','99','D-1'),(3,'Chair','45','');
     INSERT INTO reviews(product_id,body,stars) VALUES (1,'great',5),(2,'ok',3),(2,'wobbly',2),(3,'comfy',4);"

say "release 2 arrives with three more migrations; what would run?"
run entrypoint status --db "$db" --migrations demo/migrations

say "release 2 as drizzle-kit generated it: refused before the database is touched"
# 0003 turns the price '12.50' into an integer column; 0005 drops users.name, which holds names.
# drizzle's migrate() would do both without a word. Exit 15: nothing was written.
run entrypoint run --db "$db" --migrations demo/migrations || echo "(exit $?: refused, database unchanged)"

say "the team decides both are intended and says so in the migrations themselves"
release2="$work/release2"
rm -rf "$release2" && cp -r demo/migrations "$release2"
sed -i '1i -- litedeploy: allow type-change products.price' "$release2/0003_price_to_integer.sql"
sed -i '1i -- litedeploy: allow drop-column users.name' "$release2/0005_drop_user_name.sql"
head -n 1 "$release2/0003_price_to_integer.sql" "$release2/0005_drop_user_name.sql"

say "release 2: rehearsed on a copy, then migrated (0003 rebuilds products, the parent of reviews ON DELETE CASCADE)"
run entrypoint run --db "$db" --migrations "$release2"

say "every review is still there"
printf '\n$ sqlite3 %s "SELECT ..."\n' "$db"
query "SELECT p.title, count(r.id) AS reviews FROM products p LEFT JOIN reviews r ON r.product_id = p.id GROUP BY p.id ORDER BY p.id"
query "SELECT 'reviews in total: ' || count(*) FROM reviews"

say "start again: nothing pending, straight to the app"
run entrypoint run --db "$db" --migrations "$release2" -- python3 -c 'print("app server would start here")'
printf '\ndemo database: %s\n' "$db"
