"""The fault suite: kill -9 or an I/O error at every injection point, then start again.

See tests/faults/lab.py for what is checked. Each test sweeps one scenario and one kind of
fault over every point the run passes; bench/faults.py runs the same sweeps (and the longer
loops) and writes docs/reliability.md from the results.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lab import SCENARIOS, sweep

SWEEPS = [(name, action) for name in SCENARIOS for action in ("kill", "sqlerror")]


@pytest.mark.parametrize(("name", "action"), SWEEPS, ids=[f"{n}-{a}" for n, a in SWEEPS])
def test_every_injection_point_holds(tmp_path: Path, name: str, action: str) -> None:
    results = list(sweep(SCENARIOS[name], tmp_path, (action,)))
    assert len(results) >= 10  # the sweep really went through the run's points
    failed = [f"{r.case}: {'; '.join(r.problems)}" for r in results if not r.held]
    assert not failed, "\n".join(failed)
    assert {r.rows_after for r in results} == {results[0].expected_rows}  # 0 rows lost
