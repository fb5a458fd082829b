"""`Record`: the base of the value classes read on every start, a frozen dataclass's
behaviour without its cost.

A frozen dataclass costs about 0.8 ms to define: Python writes and compiles six methods for
it (`__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__`, `__delattr__`) each time
the module is imported. Fifty of them were 20-40 ms of every start, more than the SQL of a
whole history. A record is declared as

    @dataclass(eq=False, repr=False)
    class Thing(Record):
        name: str

so that only `__init__` is written (0.15 ms); equality, hashing, repr and fields that
cannot change once set come from here, the same for all. `dataclasses.asdict`, `replace`
and `fields` work as on any dataclass. Not for a class whose fields say `compare=False` or
`repr=False`, or that caches properties in its `__dict__` (`functools.cached_property`):
equality and repr here go by every attribute the instance holds.
"""

from __future__ import annotations

from typing import Any


class Record:
    """Equal when of the same class with the same fields; immutable once `__init__` has set
    each field (tests/test_record.py holds it to a frozen dataclass's behaviour)."""

    __dataclass_fields__: dict[str, Any]

    def __setattr__(self, name: str, value: object) -> None:
        if name in self.__dict__ or name not in self.__dataclass_fields__:
            raise AttributeError(f"cannot assign to field {name!r} of {type(self).__name__}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of {type(self).__name__}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), *vars(self).values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"
