// The shop's database: better-sqlite3 under drizzle-orm, and drizzle's own migrator for the
// teams (and the benchmark) that migrate inside the app instead of in litedeploy's entrypoint.
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';

export const DB_PATH = process.env.DB_PATH ?? '/data/app.db';
export const MIGRATIONS_DIR = process.env.MIGRATIONS_DIR ?? '/app/drizzle';

/** Open the database as the app always does: better-sqlite3's defaults (foreign keys ON). */
export function open(path = DB_PATH) {
  const sqlite = new Database(path, { timeout: 5000 });
  sqlite.pragma('journal_mode = WAL');
  return { sqlite, db: drizzle({ client: sqlite }) };
}

/** drizzle-orm's migrate(), as its documentation has apps call it at start-up. */
export function migrateWithDrizzle(db, folder = MIGRATIONS_DIR) {
  migrate(db, { migrationsFolder: folder });
}
