"""Old rollback tags are pruned, newest kept; a tag still in use survives; another stack's
tags in the same repository are never touched."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from docker.errors import APIError

from deploy.engine import prune_rollback_tags


@dataclass
class FakeImage:
    tags: list[str]


@dataclass
class FakeImages:
    images: list[FakeImage]
    in_use: set[str] = field(default_factory=set)
    removed: list[str] = field(default_factory=list)

    def list(self, name: str) -> list[FakeImage]:
        return [i for i in self.images if any(t.startswith(name + ":") for t in i.tags)]

    def remove(self, tag: str) -> None:
        if tag in self.in_use:
            raise APIError("conflict: image is being used by a running container")
        self.removed.append(tag)


@dataclass
class FakeClient:
    images: FakeImages


def client(*tags: str, in_use: frozenset[str] = frozenset()) -> Any:
    return FakeClient(FakeImages([FakeImage([t]) for t in tags], set(in_use)))


def _tags(fake: Any) -> set[str]:
    """Every tag in the fake engine: one stack made them all."""
    return {t for i in fake.images.images for t in i.tags}


def test_keeps_the_newest_and_removes_the_rest_in_order() -> None:
    fake = client(
        "app:v1",
        "app:rollback-20261125T100000Z-aaaaaa",
        "app:rollback-20261125T120000Z-cccccc",
        "app:rollback-20261125T110000Z-bbbbbb",
        "other:rollback-20261125T090000Z-zzzzzz",
    )
    removed = prune_rollback_tags(fake, "app", keep=2, owned=_tags(fake))
    assert removed == ["app:rollback-20261125T100000Z-aaaaaa"]
    assert fake.images.removed == removed


def test_nothing_to_prune() -> None:
    fake = client("app:rollback-20261125T100000Z-aaaaaa")
    assert prune_rollback_tags(fake, "app", keep=3, owned=_tags(fake)) == []
    assert fake.images.removed == []


def test_a_tag_in_use_is_left_alone() -> None:
    old = "app:rollback-20261125T100000Z-aaaaaa"
    fake = client(old, "app:rollback-20261125T110000Z-bbbbbb", in_use=frozenset({old}))
    prune_rollback_tags(fake, "app", keep=1, owned=_tags(fake))
    assert fake.images.removed == []


def test_another_stacks_tags_in_the_same_repository_are_left_alone() -> None:
    """Staging and production share `app`; staging's history names only its own tags."""
    production = ["app:rollback-20261101T100000Z-pppppp", "app:rollback-20261102T100000Z-qqqqqq"]
    staging = [f"app:rollback-202611{d:02}T100000Z-ssssss" for d in (20, 21, 22)]
    fake = client(*production, *staging)
    removed = prune_rollback_tags(fake, "app", keep=1, owned=set(staging))
    assert removed == staging[:2]
    assert fake.images.removed == staging[:2]
