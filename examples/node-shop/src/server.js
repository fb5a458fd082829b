// The shop's HTTP server (node:http, drizzle-orm on better-sqlite3).
//
//   GET  /health    200 when the database answers (the image's HEALTHCHECK)
//   GET  /products  the products with their review counts
//   POST /products  {"name": "Lamp", "description": "Brass", "price": 1250} (price in cents)
//   POST /reviews   {"product_id": 1, "author": "ann", "rating": 5, "body": "Bright"} (from v2)
//
// One server serves every release: reviews are offered once their table exists (release v2).
// SHOP_MIGRATE=drizzle runs drizzle's own migrate() before listening (what apps do without
// litedeploy; the benchmark compares the two). SHOP_FAIL=crash makes a broken release: the
// server exits with status 3 a second after it started, after the migrations ran;
// SHOP_FAIL=crash-later does so after SHOP_FAIL_AFTER seconds (default 15), once it has been
// healthy (a release that fails after the proxy switched to it).
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { sql } from 'drizzle-orm';
import { DB_PATH, MIGRATIONS_DIR, migrateWithDrizzle, open } from './db.js';

const PORT = Number(process.env.PORT ?? 8000);
const MIGRATE = process.env.SHOP_MIGRATE ?? '';
const FAIL = process.env.SHOP_FAIL ?? '';
const MAX_BODY = 64 * 1024;

const log = (message) => console.log(`node-shop: ${message}`);

class BadRequest extends Error {}

function readJson(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    request.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new BadRequest(`body larger than ${MAX_BODY} bytes`));
        request.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    request.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'));
      } catch {
        reject(new BadRequest('body is not JSON'));
      }
    });
    request.on('error', reject);
  });
}

function field(body, name, type) {
  const value = body[name];
  const ok = type === 'integer' ? Number.isInteger(value) : typeof value === type;
  if (!ok) throw new BadRequest(`${name}: expected ${type === 'string' ? 'a string' : 'an integer'}`);
  return value;
}

function routes(db, hasReviews) {
  const reviewCount = hasReviews
    ? sql`(SELECT count(*) FROM reviews r WHERE r.product_id = p.id)`
    : sql`0`;
  return {
    'GET /health': () => {
      db.get(sql`SELECT count(*) FROM products`);
      return [200, { status: 'ok' }];
    },
    'GET /products': () => [
      200,
      db.all(sql`SELECT p.id, p.name, p.description, p.price, ${reviewCount} AS reviews
                 FROM products p ORDER BY p.id`),
    ],
    'POST /products': (body) => {
      const { lastInsertRowid } = db.run(sql`INSERT INTO products (name, description, price)
        VALUES (${field(body, 'name', 'string')}, ${body.description ?? ''},
                ${field(body, 'price', 'integer')})`);
      return [201, { id: Number(lastInsertRowid) }];
    },
    'POST /reviews': (body) => {
      if (!hasReviews) return [404, { error: 'reviews arrive with release v2' }];
      const rating = field(body, 'rating', 'integer');
      if (rating < 1 || rating > 5) throw new BadRequest('rating: expected 1 to 5');
      const { lastInsertRowid } = db.run(sql`INSERT INTO reviews (product_id, author, rating, body)
        VALUES (${field(body, 'product_id', 'integer')}, ${field(body, 'author', 'string')},
                ${rating}, ${field(body, 'body', 'string')})`);
      return [201, { id: Number(lastInsertRowid) }];
    },
  };
}

function send(response, status, body) {
  const data = JSON.stringify(body);
  response.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(data),
  });
  response.end(data);
}

function serve(handlers) {
  return http.createServer(async (request, response) => {
    const handler = handlers[`${request.method} ${request.url}`];
    try {
      if (!handler) return send(response, 404, { error: 'not found' });
      const body = request.method === 'POST' ? await readJson(request) : {};
      const [status, result] = handler(body);
      send(response, status, result);
    } catch (err) {
      if (err instanceof BadRequest) return send(response, 400, { error: err.message });
      const cause = err.cause ?? err; // drizzle wraps better-sqlite3's SqliteError
      if (String(cause.code).startsWith('SQLITE_CONSTRAINT')) {
        return send(response, 400, { error: cause.message });
      }
      console.error(`node-shop: ${request.method} ${request.url}: ${err.stack ?? err}`);
      send(response, 503, { error: String(err.message ?? err) });
    }
  });
}

function main() {
  if (!['', 'drizzle'].includes(MIGRATE)) {
    throw new Error(`unknown SHOP_MIGRATE=${MIGRATE}; expected drizzle or nothing`);
  }
  if (!['', 'crash', 'crash-later'].includes(FAIL)) {
    throw new Error(`unknown SHOP_FAIL=${FAIL}; expected crash or crash-later`);
  }
  const { sqlite, db } = open();
  if (MIGRATE === 'drizzle') {
    const started = performance.now();
    migrateWithDrizzle(db);
    log(`drizzle migrate() of ${MIGRATIONS_DIR} in ${Math.round(performance.now() - started)} ms`);
  }
  const hasReviews = sqlite
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'reviews'")
    .get() !== undefined;
  const server = serve(routes(db, hasReviews));
  // As PID 1, node gets no default handling of SIGTERM: without this, `docker stop` waits its
  // whole timeout and then kills the server, which is downtime on every deploy.
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
      log(`${signal}: stopping`);
      server.close();
      sqlite.close();
      process.exit(0);
    });
  }
  server.listen(PORT, () => log(`serving ${DB_PATH} on :${PORT}`));
  if (FAIL !== '') {
    const after = FAIL === 'crash' ? 1 : Number(process.env.SHOP_FAIL_AFTER ?? 15);
    setTimeout(() => {
      console.error(`node-shop: crashing on purpose (SHOP_FAIL=${FAIL})`);
      process.exit(3);
    }, after * 1000);
  }
}

main();
