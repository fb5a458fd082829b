"""What `run` is told about backups, without the backup machinery (backup.py).

The start-up path reads these for every start; backup.py (shutil, hashing, manifests) is
loaded only when a backup is taken, listed or restored.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path


class Method(StrEnum):
    """How the snapshot is taken."""

    AUTO = "auto"  # copy when the write lock can be had with an empty WAL, else online
    COPY = "copy"  # checkpoint, hold the write lock, copy the file in the kernel
    ONLINE = "online"  # SQLite's online backup API: consistent while others write


def default_dir(db_path: Path) -> Path:
    """`<db dir>/backups`."""
    return db_path.parent / "backups"
