"""The rehearsal's scratch folders: named for the process that owns them, and removed when
that process is gone.

A rehearsal copies the database twice into a private folder (tempfile.mkdtemp in $TMPDIR or
--rehearsal-dir) and removes it when done, which a killed run (SIGKILL, the OOM killer, the
container stopped) cannot. The folder is named `litedeploy-rehearsal-<pid>-<start>-XXXXXXXX`:
the pid and the process's start time (clock ticks after boot, from /proc/<pid>/stat). A pid
alone does not say the owner is gone: pids are reused, and in a container the entrypoint is
pid 1 on every start. A pid with its start time does.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from ..base import durable

log = logging.getLogger("litedeploy.entrypoint")

PREFIX = "litedeploy-rehearsal-"
NAME = re.compile(re.escape(PREFIX) + r"(\d+)-(\d+)-[A-Za-z0-9_]+")


def prefix() -> str:
    """The name prefix of this process's rehearsal folder (for tempfile.mkdtemp)."""
    pid = os.getpid()
    return f"{PREFIX}{pid}-{_start_time(pid) or 0}-"


def remove_stale(workdir: Path | None) -> list[Path]:
    """Remove the rehearsal folders in `workdir` ($TMPDIR) whose owning process is gone.

    Only folders named by `prefix`, owned by this user, reached without following a symlink
    (neither the folder's nor any inside it). Never raises: a leftover is no reason to stop.
    """
    where = workdir or Path(tempfile.gettempdir())
    try:
        folder = durable.open_folder(where)
    except OSError:
        return []
    removed = []
    try:
        for entry in os.scandir(folder.fd):
            found = NAME.fullmatch(entry.name)
            if found is None or _alive(int(found[1]), int(found[2])):
                continue
            try:
                st = os.stat(entry.name, dir_fd=folder.fd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                    continue
                shutil.rmtree(entry.name, dir_fd=folder.fd)  # fd-based: follows no symlink
            except OSError as exc:
                log.warning("warning: cannot remove %s: %s", where / entry.name, exc)
                continue
            removed.append(where / entry.name)
            log.info(
                "removed %s, the rehearsal copy of a run that is gone (pid %s)",
                where / entry.name,
                found[1],
            )
    except OSError as exc:
        log.warning("warning: cannot look for old rehearsal copies in %s: %s", where, exc)
    finally:
        folder.close()
    return removed


def _alive(pid: int, started: int) -> bool:
    """Is the process that made the folder still running (the same pid, started then)?"""
    now = _start_time(pid)
    if now is not None:
        return started in (0, now)  # 0: made where /proc could not be read
    if Path("/proc/self/stat").exists():
        return False  # /proc works and has no such pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat, or None when there is no such process (or no /proc)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()  # after "pid (comm) ": field 3 onwards
    return int(fields[19])
