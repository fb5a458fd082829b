"""Durable file operations: copy through a temporary file, fsync, rename, fsync the folder."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

TMP_SUFFIX = ".tmp"
CHUNK = 1 << 20


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


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (constant memory)."""
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete temporary files a killed process left behind (call while holding the lock)."""
    removed = []
    for path in folder.glob(f".*{TMP_SUFFIX}*"):  # also SQLite's -journal of a temp
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed
