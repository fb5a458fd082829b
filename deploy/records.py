"""The deploy history: an append-only JSON-lines file, one record per deploy or rollback."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def history_path(state_dir: Path) -> Path:
    return state_dir / "history.jsonl"


def append(state_dir: Path, record: dict[str, Any]) -> None:
    """Append one record and fsync it: the history survives a crash right after a deploy."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(history_path(state_dir), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # end a line torn by a crash, or this record is lost with it
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read(state_dir: Path) -> list[dict[str, Any]]:
    """Every record, oldest first; a torn last line (crash mid-write) is skipped."""
    try:
        lines = history_path(state_dir).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def rollback_tags(state_dir: Path) -> set[str]:
    """The rollback tags this stack's deploys made (`repository:rollback-<deploy id>`): the
    only ones its pruning may remove, whoever else shares the image repository."""
    return {str(r["rollback_image"]) for r in read(state_dir) if r.get("rollback_image")}
