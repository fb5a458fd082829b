"""Run the real `drizzle-kit push` (SQLite) on a database file, non-interactively.

`drizzle_push(schema_ts, db)` diffs the declared schema `schema_ts` against the live
database `db` and applies the difference, the way `drizzle-kit push` does for a developer,
so that tests can record what push does to the data. It runs one of the pinned harnesses
(`tests/interop/drizzle0`: drizzle-kit 0.31.11, `drizzle1`: 1.0.0-rc.5) in a private
folder `<harness>/.push-XXXX/` (removed afterwards) holding a copy of the schema, so that
its `import ... from 'drizzle-orm/...'` resolves from the harness's node_modules, and a
`drizzle.config.ts` (dialect sqlite, dbCredentials.url = the database file).

Nothing ever waits for a human:

- without `renames`, drizzle-kit runs with stdin on /dev/null and pipes for output. Any
  prompt (a "created or renamed?" question, or the data-loss confirmation when
  `force=False`) then stops it: drizzle-kit 0.31 prints "Interactive prompts require a
  TTY" and (sic) exits 0 having changed nothing, so `PushResult.ok` is False; 1.0 reports
  `missing_hints` and exits 2.
- with `renames` (a mapping or a `.hints.json` file, see `Renames`), drizzle-kit 0.31
  (which has no non-interactive option) runs in a pseudo-terminal and each "created or
  renamed?" prompt is answered from `renames`, as `answer-rename-prompts.py` does for
  `generate`. `renames={}` gives the terminal with no answers. A prompt `renames` does not
  answer, and the data-loss / --strict confirmation, are never guessed: drizzle-kit is
  killed (returncode -9, `ok` False, the question in `unanswered`). drizzle-kit 1.0 gets
  the answers as `--hints` and needs no terminal; note that without one it wants a
  `confirm_data_loss` hint even with --force (exit 2, nothing changed).
- after `timeout` seconds the whole process group is killed and
  `subprocess.TimeoutExpired` is raised.

`--verbose` is always passed, so the output lists the statements push ran.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import sqlite3
import struct
import subprocess
import tempfile
import termios
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

HERE = Path(__file__).resolve().parent
STEPS = HERE / "schema-steps"
HARNESSES = ("drizzle0", "drizzle1")
HISTORY_TABLE = "__drizzle_migrations"

Harness = Literal["drizzle0", "drizzle1"]
# How push must answer its "created or renamed?" questions, keyed by what appeared:
#   {"products.title": "name"}  column products.title was renamed from products.name
#   {"orders": "purchases"}     table orders was renamed from purchases
#   {"products.title": None}    products.title is new ("create column")
# or a drizzle-kit 1.0 `--hints` file (tests/interop/schema-steps/*/*.hints.json).
Renames = Mapping[str, str | None] | Path

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>78]")
# "Is title column in products table created or renamed from another column?"
# "Is orders table created or renamed from another table?"
QUESTION = re.compile(
    r"Is (?P<name>\S+) (?:column in (?P<table>\S+) table|table) created or renamed from another"
)
# drizzle-kit's answer line once a choice is made: "~ name > title column will be renamed"
ACK = re.compile(r"will be (?:renamed|created)")
# Confirmation prompts we never answer (data loss without --force, --strict).
OTHER_PROMPT = re.compile(r"No, abort")
# An option of the prompt ("*" is U+276F, ">" U+203A in drizzle-kit's output):
#   "* + title        create column" / "  ~ name > title rename column"
OPTION = re.compile(r"^\s*(?:\u276f\s*)?([+~])\s+(.*?)\s*$")
DOWN = b"\x1b[B"
ENTER = b"\r"
SETTLE_S = 0.3  # output quiet this long: a prompt is waiting
ACK_WAIT_S = 10.0
SUCCESS = ("Changes applied", "No changes detected")
SPACE_AROUND_PUNCTUATION = re.compile(r" ?([(),]) ?")


@dataclass(frozen=True)
class PushResult:
    returncode: int  # drizzle-kit's exit code; -9 when killed at an unanswered prompt
    output: str  # stdout and stderr together, ANSI codes removed, "\r" turned into "\n"
    answers: tuple[str, ...] = ()  # "products.title: renamed from name", in prompt order
    unanswered: str | None = None  # the question no answer was given for

    @property
    def ok(self) -> bool:
        """drizzle-kit exited 0 and said it applied the changes (or that there were none).

        The exit code alone is not enough: drizzle-kit 0.31 exits 0 when it cannot prompt.
        """
        return self.returncode == 0 and any(s in self.output for s in SUCCESS)

    @property
    def applied(self) -> bool:
        return self.returncode == 0 and "Changes applied" in self.output


# --------------------------------------------------------------------------------------
# The schema steps


def shop_step(step: int | str, history: str = "shop") -> Path:
    """Absolute path of a step's schema: 4, "0004", "0004_rename_product_name_to_title",
    "rename_product_name_to_title" or "0004_rename_product_name_to_title.ts"."""
    folder = STEPS / history
    key = str(step).removesuffix(".ts")
    if isinstance(step, int) or key.isdigit():
        matches = sorted(folder.glob(f"{int(key):04d}_*.ts"))
    else:
        matches = [
            p
            for p in sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.ts"))
            if key in (p.stem, p.stem.split("_", 1)[1])
        ]
    if len(matches) != 1:
        raise LookupError(f"no single schema step {step!r} in {folder}: {matches}")
    return matches[0]


def hints_file(schema_ts: Path) -> Path | None:
    """The step's `NNNN_name.hints.json` (its rename answers), if it has one."""
    hints = schema_ts.with_name(f"{schema_ts.stem}.hints.json")
    return hints if hints.is_file() else None


# --------------------------------------------------------------------------------------
# Reading a database


def normalised_schema(db: Path) -> list[tuple[str, str, str]]:
    """Sorted (type, name, sql) of the app's schema objects, comparable across tools.

    sqlite_% objects and drizzle's history table are left out; in the sql, identifier
    quotes (`"` and backticks) are removed, whitespace runs become one space and the space
    next to "(", ")" and "," goes, so CREATE TABLE `a` (...) written by drizzle-kit,
    CREATE TABLE "a" (...) left by ALTER TABLE ... RENAME and the "...NOT NULL)" that
    ALTER TABLE ... DROP COLUMN leaves compare equal.
    """
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND tbl_name <> ?",
            (HISTORY_TABLE,),
        ).fetchall()
    return sorted((kind, name, _normalise_sql(sql or "")) for kind, name, sql in rows)


def _normalise_sql(sql: str) -> str:
    text = " ".join(sql.replace('"', "").replace("`", "").split())
    return SPACE_AROUND_PUNCTUATION.sub(r"\1", text)


# --------------------------------------------------------------------------------------
# Renames


def _load_renames(renames: Renames) -> dict[str, str | None]:
    """`Renames` as {"table.column" or "table": old name or None}."""
    if not isinstance(renames, Path):
        return dict(renames)
    answers: dict[str, str | None] = {}
    for hint in json.loads(renames.read_text(encoding="utf-8")):
        kind = hint.get("kind")
        if kind not in ("column", "table"):
            continue
        if hint.get("type") == "rename":
            answers[".".join(hint["to"][1:])] = hint["from"][-1]
        elif hint.get("type") == "create":
            answers[".".join(hint["entity"][1:])] = None
    return answers


def _as_hints(answers: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """The answers in drizzle-kit 1.0's `--hints` format (SQLite's schema is "public")."""
    hints: list[dict[str, Any]] = []
    for new, old in answers.items():
        path = ["public", *new.split(".")]
        kind = "column" if len(path) == 3 else "table"
        if old is None:
            hints.append({"type": "create", "kind": kind, "entity": path})
        else:
            hints.append({"type": "rename", "kind": kind, "from": [*path[:-1], old], "to": path})
    return hints


# --------------------------------------------------------------------------------------
# Running drizzle-kit


def _plain(raw: bytes) -> str:
    text = ANSI.sub("", raw.decode("utf-8", "replace"))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def drizzle_push(
    schema_ts: Path,
    db: Path,
    *,
    harness: Harness = "drizzle0",
    force: bool = True,
    renames: Renames | None = None,
    timeout: float = 180,
) -> PushResult:
    """`drizzle-kit push` of `schema_ts` onto the SQLite file `db` (created if missing)."""
    if harness not in HARNESSES:
        raise ValueError(f"harness must be one of {HARNESSES}, not {harness!r}")
    folder = HERE / harness
    kit = folder / "node_modules" / ".bin" / "drizzle-kit"
    if not kit.exists():
        raise FileNotFoundError(
            f"{kit} is missing: run `npm ci --no-audit --no-fund` in {folder.relative_to(HERE)}"
        )
    answers = None if renames is None else _load_renames(renames)
    work = Path(tempfile.mkdtemp(prefix=".push-", dir=folder))
    try:
        schema = work / "schema.ts"
        shutil.copyfile(schema_ts, schema)
        config = work / "drizzle.config.ts"
        config.write_text(
            "export default {\n"
            "  dialect: 'sqlite',\n"
            f"  schema: {json.dumps(str(schema))},\n"
            f"  dbCredentials: {{ url: {json.dumps(str(Path(db).resolve()))} }},\n"
            "};\n",
            encoding="utf-8",
        )
        argv = [str(kit), "push", "--config", str(config), "--verbose"]
        if force:
            argv.append("--force")
        if answers is not None and harness == "drizzle1":
            argv += ["--hints", json.dumps(_as_hints(answers))]
        if answers is not None and harness == "drizzle0":
            return _run_in_pty(argv, folder, answers, timeout)
        return _run_piped(argv, folder, timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_piped(argv: list[str], cwd: Path, timeout: float) -> PushResult:
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # one process group: a time-out kills esbuild's too
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc)
        raise subprocess.TimeoutExpired(argv, timeout, output=exc.output) from None
    return PushResult(proc.returncode, _plain(out))


def _choose(
    question: re.Match[str], options: list[tuple[str, str]], answers: Mapping[str, str | None]
) -> tuple[int, str] | None:
    """(index of the option to pick, what it means), or None when `answers` has no answer."""
    name, table = question.group("name"), question.group("table")
    key = f"{table}.{name}" if table else name
    if key not in answers:
        return None
    old = answers[key]
    for i, (mark, text) in enumerate(options):
        if old is None and mark == "+":
            return i, f"{key}: created"
        # "~ name > title rename column", the ">" being U+203A
        if old is not None and mark == "~" and text.startswith(f"{old} \u203a {name} "):
            return i, f"{key}: renamed from {old}"
    return None


def _run_in_pty(
    argv: list[str], cwd: Path, answers: Mapping[str, str | None], timeout: float
) -> PushResult:
    master, slave = pty.openpty()
    # wide enough that no option line wraps
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
    finally:
        os.close(slave)
    raw = b""
    given: list[str] = []
    handled = 0  # offset in the plain transcript up to which prompts are answered
    awaiting_ack: int | None = None
    deadline = time.monotonic() + timeout
    last_data = time.monotonic()

    def stop(question: str) -> PushResult:
        _kill_group(proc)
        note = f"\ndrizzle_push: no answer for {question!r}; drizzle-kit killed\n"
        return PushResult(proc.returncode, _plain(raw) + note, tuple(given), question)

    try:
        while True:
            if time.monotonic() > deadline:
                _kill_group(proc)
                raise subprocess.TimeoutExpired(argv, timeout, output=_plain(raw))
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    chunk = b""
                if not chunk:
                    break
                raw += chunk
                last_data = time.monotonic()
                continue
            if time.monotonic() - last_data < SETTLE_S:
                continue
            if proc.poll() is not None:
                break  # exited, and nothing more came (a grandchild may still hold the pty)
            plain = _plain(raw)
            if awaiting_ack is not None:
                ack = ACK.search(plain, awaiting_ack)
                if ack:
                    handled, awaiting_ack = ack.end(), None
                elif time.monotonic() - last_data > ACK_WAIT_S:
                    return stop("(drizzle-kit did not take the answer)")
                continue
            question = QUESTION.search(plain, handled)
            if question is None:
                other = OTHER_PROMPT.search(plain, handled)
                if other:
                    return stop(plain[max(handled, other.start() - 300) : other.end()].strip())
                continue
            options: list[tuple[str, str]] = []
            for line in plain[question.end() :].split("\n")[1:]:
                option = OPTION.match(line)
                if option:
                    options.append((option.group(1), option.group(2)))
                elif options and line.strip():
                    break
            choice = _choose(question, options, answers)
            if choice is None:
                return stop(question.group(0) + "?")
            index, meaning = choice
            given.append(meaning)
            os.write(master, DOWN * index)
            time.sleep(0.1)
            os.write(master, ENTER)
            awaiting_ack = question.end()
            last_data = time.monotonic()
        returncode = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise subprocess.TimeoutExpired(argv, timeout, output=_plain(raw)) from None
    finally:
        os.close(master)
    return PushResult(returncode, _plain(raw), tuple(given))
