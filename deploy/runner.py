"""The one place that spawns processes: argv lists in, captured results out, no shell."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TIMED_OUT = 124  # the exit code of a command given up on (as timeout(1) says it)


@dataclass(frozen=True)
class Result:
    """A finished command."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 15) -> str:
        """The last lines of its output, for error messages."""
        text = (self.stdout + self.stderr).strip().splitlines()
        return "\n".join(text[-lines:])


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
) -> Result:
    """Run a command to completion; `env` adds to (does not replace) this environment."""
    merged = {**os.environ, **(env or {})}
    try:
        proc = subprocess.run(
            list(argv),
            env=merged,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        return Result(tuple(argv), 127, "", f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Result(tuple(argv), TIMED_OUT, out, f"timed out after {timeout:g}s")
    return Result(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
