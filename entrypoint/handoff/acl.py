"""POSIX access ACLs: let one more user write a folder without changing its owner.

The database folder is usually a host folder bind-mounted into the container, often made by
Docker as root. The app runs as its own user and SQLite must create `-wal`, `-shm` and
`-journal` files there. `chown` would do, but the folder is the host's: its owner is the
operator's business. An ACL entry `user:UID:rwx` (what `setfacl -m u:UID:rwx` writes) grants
the access and leaves owner and group as they were; `ls -l` shows a `+`.

The ACL is the `system.posix_acl_access` extended attribute, in the kernel's binary form
(linux/posix_acl_xattr.h): a little-endian u32 version (2), then one (u16 tag, u16 perm,
u32 id) entry per line of the ACL, sorted by tag and id.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from pathlib import Path

XATTR = "system.posix_acl_access"
VERSION = 2
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
UNDEFINED = 0xFFFFFFFF
RWX = 0o7

Entry = tuple[int, int, int]  # (tag, perm, id)


class Unsupported(OSError):
    """The filesystem keeps no ACLs (or this kernel has none)."""


def read(path: Path) -> list[Entry]:
    """The folder's access ACL; the three entries its mode bits stand for when it has none."""
    try:
        data = os.getxattr(path, XATTR, follow_symlinks=False)
    except OSError as exc:
        if exc.errno == errno.ENODATA:
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            return [
                (USER_OBJ, (mode >> 6) & RWX, UNDEFINED),
                (GROUP_OBJ, (mode >> 3) & RWX, UNDEFINED),
                (OTHER, mode & RWX, UNDEFINED),
            ]
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise Unsupported(exc.errno, f"no ACLs on {path}'s filesystem") from exc
        raise
    (version,) = struct.unpack_from("<I", data)
    if version != VERSION or (len(data) - 4) % 8:
        raise ValueError(f"{path}: an ACL this code does not read (version {version})")
    return [struct.unpack_from("<HHI", data, 4 + 8 * i) for i in range((len(data) - 4) // 8)]


def encode(entries: list[Entry]) -> bytes:
    ordered = sorted(entries, key=lambda e: (e[0], e[2]))
    return struct.pack("<I", VERSION) + b"".join(struct.pack("<HHI", *e) for e in ordered)


def allows(entries: list[Entry], uid: int, perm: int = RWX) -> bool:
    """Whether the ACL names `uid` with (at least) `perm`, within the mask."""
    mask = next((p for t, p, _ in entries if t == MASK), RWX)
    return any(t == USER and i == uid and (p & mask & perm) == perm for t, p, i in entries)


def grant(path: Path, uid: int, perm: int = RWX) -> bool:
    """Add `user:uid:perm` to the folder's access ACL (and widen the mask to let it through).

    Returns False when the ACL already allowed it. Raises Unsupported where the filesystem
    keeps no ACLs. Never follows a symbolic link.
    """
    entries = read(path)
    if allows(entries, uid, perm):
        return False
    old_mask = next((p for t, p, _ in entries if t == MASK), None)
    capped = RWX if old_mask is None else old_mask
    # Every other entry keeps exactly the access it had: the mask, which bounds the named
    # entries and the owning group, is widened for the new entry, so they are capped first.
    kept = [
        (t, p & capped if t in (USER, GROUP, GROUP_OBJ) else p, i)
        for t, p, i in entries
        if t != MASK and not (t == USER and i == uid)
    ]
    mask = perm
    for t, p, _ in kept:
        if t in (USER, GROUP, GROUP_OBJ):
            mask |= p
    new = [*kept, (USER, perm, uid), (MASK, mask, UNDEFINED)]
    try:
        os.setxattr(path, XATTR, encode(new), follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise Unsupported(exc.errno, f"no ACLs on {path}'s filesystem") from exc
        raise
    return True
