"""docs/reliability.md is current: it lists the cases the suite has now, all held."""

from __future__ import annotations

import re
from pathlib import Path

from lab import ROOT, case_names

DOC = ROOT / "docs" / "reliability.md"


def test_the_reliability_page_lists_every_case_and_nothing_lost(tmp_path: Path) -> None:
    text = DOC.read_text()
    listed = set(re.findall(r"^\| ([^|`]+?) \| `", text, re.MULTILINE))
    missing = case_names(tmp_path) - listed
    assert not missing, (
        f"{len(missing)} case(s) of the suite are not in docs/reliability.md (run "
        f"bench/faults.py to write it again), e.g. {sorted(missing)[:3]}"
    )
    totals = re.search(
        r"^\| injected faults, .*? \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$", text, re.M
    )
    assert totals, "the totals line is missing"
    cases, held, lost, hangs = map(int, totals.groups())
    assert (held, lost, hangs) == (cases, 0, 0)
    assert len(re.findall(r"kill -9 after ", text)) >= 50
