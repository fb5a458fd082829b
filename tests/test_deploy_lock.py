"""The deploy lock across real processes, and the append-only deploy history."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import records
from deploy.errors import LockHeld
from deploy.lock import Stale, deploy_lock

ROOT = Path(__file__).resolve().parent.parent

# Take the lock, say so, and hold it until stdin closes (or the process is killed).
HOLDER = """
import sys
from pathlib import Path
from deploy.lock import deploy_lock
with deploy_lock(Path(sys.argv[1]), sys.argv[2], "shop:v2") as stale:
    print("held", stale, flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of tmp_path/state as deploy `first`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "state"), "first"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "held None\n"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def test_a_second_deploy_is_refused_naming_the_first(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    state = tmp_path / "state"
    with pytest.raises(LockHeld) as caught, deploy_lock(state, "second", "shop:v3"):
        pytest.fail("two deploys held the lock at once")
    message = caught.value.message
    assert message.startswith("another deploy of this stack is running: deploy first ")
    assert f"(pid {holder.pid} on {socket.gethostname()}, to shop:v2, running for " in message
    assert caught.value.exit_code == 7
    assert caught.value.hint is not None
    assert str(state / "deploy.lock") in caught.value.hint

    # Once the first one finishes cleanly, the next gets the lock and finds nothing stale.
    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(timeout=10) == 0
    with deploy_lock(state, "second", "shop:v3") as stale:
        assert stale is None


def test_a_killed_holder_leaves_a_stale_lock_that_is_taken_over(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    state = tmp_path / "state"
    os.kill(holder.pid, signal.SIGKILL)
    assert holder.wait(timeout=10) == -signal.SIGKILL

    with deploy_lock(state, "second", "shop:v3") as stale:
        assert isinstance(stale, Stale)
        assert stale.deploy_id == "first"
        assert stale.pid == holder.pid
        assert stale.host == socket.gethostname()
        assert 0 <= stale.age_seconds < 60
        # The lock file now names the new holder.
        held = json.loads((state / "deploy.lock").read_text())
        assert held["deploy_id"] == "second"
        assert held["pid"] == os.getpid()
        assert held["target"] == "shop:v3"

    # Released cleanly: nothing stale for the deploy after that.
    assert (state / "deploy.lock").read_text() == ""
    with deploy_lock(state, "third", "shop:v3") as stale:
        assert stale is None


def test_the_lock_is_released_when_the_deploy_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), deploy_lock(tmp_path, "a", "x"):
        raise RuntimeError("boom")
    with deploy_lock(tmp_path, "b", "x") as stale:
        assert stale is None


def test_a_garbled_lock_file_is_not_stale(tmp_path: Path) -> None:
    (tmp_path / "deploy.lock").write_text("{not json")
    with deploy_lock(tmp_path, "a", "x") as stale:
        assert stale is None


def test_the_state_folder_is_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with deploy_lock(state, "a", "x"):
        assert (state.stat().st_mode & 0o777) == 0o700
        assert ((state / "deploy.lock").stat().st_mode & 0o777) == 0o600


# -- the history --------------------------------------------------------------------------------


def record(n: int) -> dict[str, object]:
    return {
        "deploy_id": f"2025010{n}T000000Z-abc",
        "outcome": "deployed",
        "from_image": None,
        "to_image": f"shop:v{n}",
        "durations": {"total": 1.5 * n},
    }


def test_history_round_trip(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert records.read(state) == []
    for n in (1, 2, 3):
        records.append(state, record(n))
    assert records.read(state) == [record(1), record(2), record(3)]
    assert records.history_path(state) == state / "history.jsonl"
    assert len(records.history_path(state).read_text().splitlines()) == 3


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    records.append(tmp_path, record(1))
    with records.history_path(tmp_path).open("a") as f:
        f.write('{"deploy_id": "20250102T0000')  # a crash mid-write
    assert records.read(tmp_path) == [record(1)]


def test_a_record_after_a_torn_line_is_kept(tmp_path: Path) -> None:
    records.append(tmp_path, record(1))
    with records.history_path(tmp_path).open("a") as f:
        f.write('{"deploy_id": "20250102T0000')
    records.append(tmp_path, record(3))
    assert records.read(tmp_path) == [record(1), record(3)]


def test_lines_that_are_not_records_are_skipped(tmp_path: Path) -> None:
    records.history_path(tmp_path).write_text('[1, 2]\n"text"\n\n')
    records.append(tmp_path, record(1))
    assert records.read(tmp_path) == [record(1)]
