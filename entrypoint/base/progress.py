"""How far a long copy has got: for backups, the rehearsal's snapshot and restores, and the
hash that verifies a large file (a backup's copy read back, a backup before it is restored).

On a terminal, one line updated in place (`entrypoint: backup: 1.2 GiB of 4.0 GiB (30%)`),
cleared when the copy ends (the line that follows says what was done). When stderr is not a
terminal (`docker logs`, a log collector) or LITEDEPLOY_LOG_FORMAT is json, a plain log line
every LOG_EVERY seconds instead, so a copy that takes minutes is not silent. Nothing at all
for a file under SMALL bytes: those copies take well under a second.

The copy itself is not touched: SQLite's backup stays one step (one consistent snapshot while
others write) and copy_file_range one call. A thread watches the size of the file being
written and compares it with the size expected (`watching`); a hash counts the bytes it has
read (`counting`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from .contract import LOG_FORMAT_ENV

log = logging.getLogger("litedeploy.entrypoint")

SMALL = 64 << 20  # bytes: below this, no progress at all
TTY_EVERY = 0.2  # seconds between redraws of the terminal line
LOG_EVERY = 10.0  # seconds between plain lines when stderr is no terminal


def human(size: float) -> str:
    """1.2 GiB, 340.0 MiB, 12 KiB, 512 B."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit in ("B", "KiB") else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def line(label: str, done: int, total: int) -> str:
    done = min(done, total)
    return f"{label}: {human(done)} of {human(total)} ({done * 100 // max(total, 1)}%)"


def _written(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@contextlib.contextmanager
def watching(
    label: str,
    target: Path,
    total: int,
    *,
    stream: TextIO | None = None,
    small: int = SMALL,
    every: float | None = None,
) -> Iterator[None]:
    """Report the growth of `target` towards `total` bytes while the block runs."""
    with _reporting(label, lambda: _written(target), total, stream, small, every):
        yield


@contextlib.contextmanager
def counting(
    label: str,
    total: int,
    *,
    stream: TextIO | None = None,
    small: int = SMALL,
    every: float | None = None,
) -> Iterator[Callable[[int], None]]:
    """Report the bytes handed to the yielded function (a hash's reads) towards `total`."""
    done = [0]

    def add(n: int) -> None:
        done[0] += n  # one writer; the reporting thread only reads a whole int

    with _reporting(label, lambda: done[0], total, stream, small, every):
        yield add


@contextlib.contextmanager
def _reporting(
    label: str,
    measure: Callable[[], int],
    total: int,
    stream: TextIO | None,
    small: int,
    every: float | None,
) -> Iterator[None]:
    if total < small:
        yield
        return
    out = stream if stream is not None else sys.stderr
    json_lines = os.environ.get(LOG_FORMAT_ENV, "").strip().lower() == "json"
    tty = not json_lines and _isatty(out)
    pause = every if every is not None else (TTY_EVERY if tty else LOG_EVERY)
    stop = threading.Event()

    def draw() -> None:
        text = line(label, measure(), total)
        if tty:
            out.write(f"\rentrypoint: {text}\033[K")
            out.flush()
        else:
            log.info("%s", text)

    def watch() -> None:
        if tty:
            draw()  # at once: a terminal shows the work has started
        while not stop.wait(pause):
            draw()

    thread = threading.Thread(target=watch, name=f"progress {label}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if tty:
            out.write("\r\033[K")
            out.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False
