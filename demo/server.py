"""A tiny demo app server for the example stack: reads and writes the shop's SQLite database.

GET /health    200 when the database answers (used by the HEALTHCHECK)
GET /products  the products with their review counts, as JSON
POST /reviews  {"product_id": 1, "body": "nice"} adds a review

DEMO_FAIL makes a broken release for the deploy tests: `crash` exits with status 3 about a second
after starting (after the entrypoint migrated), `unhealthy` answers /health with 503 forever.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DB_PATH = os.environ.get("DB_PATH", "/data/app.db")
PORT = int(os.environ.get("PORT", "8000"))
FAIL = os.environ.get("DEMO_FAIL", "")
FAIL_MODES = ("", "crash", "unhealthy")


def connect() -> sqlite3.Connection:
    conn = sqlite3.connect(DB_PATH, timeout=5)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        try:
            with connect() as conn:
                if self.path == "/health" and FAIL == "unhealthy":
                    self._send(503, {"status": "failing on purpose (DEMO_FAIL=unhealthy)"})
                elif self.path == "/health":
                    conn.execute("SELECT count(*) FROM products").fetchone()
                    self._send(200, {"status": "ok"})
                elif self.path == "/products":
                    rows = conn.execute(
                        "SELECT p.id, p.title, p.price, count(r.id) FROM products p "
                        "LEFT JOIN reviews r ON r.product_id = p.id GROUP BY p.id ORDER BY p.id"
                    ).fetchall()
                    keys = ("id", "title", "price", "reviews")
                    self._send(200, [dict(zip(keys, row, strict=True)) for row in rows])
                else:
                    self._send(404, {"error": "not found"})
        except sqlite3.Error as exc:
            self._send(503, {"error": str(exc)})

    def do_POST(self) -> None:
        if self.path != "/reviews":
            self._send(404, {"error": "not found"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            review = json.loads(self.rfile.read(length) or b"{}")
            with connect() as conn:
                cur = conn.execute(
                    "INSERT INTO reviews (product_id, body) VALUES (?, ?)",
                    (review["product_id"], review["body"]),
                )
            self._send(201, {"id": cur.lastrowid})
        except (KeyError, ValueError, sqlite3.IntegrityError) as exc:
            self._send(400, {"error": str(exc)})

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the container log for the entrypoint's story


def crash_soon() -> None:
    """Exit non-zero a second from now, as an app that dies during its start-up would."""

    def crash() -> None:
        print("demo app: crashing on purpose (DEMO_FAIL=crash)", file=sys.stderr, flush=True)
        os._exit(3)

    threading.Timer(1.0, crash).start()


if __name__ == "__main__":
    if FAIL not in FAIL_MODES:
        sys.exit(f"demo app: unknown DEMO_FAIL={FAIL!r}; expected one of: crash, unhealthy")
    print(f"demo app: serving {DB_PATH} on :{PORT}", flush=True)
    if FAIL == "crash":
        crash_soon()
    # As PID 1 the process gets no default SIGTERM handling: without this, `docker stop` waits
    # its full timeout and kills us, which is ten seconds of downtime on every deploy.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()  # noqa: S104
