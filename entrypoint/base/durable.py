"""Durable file operations: copy through a temporary file, fsync, rename, fsync the folder.

Also the one way to open a folder we write into (`open_folder`): the entrypoint often runs as
root in a data folder the app's user owns, so a symlink found there is followed only when
no other user could have put it there, and a folder is created private, never chmodded.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .record import Record

TMP_SUFFIX = ".tmp"
CHUNK = 1 << 20
MAX_LINKS = 40  # as the kernel's own limit on symlinks in one lookup
_PATH = getattr(os, "O_PATH", os.O_RDONLY)  # Linux; elsewhere passing through needs read
# what `temporary_for` names a file, and what SQLite writes beside such a file
LEFTOVER = re.compile(r"\..+\.tmp(-journal|-wal|-shm)?")


class UnsafePath(OSError):
    """A path that goes through a symlink another user could have planted."""


@dataclass(eq=False, repr=False)
class Folder(Record):
    """An open folder (`fd`, O_DIRECTORY), and whether `open_folder` just created it."""

    path: Path
    fd: int
    created: bool

    def close(self) -> None:
        os.close(self.fd)


def open_folder(path: Path, *, create: bool = False, mode: int = 0o700) -> Folder:
    """Open a folder one component at a time, never through a symlink another user could plant.

    A symlink is followed only when it and the folder holding it belong to root or to us
    and nobody else can replace it (that folder not group- or world-writable, or sticky);
    otherwise UnsafePath. Missing components are created with `mode` when `create`; an
    existing folder's mode is never changed. The caller closes the result.
    """
    parts = list(Path(os.path.normpath(os.path.abspath(path))).parts[1:])
    fd = os.open("/", _PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    where = Path("/")
    created = followed = 0
    try:
        while parts:
            name = parts.pop(0)
            if name == ".":
                continue
            if name == "..":
                fd = _descend(fd, "..")
                where = where.parent
                continue
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                created = 0
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(name, mode, dir_fd=fd)
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                created = 1
            if stat.S_ISLNK(st.st_mode):
                followed += 1
                _refuse_untrusted_link(where / name, os.fstat(fd), st, followed)
                target = os.readlink(name, dir_fd=fd)
                if os.path.isabs(target):
                    fd = _descend(fd, "/")
                    where = Path("/")
                parts[:0] = [p for p in Path(os.path.normpath(target)).parts if p != "/"]
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise FileExistsError(
                    errno.EEXIST, f"{os.strerror(errno.EEXIST)} and is not a folder", where / name
                )
            fd = _descend(fd, name)
            where = where / name
        readable = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)
    return Folder(path, readable, bool(created))


def _descend(fd: int, name: str) -> int:
    """Open `name` in the folder `fd` (never through a symlink), then close `fd`.

    O_PATH: passing through a folder needs only its search permission, as a path lookup does.
    """
    flags = _PATH | os.O_DIRECTORY | os.O_CLOEXEC | (os.O_NOFOLLOW if name != "/" else 0)
    opened = os.open(name, flags, dir_fd=fd)
    os.close(fd)
    return opened


def _refuse_untrusted_link(
    link: Path, holder: os.stat_result, st: os.stat_result, followed: int
) -> None:
    """Raise UnsafePath unless only root or we could have made (or can replace) the link."""
    trusted = {0, os.geteuid()}
    if followed > MAX_LINKS:
        raise UnsafePath(errno.ELOOP, "too many levels of symbolic links", str(link))
    if st.st_uid not in trusted:
        raise UnsafePath(
            errno.ELOOP, f"{link} is a symbolic link owned by uid {st.st_uid}", str(link)
        )
    if holder.st_uid not in trusted:
        raise UnsafePath(
            errno.ELOOP,
            f"{link} is a symbolic link in a folder owned by uid {holder.st_uid}",
            str(link),
        )
    if holder.st_mode & 0o022 and not holder.st_mode & stat.S_ISVTX:
        raise UnsafePath(
            errno.ELOOP,
            f"{link} is a symbolic link in a folder others can write "
            f"(mode {stat.S_IMODE(holder.st_mode):o})",
            str(link),
        )


def fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in `folder` survive a crash."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_for(target: Path) -> Path:
    """The temporary name a file is written under before it is renamed to `target`."""
    return target.with_name(f".{target.name}.{os.getpid()}{TMP_SUFFIX}")


def copy_into(src_fd: int, dst_fd: int) -> int:
    """Copy a whole file in the kernel (copy_file_range), falling back to read/write."""
    size = os.fstat(src_fd).st_size
    offset = 0
    try:
        while offset < size:
            copied = os.copy_file_range(src_fd, dst_fd, size - offset, offset, offset)
            if copied == 0:
                break
            offset += copied
    except OSError as exc:
        if offset or exc.errno not in (18, 22, 38, 95):  # EXDEV, EINVAL, ENOSYS, EOPNOTSUPP
            raise
        while chunk := os.pread(src_fd, CHUNK, offset):
            os.pwrite(dst_fd, chunk, offset)
            offset += len(chunk)
    return offset


def copy_fd_to_new(src_fd: int, name: str, dir_fd: int) -> None:
    """Copy an open file into a new private file `name` in the folder `dir_fd`, fsynced.
    Refuses to overwrite anything (O_EXCL) or to follow a symlink planted at `name`."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    dst = os.open(name, flags, 0o600, dir_fd=dir_fd)
    try:
        copy_into(src_fd, dst)
        os.fsync(dst)
    finally:
        os.close(dst)


def size_of(path: Path) -> int:
    """The file's size in bytes; 0 when it does not exist (a WAL after a clean close, say)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def fsync_file(path: Path) -> None:
    """Flush a file's data to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_to_new(source: Path, tmp: Path, *, mode: int = 0o600) -> None:
    """Create `tmp` exclusively (private) and copy `source` into it; no fsync, no rename."""
    src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            copy_into(src, dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def commit(tmp: Path, target: Path) -> None:
    """Rename a fsynced temporary file over `target` and make the rename durable."""
    os.rename(tmp, target)
    fsync_dir(target.parent)


def atomic_copy(source: Path, target: Path, *, mode: int = 0o600) -> None:
    """Copy `source` to `target` so that `target` is either absent or complete and fsynced."""
    tmp = temporary_for(target)
    try:
        copy_to_new(source, tmp, mode=mode)
        fsync_file(tmp)
        commit(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write(target: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write bytes to `target` atomically and durably."""
    tmp = temporary_for(target)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        commit(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_at(dir_fd: int, name: str, data: bytes, *, mode: int = 0o600) -> None:
    """`atomic_write` inside a folder opened by `open_folder`: never through a symlink."""
    tmp = f".{name}.{os.getpid()}{TMP_SUFFIX}"  # as temporary_for names it: a leftover
    try:
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            mode,
            dir_fd=dir_fd,
        )
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.fsync(dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def sha256_of(path: Path, read: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (constant memory); `read` is told the size
    of each chunk (progress.counting)."""
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            if read is not None:
                read(len(chunk))
    return digest.hexdigest()


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete temporary files a killed process left behind (call while holding the lock).

    Only regular files named as `temporary_for` names them (and SQLite's -journal beside
    one), unlinked by name inside the folder opened by `open_folder`: a symlink is never
    followed, to the folder or from an entry, and nothing outside the folder is removed.
    """
    opened = open_folder(folder)
    removed = []
    try:
        for entry in os.scandir(opened.fd):
            if LEFTOVER.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.name, dir_fd=opened.fd)
                    removed.append(folder / entry.name)
    finally:
        opened.close()
    return removed
