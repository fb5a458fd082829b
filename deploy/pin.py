"""The tag `deploy` last started, pinned where Compose reads it: the stack's `.env`.

`deploy` passes the tag to its own Compose commands; a later plain `docker compose up -d`
(a reboot script, a colleague) would start the compose file's default instead, which may
be an image that refuses the newer database. So after each deploy, rollback or restore the
tag that runs is written to `.env` beside the compose file (both Compose versions read it
there): one `VARIABLE=tag` line, replaced in place, every other line kept as it was. A
variable set in the shell still wins, as Compose documents.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from entrypoint.base import durable

COMMENT = "# the tag `deploy` last started (litedeploy): plain `docker compose up -d` uses it"


def dotenv(compose_file: Path) -> Path:
    return compose_file.resolve().parent / ".env"


def pinned(path: Path, variable: str) -> str | None:
    """The value `.env` gives `variable` (the last assignment), or None."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    found = None
    for line in lines:
        if (m := _assignment(variable).match(line)) is not None:
            found = m.group("value").strip().strip("'\"")
    return found


def pin(path: Path, variable: str, tag: str) -> str:
    """Write `variable=tag` into `.env`; returns what was done, for the progress line.

    A `.env` that is a symbolic link (to a secrets file, say) is not rewritten: what it
    points at is the operator's.
    """
    if path.is_symlink():
        return (
            f"{path} is a symbolic link, left as it is: set {variable}={tag} there, or plain "
            f"`docker compose up -d` starts the compose file's default tag"
        )
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        st, text = None, ""
    if pinned(path, variable) == tag and st is not None:
        return f"{variable}={tag} already in {path.name}"
    lines, placed = [], False
    for line in text.splitlines():
        if _assignment(variable).match(line):
            if not placed:
                lines.append(f"{variable}={tag}")
                placed = True
            continue  # a second assignment would override the first
        lines.append(line)
    if not placed:
        lines += [COMMENT, f"{variable}={tag}"]
    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o644
    durable.atomic_write(path, ("\n".join(lines) + "\n").encode("utf-8"), mode=mode)
    if st is not None and os.geteuid() == 0:
        os.chown(path, st.st_uid, st.st_gid)  # the operator's file stays the operator's
    return f"pinned {variable}={tag} in {path} (plain `docker compose up -d` starts it too)"


def _assignment(variable: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*(?:export\s+)?{re.escape(variable)}\s*=(?P<value>.*)$")
