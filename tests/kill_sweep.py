"""SIGKILL the entrypoint at its Nth file-changing call: a sweep over every instruction that
matters, which needs no fault point in the code (so it runs against old code too)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness import cli_env

CALLS = ("rename", "replace", "unlink", "link", "mkdir", "rmdir", "fsync", "copy_file_range")

KILLED_AT_CALL = f"""
import os, signal, sys
limit, calls = int(sys.argv[1]), [0]
def counted(call):
    def run(*args, **kwargs):
        calls[0] += 1
        if calls[0] == limit:
            os.kill(os.getpid(), signal.SIGKILL)
        return call(*args, **kwargs)
    return run
for name in {CALLS!r}:
    setattr(os, name, counted(getattr(os, name)))
from entrypoint.cli import main
sys.argv[0:2] = ["entrypoint"]
main()
"""


def killed_at_call(call: int, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`entrypoint ARGS` as a real process, SIGKILLed at its `call`th file-changing call."""
    return subprocess.run(
        [sys.executable, "-c", KILLED_AT_CALL, str(call), *map(str, args)],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
