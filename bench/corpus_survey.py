"""Survey: ours and drizzle's migrator on the real histories in tests/corpus, at every cut point.

For each history (homarr: 42 migrations, dyad: 50) and each cut point k = 0..N, the database an
app would have after drizzle applied the first k migrations, filled with 3 plausible rows per
table (`tests/corpus_harness.prepare`; k = 0 is "no database yet"), then, each on its own copy:

    a) entrypoint run --db COPY --migrations HISTORY --format drizzle-journal -- true
       exit code; the stderr lines that say what blocked (findings at block/error level, the
       rehearsal's lines, the final `error:` line), the warn-level findings apart; and what the
       run itself changed when it went through (rows per table, values per column)
    b) entrypoint rehearse --json: its blocking losses (kind, object) and failure
    c) drizzle-orm 0.45's migrate(): ok / error, migrations it recorded, and what it lost:
       rows per table, non-NULL values per column, tables and columns gone (renames followed by
       name up to case and underscores, as in 0016's camelCase -> snake_case)

One line per (history, k) goes to stdout; the whole of it to --out as JSON.

    .venv/bin/python bench/corpus_survey.py [--history homarr] [--cuts 0,5,12]
        [--out survey.json] [--rev HEAD | --src DIR] [--work DIR]

--rev REV runs `python -m entrypoint` from `git archive REV entrypoint` (a temporary folder)
instead of the working tree: a before/after comparison while entrypoint/ is being changed;
--src DIR runs DIR/entrypoint (a frozen copy of a working tree, say).
Exit codes other than 0, 15 and 6, and a Python traceback on stderr, are marked `!!`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

import corpus_harness as ch  # noqa: E402

EXPECTED_EXITS = {0, 15, 6}
_RULE = re.compile(r"\[([a-z0-9-]+)\]")
_REHEARSAL_LOSS = re.compile(r"entrypoint: rehearsal: (?!.*\bon a copy\b)")
_FINDING = re.compile(r"\bfinding (block|error|warn|warning|info)\b")


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def export_rev(rev: str, dest: Path) -> Path:
    """`git archive REV entrypoint` unpacked into dest: a package importable from dest."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "entrypoint"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def stderr_lines(stderr: str) -> dict[str, list[str]]:
    """What blocked (block/error findings, rehearsal lines, the final error) and the warnings."""
    lines = [line.rstrip() for line in stderr.splitlines() if line.strip()]
    blocked, warned = [], []
    for line in lines:
        level = _FINDING.search(line)
        if level and level.group(1) in ("block", "error"):
            blocked.append(line)
        elif level and level.group(1) in ("warn", "warning"):
            warned.append(line)
        elif "rehearsal:" in line or ("rehearsal " in line and "block" in line):
            blocked.append(line)
    final = next((line for line in reversed(lines) if "error:" in line), None)
    if final is not None and final not in blocked:
        blocked.append(final)
    return {"blocked": blocked, "warned": warned}


def rule_counts(lines: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in lines:
        if _FINDING.search(line) and (m := _RULE.search(line)):
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def history_rows(db: Path) -> int | None:
    if not db.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        try:
            return int(conn.execute('SELECT count(*) FROM "__drizzle_migrations"').fetchone()[0])
        except sqlite3.OperationalError:
            return None


def survey_one(history: ch.History, k: int, work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    where = work / f"{history.name}-{k:04d}"
    shutil.rmtree(where, ignore_errors=True)
    built = ch.prepared(history, k)
    out: dict[str, Any] = {
        "history": history.name,
        "k": k,
        "pending": len(history) - k,
        "fill": {
            "seconds": round(built.seconds, 3),
            "rows": built.fill.rows if built.fill else {},
            "problems": built.fill.problems if built.fill else [],
        },
    }

    # a) run, on a copy of its own
    db = ch.prepare(history, k, where / "run")
    before = ch.counts(db)
    t = time.perf_counter()
    proc = ch.run_ours(db, history.folder)
    seconds = time.perf_counter() - t
    lines = stderr_lines(proc.stderr)
    changes = ch.compare(before, ch.counts(db)) if db.exists() else None
    out["run"] = {
        "exit": proc.returncode,
        "seconds": round(seconds, 3),
        "blocked": lines["blocked"],
        "warned": lines["warned"],
        "block_rules": rule_counts(lines["blocked"]),
        "traceback": "Traceback" in proc.stderr,
        "applied_after": history_rows(db),
        "changes": changes.to_json() if changes else None,
        "stderr_tail": proc.stderr.splitlines()[-3:],
    }

    # b) rehearse --json, on another copy (it only reads)
    db = ch.prepare(history, k, where / "rehearse")
    t = time.perf_counter()
    reh = ch.rehearse_ours(db, history.folder)
    out["rehearse"] = {
        "exit": reh.proc.returncode,
        "seconds": round(time.perf_counter() - t, 3),
        "verdict": (reh.report or {}).get("verdict"),
        "failed": reh.failed,
        "blocking": [
            {"kind": x.get("kind"), "object": x.get("object"), "message": x.get("message")}
            for x in reh.blocking
        ],
        "losses": len(reh.losses),
        "json": reh.report is not None,
        "traceback": "Traceback" in reh.proc.stderr,
        "stderr_tail": [] if reh.report is not None else reh.proc.stderr.splitlines()[-3:],
    }

    # c) drizzle, on a copy (run_drizzle copies `db`, which rehearse left as it was)
    dz = ch.run_drizzle(db, history.folder)
    out["drizzle"] = {
        **dz.to_json(),
        "applied_before": history_rows(db),
        "applied_after": history_rows(dz.copy),
    }
    out["seconds"] = round(time.perf_counter() - started, 3)
    shutil.rmtree(where, ignore_errors=True)
    return out


def _few(items: dict[str, int], limit: int = 3) -> str:
    parts = [f"{name} {n}" for name, n in list(items.items())[:limit]]
    more = len(items) - limit
    return ", ".join(parts) + (f" +{more}" if more > 0 else "")


def _losses(c: dict[str, Any]) -> str:
    """rows-N[table n, ...] values-N[table.column n, ...]; `(gone)`: no longer there by any name."""
    rows = {**c["rows_lost"], **{f"{t}(gone)": n for t, n in c["tables_gone"].items()}}
    vals = {**c["values_lost"], **{f"{x}(gone)": n for x, n in c["columns_gone"].items()}}
    out = []
    if rows:
        out.append(f"rows-{sum(rows.values())}[{_few(rows)}]")
    if vals:
        out.append(f"values-{sum(vals.values())}[{_few(vals, 2)}]")
    return " ".join(out)


def line(r: dict[str, Any]) -> str:
    run, reh, dz = r["run"], r["rehearse"], r["drizzle"]
    odd = run["exit"] not in EXPECTED_EXITS or run["traceback"] or reh["traceback"]
    odd = odd or reh["exit"] not in EXPECTED_EXITS or not reh["json"]
    mark = "!!" if odd else "  "
    rules = " ".join(f"{rule}x{n}" for rule, n in run["block_rules"].items())
    rehearsal_lines = [x for x in run["blocked"] if _REHEARSAL_LOSS.search(x)]
    if rehearsal_lines:
        rules = f"{rules} rehearsal-lossx{len(rehearsal_lines)}".strip()
    if not rules and run["exit"] != 0:
        final = run["blocked"][-1] if run["blocked"] else (run["stderr_tail"] or [""])[-1]
        rules = final.replace("entrypoint: ", "")[:70]
    ours_lost = ""
    if run["exit"] == 0 and run["changes"]:
        ours_lost = _losses(run["changes"])
        ours_lost = f" after: {ours_lost}" if ours_lost else ""
    if reh["failed"]:
        rehearse = f"FAIL {reh['failed'].get('migration')}"
    elif reh["blocking"]:
        kinds: dict[str, int] = {}
        for b in reh["blocking"]:
            kinds[b["kind"]] = kinds.get(b["kind"], 0) + 1
        rehearse = "block " + " ".join(f"{kind}x{n}" for kind, n in kinds.items())
    else:
        rehearse = reh["verdict"] or f"exit {reh['exit']}"
    if dz["ok"]:
        drizzle = f"ok {_losses(dz)}".rstrip()
    else:
        err = (dz["error"] or "").split(" | caused by: ")[-1]
        drizzle = f"ERROR after {dz['applied_after']}: {err[:60]}"
    return (
        f"{mark}{r['history']:<6} k={r['k']:>2} pend={r['pending']:>2} | "
        f"run {run['exit']:>3} {rules}{ours_lost} | rehearse {rehearse} | "
        f"drizzle {drizzle} | {r['seconds']:.1f}s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", choices=sorted(ch.HISTORIES), action="append")
    parser.add_argument("--cuts", help="comma-separated cut points, e.g. 0,5,12 (default: all)")
    parser.add_argument("--out", type=Path, help="write the full results here (JSON)")
    parser.add_argument("--rev", help="run entrypoint from this git revision (git archive)")
    parser.add_argument(
        "--src", type=Path, help="run entrypoint from DIR/entrypoint (a copy of the package)"
    )
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()

    ch.require_drizzle()
    work = args.work or Path(tempfile.mkdtemp(prefix="corpus-survey-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.rev and args.src:
        parser.error("--rev and --src exclude each other")
    if args.src:
        if not (args.src / "entrypoint" / "__main__.py").is_file():
            parser.error(f"{args.src}/entrypoint/__main__.py does not exist")
        ch.ENTRYPOINT_SRC = args.src.resolve()
        source = f"{ch.ENTRYPOINT_SRC}/entrypoint"
    elif args.rev:
        commit = git("rev-parse", args.rev)
        ch.ENTRYPOINT_SRC = export_rev(args.rev, work / "src")
        source = f"{args.rev} ({commit[:12]})"
    else:
        dirty = git("status", "--porcelain", "--", "entrypoint")
        source = f"working tree at {git('rev-parse', '--short=12', 'HEAD')}" + (
            " + uncommitted changes in entrypoint/" if dirty else ""
        )
    cuts = [int(c) for c in args.cuts.split(",")] if args.cuts else None
    names = args.history or list(ch.HISTORIES)

    print(f"entrypoint from: {source}", flush=True)
    started = time.perf_counter()
    results = []
    for name in names:
        history = ch.HISTORIES[name]
        for k in cuts if cuts is not None else range(len(history) + 1):
            if not 0 <= k <= len(history):
                print(f"{name}: no cut point {k} (0..{len(history)})", file=sys.stderr)
                continue
            result = survey_one(history, k, work)
            results.append(result)
            print(line(result), flush=True)
    total = time.perf_counter() - started
    per = total / len(results) if results else 0.0
    print(f"{len(results)} cut point(s) in {total:.1f} s ({per:.2f} s per cut point)")

    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "entrypoint": source,
                    "rows_per_table": ch.ROWS_PER_TABLE,
                    "seed": ch.SEED,
                    "total_seconds": round(total, 3),
                    "results": results,
                },
                indent=2,
            )
        )
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
