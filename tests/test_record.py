"""base/record.py: records behave as frozen dataclasses do, and only classes it suits use it."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
from dataclasses import dataclass, field

import pytest

import entrypoint
from entrypoint.base.record import Record


@dataclass(eq=False, repr=False)
class Point(Record):
    x: int
    tags: list[str] = field(default_factory=list)


@dataclass(eq=False, repr=False)
class Other(Record):
    x: int
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FrozenPoint:
    x: int
    tags: list[str] = field(default_factory=list)


@dataclass(eq=False, repr=False)
class Named(Record):
    name: str
    size: int = 0


@dataclass(frozen=True)
class FrozenNamed:
    name: str
    size: int = 0


def test_equality_hash_and_repr_as_a_frozen_dataclass() -> None:
    assert Point(1, ["a"]) == Point(1, ["a"])
    assert Point(1) != Point(2)
    assert Point(1) != Other(1)  # another class with the same fields is another value
    assert FrozenPoint(1) != FrozenNamed("1")
    assert Named("a", 2) == Named("a", 2)
    assert hash(Named("a", 2)) == hash(Named("a", 2))
    assert len({Named("a"), Named("a"), Named("b")}) == 2
    with pytest.raises(TypeError):  # a list field: unhashable, as a frozen dataclass is
        hash(Point(1))
    with pytest.raises(TypeError):
        hash(FrozenPoint(1))
    assert repr(Named("a", 2)) == repr(FrozenNamed("a", 2)).replace("FrozenNamed", "Named")
    assert repr(Point(1, ["a"])) == "Point(x=1, tags=['a'])"


def test_fields_cannot_change_or_be_added() -> None:
    p = Named("a")
    with pytest.raises(AttributeError):
        p.name = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.name
    with pytest.raises(AttributeError):
        p.extra = 1  # type: ignore[attr-defined]
    assert p == Named("a")


def test_dataclass_helpers_work() -> None:
    p = Named("a", 2)
    assert dataclasses.asdict(p) == {"name": "a", "size": 2}
    assert dataclasses.replace(p, size=3) == Named("a", 3)
    assert [f.name for f in dataclasses.fields(p)] == ["name", "size"]


def records() -> list[type[Record]]:
    found: dict[str, type[Record]] = {}
    for info in pkgutil.walk_packages(entrypoint.__path__, "entrypoint."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Record) and value is not Record:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def test_the_records_are_ones_it_suits() -> None:
    """Equality and repr go by every attribute: no field may be left out of them, and nothing
    may cache itself in the instance's __dict__."""
    found = records()
    assert len(found) > 30
    for cls in found:
        assert dataclasses.is_dataclass(cls), cls
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        assert not params.eq and not params.repr, f"{cls}: @dataclass(eq=False, repr=False)"
        for f in dataclasses.fields(cls):
            assert f.compare and f.repr and f.hash is None, f"{cls}.{f.name}"
        for klass in cls.__mro__:
            cached = [k for k, v in vars(klass).items() if isinstance(v, functools.cached_property)]
            assert not cached, f"{cls} caches {cached} in instances"
