"""Hand the process over to the app: drop root if asked, then exec so the app is PID 1."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..base import signals
from ..base.errors import CommandNotExecutable, CommandNotFound, DatabaseError, UsageError
from . import acl

log = logging.getLogger("litedeploy.entrypoint")


def resolve_command(command: Sequence[str]) -> str:
    """The executable's path; 127/126-style errors when it is missing or not executable.

    Checked before migrating, so that an app that cannot start does not leave a migrated
    database behind it: that includes a file exec would refuse for its content.
    """
    program = command[0]
    if os.sep in program:
        path = Path(program)
        if not path.exists():
            raise CommandNotFound(f"command not found: {program}")
        if path.is_dir() or not os.access(path, os.X_OK):
            raise CommandNotExecutable(f"command is not executable: {program}")
        _refuse_unrunnable(program, path)
        return program
    found = shutil.which(program)
    if found is None:
        raise CommandNotFound(
            f"command not found: {program}",
            hint="check the image's CMD, or the command after `--`, and PATH",
        )
    _refuse_unrunnable(program, Path(found))
    return found


def _refuse_unrunnable(program: str, path: Path) -> None:
    """exec runs an ELF binary or a `#!` script whose interpreter exists; anything else fails
    with ENOEXEC (a shell would have run it as a script; os.execv does not)."""
    try:
        with path.open("rb") as f:
            head = f.read(256)
    except OSError:
        return  # execute-only: exec can still run a binary we may not read
    if head.startswith(b"\x7fELF") or _binfmt_misc_runs(path, head):
        return
    if head.startswith(b"#!"):
        line = head[2:].split(b"\n", 1)[0].strip()
        interpreter = os.fsdecode(line.split()[0]) if line.split() else ""
        if interpreter and os.path.exists(interpreter):
            return
        raise CommandNotExecutable(
            f"cannot execute {program}: its #! line names the interpreter "
            f"{interpreter or '(nothing)'!r}, which does not exist in this image",
            hint="install the interpreter in the image, or fix the first line of the script",
        )
    what = "it is empty" if not head else "it starts with neither #! nor an ELF header"
    raise CommandNotExecutable(
        f"cannot execute {program}: {what} (a script without a #! line?)",
        hint=f"make its first line a #! line (#!/bin/sh, #!/usr/bin/env node), or run it "
        f"through its interpreter: -- sh {program}",
    )


BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")


def _binfmt_misc_runs(path: Path, head: bytes) -> bool:
    """True when a binfmt_misc handler of the kernel claims the file (a jar, another CPU's
    ELF, wasm): by its magic bytes, or by its name's extension."""
    try:
        if BINFMT_MISC.joinpath("status").read_text().strip() != "enabled":
            return False
        entries = [e for e in BINFMT_MISC.iterdir() if e.name not in ("register", "status")]
    except OSError:
        return False
    for entry in entries:
        try:
            state, *lines = entry.read_text().splitlines()
        except (OSError, ValueError):
            continue
        fields = dict(line.split(" ", 1) for line in lines if " " in line)
        if state != "enabled":
            continue
        if "extension" in fields and path.name.endswith(fields["extension"].strip()):
            return True
        if "magic" in fields and _matches(head, fields):
            return True
    return False


def _matches(head: bytes, fields: dict[str, str]) -> bool:
    try:
        magic = bytes.fromhex(fields["magic"].strip())
        mask = bytes.fromhex(fields.get("mask", "ff" * len(magic)).strip())
        offset = int(fields.get("offset", "0"))
    except ValueError:
        return False
    window = head[offset : offset + len(magic)]
    return len(window) == len(magic) and all(
        b & m == want & m for b, want, m in zip(window, magic, mask, strict=False)
    )


def lookup_user(name: str) -> pwd.struct_passwd:
    """The account to run the app as, by name or numeric uid."""
    try:
        return pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, ValueError):
        raise UsageError(
            f"user {name!r} does not exist in this image",
            hint="create it in the Dockerfile (useradd) or fix --user / LITEDEPLOY_APP_USER",
        ) from None


def give_files_to(user: pwd.struct_passwd, paths: Sequence[Path]) -> None:
    """Let the app's user write the database folder and own the database's root-owned files.

    SQLite creates -wal/-shm/-journal files beside the database, so the folder must be
    writable too. The folder is usually the host's (a bind mount): its owner is never
    changed; an ACL entry for the user is added instead (`acl.grant`), or, on a filesystem
    without ACLs, the root-owned folder is given to the user as before, with a warning.
    Shared folders (sticky, like /tmp) and / are never touched.
    """
    if user.pw_uid == 0:
        return
    for path in paths:
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if not (st.st_mode & stat.S_ISVTX or path.resolve() == Path("/")):
                _let_write(user, path, st)
            continue
        if st.st_uid == 0:
            os.chown(path, user.pw_uid, user.pw_gid)
            log.info("gave %s to %s", path, user.pw_name)


def _let_write(user: pwd.struct_passwd, folder: Path, st: os.stat_result) -> None:
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    mode = st.st_mode
    if (
        st.st_uid == user.pw_uid
        or (st.st_gid in groups and mode & 0o030 == 0o030)
        or mode & 0o003 == 0o003
    ):
        return  # the mode bits let it already
    try:
        if acl.grant(folder, user.pw_uid):
            log.info(
                "let %s write %s (ACL user:%d:rwx; owner %d:%d unchanged)",
                user.pw_name,
                folder,
                user.pw_uid,
                st.st_uid,
                st.st_gid,
            )
    except acl.Unsupported:
        if st.st_uid != 0:
            raise DatabaseError(
                f"{user.pw_name} (uid {user.pw_uid}) cannot write {folder}, owned by uid "
                f"{st.st_uid}, and its filesystem keeps no ACLs to grant it",
                hint=f"on the host, make the folder writable for uid {user.pw_uid} (chown or "
                "chmod), or run the app as its owner",
            ) from None
        os.chown(folder, user.pw_uid, user.pw_gid)
        log.warning(
            "warning: %s keeps no ACLs; gave the root-owned folder to %s so that SQLite can "
            "create its -wal and -shm files there",
            folder,
            user.pw_name,
        )


def drop_privileges(user: pwd.struct_passwd) -> None:
    """Switch groups, gid and uid (in that order) to the given account."""
    if os.getuid() == user.pw_uid:
        return
    if os.getuid() != 0:
        raise UsageError(
            f"--user {user.pw_name} needs the entrypoint to start as root "
            f"(running as uid {os.getuid()})",
            hint="drop --user / LITEDEPLOY_APP_USER, or start the container as root",
        )
    os.initgroups(user.pw_name, user.pw_gid)
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    os.environ["HOME"] = user.pw_dir
    os.environ["USER"] = user.pw_name
    log.info("running as %s (uid %d, gid %d)", user.pw_name, user.pw_uid, user.pw_gid)


# What the self-contained (PyInstaller) entrypoint's loader adds to its own environment: its
# library folder in front of LD_LIBRARY_PATH (the original kept in LD_LIBRARY_PATH_ORIG) and
# its bookkeeping variables. The app must not inherit them: it would load the bundle's
# libsqlite3 or libz instead of its own, and a copy of the entrypoint it starts would take
# itself for a child of this one.
FROZEN_LIBRARY_PATH = "LD_LIBRARY_PATH"
FROZEN_LIBRARY_PATH_ORIG = "LD_LIBRARY_PATH_ORIG"
FROZEN_PREFIX = "_PYI_"


def app_environment(environ: Mapping[str, str], *, frozen: bool) -> dict[str, str]:
    """The environment to exec the app with: the container's, minus the frozen loader's."""
    env = dict(environ)
    if not frozen:
        return env
    original = env.pop(FROZEN_LIBRARY_PATH_ORIG, None)
    if original is None:
        env.pop(FROZEN_LIBRARY_PATH, None)
    else:
        env[FROZEN_LIBRARY_PATH] = original
    return {k: v for k, v in env.items() if not k.startswith(FROZEN_PREFIX)}


def exec_command(command: Sequence[str]) -> None:
    """Replace this process with the command. Returns only by raising."""
    path = resolve_command(command)
    env = app_environment(os.environ, frozen=bool(getattr(sys, "frozen", False)))
    log.info("exec %s", " ".join(command))
    sys.stdout.flush()
    sys.stderr.flush()
    signals.check()  # a stop that arrived on the way is not handed to the app to ignore
    signals.restore_defaults()  # the app gets signals as if started by itself
    try:
        os.execve(path, list(command), env)  # noqa: S606 - argv as data, no shell
    except OSError as exc:
        raise CommandNotExecutable(f"cannot execute {command[0]}: {exc.strerror}") from exc
