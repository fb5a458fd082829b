"""Run the real `drizzle-kit generate` (0.31 or 1.0) on schema steps a test writes.

`generate(harness, steps, dest)` writes the migrations folder drizzle-kit itself makes for
a history of `Step`s (each the FULL schema after it, as in schema-steps/), so a test can
check litedeploy against snapshots and SQL nobody here wrote by hand: drizzle-kit decides
how an expression index, a partial index, a named key or a generated column is recorded.

- a step with `sql` is a custom migration (`drizzle-kit generate --custom`, whose empty
  file then gets that SQL): drizzle-kit copies the previous snapshot for it, as it does
  for a project's hand-written migrations;
- a step with `renames` answers drizzle-kit's "created or renamed?" questions (1.0's
  `--hints` format): 1.0 takes them as `--hints-file`, 0.31 gets them through
  answer-rename-prompts.py in a pseudo-terminal; nothing is guessed.

Each run works in a private `<harness>/.gen-XXXX/` (so `drizzle-orm` resolves from the
harness's node_modules), removed afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drizzle_push import HARNESSES, HERE, Harness

FORMATS = {"drizzle0": "drizzle-journal", "drizzle1": "drizzle-folders"}
TIMEOUT_S = 120


@dataclass(frozen=True)
class Step:
    name: str
    schema: str  # the whole schema.ts after this step
    sql: str | None = None  # a custom migration's SQL (drizzle-kit generate --custom)
    renames: tuple[dict[str, Any], ...] = ()  # drizzle-kit 1.0 --hints entries


@dataclass(frozen=True)
class Generated:
    """A migrations folder drizzle-kit wrote."""

    harness: Harness
    folder: Path

    @property
    def format(self) -> str:
        return FORMATS[self.harness]

    def migrations(self) -> list[Path]:
        """The migration SQL files, oldest first."""
        if self.harness == "drizzle0":
            return sorted(self.folder.glob("[0-9][0-9][0-9][0-9]_*.sql"))
        return sorted(self.folder.glob("*/migration.sql"))

    def snapshot(self, step: int) -> Path:
        """The snapshot drizzle-kit wrote with step `step` (0-based; -1: the last)."""
        if self.harness == "drizzle0":
            number = step if step >= 0 else len(self.migrations()) + step
            return self.folder / "meta" / f"{number:04d}_snapshot.json"
        return self.migrations()[step].parent / "snapshot.json"

    def drop_snapshots(self, last: int) -> None:
        """Remove the snapshots of the last `last` migrations, as a project whose newest
        migrations were written without drizzle-kit has none for them."""
        count = len(self.migrations())
        for path in [self.snapshot(step) for step in range(count - last, count)]:
            path.unlink()


def generate(harness: Harness, steps: list[Step], dest: Path) -> Generated:
    """drizzle-kit's migrations folder for `steps`, copied to `dest`."""
    if harness not in HARNESSES:
        raise ValueError(f"harness must be one of {HARNESSES}, not {harness!r}")
    folder = HERE / harness
    kit = folder / "node_modules" / ".bin" / "drizzle-kit"
    if not kit.exists():
        raise FileNotFoundError(
            f"{kit} is missing: run `npm ci --no-audit --no-fund` in {folder.relative_to(HERE)}"
        )
    work = Path(tempfile.mkdtemp(prefix=".gen-", dir=folder))
    try:
        out = Generated(harness, work / "out")
        # paths relative to the harness: drizzle-kit 0.31 prefixes an absolute --out with "./"
        here = work.relative_to(folder)
        for step in steps:
            (work / "schema.ts").write_text(step.schema, encoding="utf-8")
            argv = [str(kit), "generate", "--dialect", "sqlite", "--schema", f"{here}/schema.ts"]
            argv += ["--out", f"{here}/out", "--name", step.name]
            if step.sql is not None:
                argv.append("--custom")
            before = len(out.migrations()) if out.folder.exists() else 0
            said = _run(harness, argv, folder, work, step)
            written = out.migrations()
            if len(written) != before + 1:  # 0.31 exits 0 on some errors: count what it wrote
                raise RuntimeError(
                    f"{step.name}: drizzle-kit wrote {len(written) - before} migrations, "
                    f"expected 1: {said}"
                )
            if step.sql is not None:
                written[-1].write_text(step.sql, encoding="utf-8")
            if harness == "drizzle1":
                time.sleep(1.1)  # 1.0's folder names have one-second precision: keep them ordered
        shutil.copytree(out.folder, dest)
        return Generated(harness, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(harness: Harness, argv: list[str], cwd: Path, work: Path, step: Step) -> str:
    if step.renames:
        hints = work / "hints.json"
        hints.write_text(json.dumps(list(step.renames)), encoding="utf-8")
        if harness == "drizzle1":
            argv = [*argv, "--hints-file", str(hints)]
        else:
            argv = [sys.executable, str(HERE / "answer-rename-prompts.py"), str(hints), "--", *argv]
    proc = subprocess.run(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    said = f"{proc.stdout[-1500:]}{proc.stderr[-1500:]}"
    if proc.returncode != 0:
        raise RuntimeError(f"drizzle-kit generate ({step.name}) exited {proc.returncode}: {said}")
    return said


def upgrade(journal: Generated, dest: Path) -> Generated:
    """`drizzle-kit up` (1.0) on a copy of a 0.31 journal folder: the 1.0 folder format with
    version 7 snapshots, as a project moving to drizzle 1.0 converts its history."""
    if journal.harness != "drizzle0":
        raise ValueError("drizzle-kit up converts a drizzle0 (0.31 journal) folder")
    folder = HERE / "drizzle1"
    kit = folder / "node_modules" / ".bin" / "drizzle-kit"
    work = Path(tempfile.mkdtemp(prefix=".gen-", dir=folder))
    try:
        shutil.copytree(journal.folder, work / "out")
        here = work.relative_to(folder)
        config = f"{{ dialect: 'sqlite', out: '{here}/out', schema: '{here}/schema.ts' }}"
        (work / "drizzle.config.ts").write_text(f"export default {config};\n", encoding="utf-8")
        proc = subprocess.run(
            [str(kit), "up", "--config", str(work / "drizzle.config.ts")],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        if proc.returncode != 0 or (work / "out" / "meta").exists():
            raise RuntimeError(f"drizzle-kit up exited {proc.returncode}: {proc.stdout[-1500:]}")
        shutil.copytree(work / "out", dest)
        return Generated("drizzle1", dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
