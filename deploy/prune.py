"""`deploy prune`: old rollback images and old quarantine folders, listed, then removed.

Rollback images are `<repository>:rollback-<deploy id>` tags (the id starts with its UTC
time), and a stack prunes only those its own deploys made, which its history names: a
staging stack beside production may share the repository. Quarantine folders are
`<db folder>/quarantine/<UTC time>/`, the files a restore replaced. Both are kept until an
operator says how old is old. Never removed: the image of the running container, the
rollback image the last deploy would roll back to, the last tag of an image a container on
the engine still uses (running or stopped, of any stack: docker refuses to remove it, so
the dry run leaves it out too and lists what the real prune removes), and a quarantine
folder an unfinished restore still names.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
from docker.errors import DockerException

from entrypoint.safetynet.swap import STAMP, Unreadable, quarantine_root, read_intent

ROLLBACK_PREFIX = "rollback-"


@dataclass(frozen=True)
class Removed:
    what: str  # "image" or "quarantine"
    name: str
    age_days: float
    size: int = 0  # bytes, for quarantine folders


def _age(stamp: str, now: datetime) -> float | None:
    """Days since a `20261202T162420Z`-style stamp (a quarantine's may have .ffffffZ)."""
    for layout in ("%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S.%fZ"):
        try:
            then = datetime.strptime(stamp, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
        return (now - then) / timedelta(days=1)
    return None


def rollback_images(
    client: docker.DockerClient,
    repository: str,
    older_than_days: float,
    *,
    owned: Collection[str],
    keep: set[str],
    dry_run: bool,
    now: datetime | None = None,
) -> list[Removed]:
    """Remove this stack's `repository:rollback-*` tags (those in `owned`) older than the
    cutoff, except those in `keep` and the last tag of an image a container still uses
    (removing another tag only untags)."""
    now = now or datetime.now(UTC)
    used = {
        str(c.attrs.get("ImageID") or c.attrs.get("Image"))
        for c in client.containers.list(all=True, sparse=True)
    }
    removed = []
    for image in client.images.list(name=repository):
        left = len(image.tags)
        for tag in image.tags:
            name = tag.rpartition(":")[2]
            if not name.startswith(ROLLBACK_PREFIX) or tag not in owned or tag in keep:
                continue
            age = _age(name[len(ROLLBACK_PREFIX) :].split("-")[0], now)
            if age is None or age < older_than_days:
                continue
            if left == 1 and image.id in used:
                continue  # docker refuses: a container uses it, and this is its last name
            if not dry_run:
                try:
                    client.images.remove(tag)
                except DockerException:
                    continue  # it stays (removed by someone else meanwhile, a daemon error)
            left -= 1
            removed.append(Removed("image", tag, age))
    return sorted(removed, key=lambda r: r.name)


def quarantines(
    db: Path, older_than_days: float, *, dry_run: bool, now: datetime | None = None
) -> list[Removed]:
    """Remove quarantine folders older than the cutoff, except one a restore still names."""
    now = now or datetime.now(UTC)
    root = quarantine_root(db)
    try:
        pending = read_intent(db)
    except Unreadable:
        return []  # an unfinished restore we cannot read: touch nothing
    removed = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.is_symlink() or not folder.is_dir() or not STAMP.fullmatch(folder.name):
            continue
        if pending is not None and pending.quarantine == folder.name:
            continue
        age = _age(folder.name, now)
        if age is None or age < older_than_days:
            continue
        size = sum(p.lstat().st_size for p in folder.rglob("*") if not p.is_symlink())
        if not dry_run:
            shutil.rmtree(folder)
        removed.append(Removed("quarantine", str(folder), age, size))
    return removed
