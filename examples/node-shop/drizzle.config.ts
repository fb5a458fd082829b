import { defineConfig } from 'drizzle-kit';

// `npx drizzle-kit generate --name NAME` writes the next migration into ./drizzle, drizzle-kit's
// default folder; the image ships it at /app/drizzle (MIGRATIONS_DIR).
export default defineConfig({
  dialect: 'sqlite',
  schema: './src/schema.ts',
  out: './drizzle',
});
