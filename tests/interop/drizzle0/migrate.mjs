// Run drizzle-orm's own SQLite migrator (better-sqlite3 driver, default
// settings: better-sqlite3 is built with foreign keys ON) against one database.
//
//   node migrate.mjs DB_PATH MIGRATIONS_DIR
//
// Prints exactly one JSON line on stdout:
//   {"result":"ok","error":null}            exit 0
//   {"result":"error","error":"<message>"}  exit 1
// Anything else (drizzle's own logging, warnings) goes to stderr.
import process from 'node:process';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';

// Keep stdout for the single result line.
const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

function describe(err) {
  const parts = [];
  for (let e = err, depth = 0; e && depth < 5; e = e.cause, depth += 1) {
    const msg = e instanceof Error ? e.message : String(e);
    if (msg && !parts.includes(msg)) parts.push(msg);
  }
  return parts.join(' | caused by: ') || String(err);
}

const [dbPath, migrationsFolder] = process.argv.slice(2);
if (!dbPath || !migrationsFolder) {
  emit({ result: 'error', error: 'usage: node migrate.mjs DB_PATH MIGRATIONS_DIR' });
  process.exit(1);
}

let sqlite;
let code = 0;
try {
  sqlite = new Database(dbPath);
  const db = drizzle({ client: sqlite });
  migrate(db, { migrationsFolder });
  emit({ result: 'ok', error: null });
} catch (err) {
  emit({ result: 'error', error: describe(err) });
  code = 1;
} finally {
  try {
    sqlite?.close();
  } catch {
    // ignore: the result line has been written already
  }
}
process.exit(code);
