// `npm run migrate`: drizzle's own migrate() alone, as a team without litedeploy runs it
// before starting the server. Prints what each table holds before and after, so that what the
// migrator did to the rows shows: `node src/migrate.js` (DB_PATH, MIGRATIONS_DIR as the server).
import { DB_PATH, MIGRATIONS_DIR, migrateWithDrizzle, open } from './db.js';

function counts(sqlite) {
  const tables = sqlite
    .prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' " +
        "AND name NOT LIKE '\\_\\_drizzle%' ESCAPE '\\' ORDER BY name",
    )
    .all();
  return Object.fromEntries(
    tables.map(({ name }) => [name, sqlite.prepare(`SELECT count(*) AS n FROM "${name}"`).get().n]),
  );
}

const { sqlite, db } = open();
const before = counts(sqlite);
let error = null;
try {
  migrateWithDrizzle(db);
} catch (err) {
  error = String(err.cause?.message ?? err.message ?? err);
}
const after = counts(sqlite);
sqlite.close();
console.log(JSON.stringify({ db: DB_PATH, migrations: MIGRATIONS_DIR, error, before, after }));
process.exit(error ? 1 : 0);
