"""The fault suite: kill -9 or an I/O error at every injection point, then start again.

See tests/faults/lab.py for what is checked. Each test sweeps one scenario and one kind of
fault over every point the run passes; bench/faults.py runs the same sweeps (and the longer
loops) and writes docs/reliability.md from the results.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lab import (
    ACTIONS,
    SCENARIOS,
    concurrent_starts,
    full_disk,
    random_kills,
    sweep,
    writer_throughout,
)

SWEEPS = [(name, action) for name in SCENARIOS for action in ACTIONS]


@pytest.mark.parametrize(("name", "action"), SWEEPS, ids=[f"{n}-{a}" for n, a in SWEEPS])
def test_every_injection_point_holds(tmp_path: Path, name: str, action: str) -> None:
    # signals every third point in CI (bench/faults.py sends them at every point)
    every = 1 if action in ("kill", "sqlerror") else 3
    results = list(sweep(SCENARIOS[name], tmp_path, (action,), every=every))
    assert len(results) >= 20 // every  # the sweep really went through the run's points
    failed = [f"{r.case}: {'; '.join(r.problems)}" for r in results if not r.held]
    assert not failed, "\n".join(failed)
    assert {r.rows_after for r in results} == {results[0].expected_rows}  # 0 rows lost


@pytest.mark.parametrize(("n", "new"), [(2, False), (8, False), (4, True)])
def test_concurrent_starts_migrate_once(tmp_path: Path, n: int, new: bool) -> None:
    result = concurrent_starts(tmp_path, n, new=new)
    assert result.held, result.problems


def test_a_writer_committing_throughout_loses_nothing(tmp_path: Path) -> None:
    result = writer_throughout(tmp_path)
    assert result.held, result.problems


@pytest.mark.parametrize("place", ["database", "backups", "rehearsal", "restore"])
def test_a_full_disk_is_refused_cleanly(tmp_path: Path, place: str) -> None:
    if os.geteuid() != 0:
        pytest.fail("the full-disk cases mount a tmpfs: run the suite as root (CI does)")
    result = full_disk(tmp_path, place)
    assert result.held, result.problems


def test_kill_at_random_moments_then_restart(tmp_path: Path) -> None:
    results = random_kills(tmp_path, iterations=int(os.environ.get("LITEDEPLOY_KILLS", "6")))
    failed = [f"{r.case}: {'; '.join(r.problems)}" for r in results if not r.held]
    assert not failed, "\n".join(failed)
