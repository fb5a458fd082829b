"""The SQL classifier reads a statement's tokens only as far as it looks at them; that must
never change what it says a statement does."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoint.base.errors import SourceError
from entrypoint.engine import sqltext
from entrypoint.engine.sources import load_source

TESTS = Path(__file__).resolve().parent
HISTORIES = [
    TESTS / "corpus" / "homarr",
    TESTS / "corpus" / "dyad",
    TESTS / "fixtures" / "drizzle-journal",
    TESTS / "fixtures" / "drizzle-folders",
]


def statements() -> list[str]:
    codes = []
    for folder in HISTORIES:
        for sub in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
            try:
                source = load_source(sub)
            except SourceError:  # not a migrations folder (meta/, seeds)
                continue
            codes += [s.code for m in source.migrations for s in m.statements]
    return codes


def test_reading_tokens_on_demand_classifies_as_reading_them_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codes = statements()
    assert len(codes) > 300  # real histories, not a handful
    lazy = [sqltext.classify(c) for c in codes]
    kinds = {type(op).__name__ for op in lazy}
    assert {"CreateTable", "CreateIndex", "Insert", "DropTable", "RenameTable"} <= kinds

    read_on_demand = sqltext._Reader.__init__

    def read_everything(self: sqltext._Reader, sql: str) -> None:
        read_on_demand(self, sql)
        assert len(self.toks) == len(sqltext.tokens(sql))  # every token, up front

    monkeypatch.setattr(sqltext._Reader, "__init__", read_everything)
    assert [sqltext.classify(c) for c in codes] == lazy
