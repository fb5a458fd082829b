"""A release to many hosts: preflight them all, a canary first, then the rest in batches.

Each host is deployed by its own `deploy --host NAME` process: the same story as a deploy to
this machine (rehearse, cut over, health, roll back image and database), with that host's
engine as the only channel, its own lock and history. This module only orders them, reads
their JSON reports and stops at the first failure:

- preflight: every host at once (reachable, images there or pullable, disk, lock); one that
  fails stops everything before any host is touched;
- the canary group (the first `canary` hosts), then batches of `parallel`; a batch runs to
  its end (a deploy is never cut off half-way), and no batch starts after a failure;
- the failing host rolls itself back (image and database, as a single deploy does); hosts not
  started are never touched; hosts already done stay on the new release (`halt`) or are rolled
  back by `deploy rollback` (`rollback-all`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from entrypoint.base.contract import LOG_FORMAT_ENV

from .errors import ConfigError, PreflightFailed, RollbackFailed
from .hosts import HostSpec

Say = Callable[[str], None]


@dataclass(frozen=True)
class Child:
    """A finished `deploy --host NAME --json ...` process."""

    returncode: int
    report: dict[str, Any] | None  # its JSON (None: it printed none)
    error: str | None  # its last `error:` line, if any


# Runs `deploy ARGS --host NAME --json COMMAND...` for a host; `say` gets its lines as they come.
Launch = Callable[[HostSpec, Sequence[str], Say], Child]


class State(StrEnum):
    """Where a host of the fleet ended."""

    DEPLOYED = "deployed"
    FAILED = "failed"  # its own deploy failed (its outcome says how: rolled-back, aborted, ...)
    NOT_STARTED = "not-started"
    ROLLED_BACK = "rolled-back"  # done, then rolled back by rollback-all
    KEPT = "kept"  # done, and rollback-all's rollback of it was refused or failed


@dataclass
class HostRun:
    """One host's part of the rollout."""

    name: str
    docker_host: str
    state: State = State.NOT_STARTED
    outcome: str | None = None  # the host's own deploy outcome (deploy history's word)
    exit_code: int | None = None
    seconds: float = 0.0
    from_image: str | None = None
    to_image: str | None = None
    error: str | None = None
    durations: dict[str, float] = field(default_factory=dict)
    rollback: dict[str, Any] | None = None  # rollback-all's report for this host


@dataclass
class FleetReport:
    """The whole rollout, for the summary and `--json`."""

    tag: str
    hosts: list[HostRun]
    on_failure: str
    canary: list[str] = field(default_factory=list)
    batches: list[list[str]] = field(default_factory=list)
    preflight: dict[str, Any] = field(default_factory=dict)
    halted_at: str | None = None
    exit_code: int = 0
    seconds: float = 0.0
    preflight_seconds: float = 0.0  # of the whole step 1 (every host at once)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for run in self.hosts:
            key = run.outcome if run.state is State.FAILED and run.outcome else str(run.state)
            if run.state is State.ROLLED_BACK:
                key = "rolled-back-all"
            found[key] = found.get(key, 0) + 1
        return found

    def summary(self) -> str:
        words = {
            "deployed": "deployed",
            "rolled-back": "rolled back",
            "not-started": "not started",
            "kept": "kept on the new release",
            "rolled-back-all": "rolled back by rollback-all",
        }
        return ", ".join(f"{n} {words.get(k, k)}" for k, n in self.counts().items())

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "hosts": [{**asdict(h), "state": str(h.state)} for h in self.hosts],
            "summary": self.counts(),
        }


def groups(hosts: Sequence[HostSpec], canary: int, parallel: int) -> list[list[HostSpec]]:
    """The canary group, then batches of `parallel`."""
    first, rest = list(hosts[:canary]), list(hosts[canary:])
    return [first] + [rest[i : i + parallel] for i in range(0, len(rest), parallel)]


class Fleet:
    """Runs one rollout of `tag` to `hosts`."""

    def __init__(
        self,
        hosts: Sequence[HostSpec],
        tag: str,
        *,
        canary: int,
        parallel: int,
        on_failure: str,
        launch: Launch,
        say: Say,
    ) -> None:
        if not hosts:
            raise ConfigError("no hosts to deploy to", hint="list them under hosts: in deploy.yml")
        self.hosts = list(hosts)
        self.launch = launch
        self.say = say
        self.report = FleetReport(
            tag=tag,
            hosts=[HostRun(h.name, h.docker_host) for h in hosts],
            on_failure=on_failure,
        )
        planned = groups(self.hosts, min(canary, len(self.hosts)), parallel)
        self.report.canary = [h.name for h in planned[0]]
        self.report.batches = [[h.name for h in g] for g in planned[1:]]
        self._planned = planned
        self._lock = threading.Lock()

    def _run(self, name: str) -> HostRun:
        return next(r for r in self.report.hosts if r.name == name)

    def _prefixed(self, spec: HostSpec) -> Say:
        width = max(len(h.name) for h in self.hosts)

        def say(line: str) -> None:
            with self._lock:
                self.say(f"[{spec.name:<{width}}] {line}")

        return say

    def _each(self, specs: Sequence[HostSpec], command: Sequence[str]) -> list[Child]:
        """`command` on each host at once (their lines as they come), in the hosts' order."""
        with ThreadPoolExecutor(max_workers=max(len(specs), 1)) as pool:
            futures = [pool.submit(self.launch, s, command, self._prefixed(s)) for s in specs]
            return [f.result() for f in futures]

    def run(self, *, preflight_only: bool = False) -> FleetReport:
        """Preflight, canary, batches; the report's exit_code is the rollout's. A failed
        preflight raises Stopped, with the report filled in."""
        started = time.monotonic()
        try:
            self._preflight()
            if not preflight_only:
                self._rollout()
        finally:
            self.report.seconds = round(time.monotonic() - started, 1)
        return self.report

    def _preflight(self) -> None:
        self.say(
            f"fleet: {len(self.hosts)} hosts; canary {', '.join(self.report.canary)}"
            + (
                f", then batches of up to {len(self.report.batches[0])}"
                if self.report.batches
                else ""
            )
            + f"; on failure: {self.report.on_failure}"
        )
        started = time.monotonic()
        children = self._each(self.hosts, ["preflight"])
        took = time.monotonic() - started
        self.report.preflight_seconds = round(took, 1)
        failed = []
        for spec, child in zip(self.hosts, children, strict=True):
            self.report.preflight[spec.name] = child.report or {"error": child.error}
            if child.returncode != 0:
                failed.append((spec, child))
        if failed:
            spec, child = failed[0]
            self.report.halted_at = spec.name
            self.report.exit_code = child.returncode
            names = ", ".join(s.name for s, _ in failed)
            for s, c in failed:
                self._run(s.name).error = f"preflight: {c.error or f'exit {c.returncode}'}"
            raise Stopped(f"preflight failed on {names}; no host was touched", child.returncode)
        self.say(f"✓ preflight of {len(self.hosts)} hosts ({took:.1f}s)")

    def _rollout(self) -> None:
        done: list[HostSpec] = []
        for i, group in enumerate(self._planned):
            label = "canary" if i == 0 else f"batch {i}"
            self.say(f"{label}: {', '.join(h.name for h in group)}")
            children = self._each(group, [])
            failed: list[tuple[HostSpec, Child]] = []
            for spec, child in zip(group, children, strict=True):
                run = self._record(spec, child)
                self.say(line(run))
                if child.returncode == 0:
                    done.append(spec)
                else:
                    failed.append((spec, child))
            if failed:
                spec, child = failed[0]
                self.report.halted_at = spec.name
                self.report.exit_code = child.returncode
                if any(c.returncode == RollbackFailed.exit_code for _, c in failed):
                    self.report.exit_code = RollbackFailed.exit_code
                self._after_failure(done)
                return

    def _record(self, spec: HostSpec, child: Child) -> HostRun:
        run = self._run(spec.name)
        report = child.report or {}
        run.exit_code = child.returncode
        run.state = State.DEPLOYED if child.returncode == 0 else State.FAILED
        run.outcome = report.get("outcome") or ("deployed" if child.returncode == 0 else "failed")
        run.from_image = report.get("from_image")
        run.to_image = report.get("to_image")
        run.durations = dict(report.get("durations") or {})
        run.seconds = float(run.durations.get("total", 0.0))
        run.error = report.get("error") or child.error
        return run

    def _after_failure(self, done: list[HostSpec]) -> None:
        if not done:
            return
        if self.report.on_failure != "rollback-all":
            verb = "stays" if len(done) == 1 else "stay"
            self.say(
                f"halted: {', '.join(h.name for h in done)} {verb} on the new release "
                "(--on-failure rollback-all would roll them back)"
            )
            return
        self.say(f"rolling back the hosts already done: {', '.join(h.name for h in done)}")
        for spec, child in zip(done, self._each(done, ["rollback"]), strict=True):
            run = self._run(spec.name)
            run.rollback = child.report or {"error": child.error}
            if child.returncode == 0:
                run.state = State.ROLLED_BACK
            else:
                run.state = State.KEPT
                run.error = f"rollback: {child.error or f'exit {child.returncode}'}"
                if child.returncode not in (PreflightFailed.exit_code,):  # refused: it runs on
                    self.report.exit_code = RollbackFailed.exit_code
            self.say(line(run))


class Stopped(Exception):
    """The rollout stopped before any host was touched (the report says why)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def run_fleet(fleet: Fleet, *, preflight_only: bool = False) -> FleetReport:
    """Fleet.run, a stop at preflight folded into the report."""
    try:
        return fleet.run(preflight_only=preflight_only)
    except Stopped as stop:
        fleet.say(f"✗ {stop}")
        fleet.report.exit_code = stop.code
        return fleet.report


def line(run: HostRun) -> str:
    """One line per host: where it ended, the images, the time and the long steps."""
    steps = ", ".join(
        f"{k.split(' ')[0]} {v:.1f}s" for k, v in run.durations.items() if k != "total" and v >= 1.0
    )
    images = f"{run.from_image or 'nothing'} -> {run.to_image or '?'}"
    what = {
        State.DEPLOYED: f"deployed     {images}",
        State.FAILED: f"{run.outcome or 'failed':<12} {images}",
        State.NOT_STARTED: "not started",
        State.ROLLED_BACK: f"rolled back  to {run.from_image or 'nothing'} (rollback-all)",
        State.KEPT: "kept on the new release",
    }[run.state]
    timing = f"  {run.seconds:.1f}s" + (f" ({steps})" if steps else "") if run.seconds else ""
    error = f": {run.error}" if run.error and run.state is not State.DEPLOYED else ""
    return f"{run.name}  {what}{timing}{error}"


def child_launcher(base_args: Sequence[str]) -> Launch:
    """The real launcher: `python -m deploy BASE_ARGS --host NAME --json COMMAND` as a child
    process, its stderr lines handed to `say` as they come, its stdout read as JSON."""

    def launch(spec: HostSpec, command: Sequence[str], say: Say) -> Child:
        argv = [sys.executable, "-m", "deploy", *base_args, "--host", spec.flag, "--json"]
        proc = subprocess.Popen(
            [*argv, *command],
            env={**os.environ, LOG_FORMAT_ENV: "text"},  # read here, said again in ours
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        error: str | None = None
        stdout, stderr = proc.stdout, proc.stderr
        assert stdout is not None and stderr is not None
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.append(stdout.read()), daemon=True)
        reader.start()
        for raw in stderr:
            text = raw.rstrip("\n")
            if text.startswith("deploy: error: "):
                error = text.removeprefix("deploy: error: ")
            say(text.removeprefix("deploy: "))
        code = proc.wait()
        reader.join()
        try:
            report = json.loads("".join(out)) if "".join(out).strip() else None
        except ValueError:
            report = None
        return Child(code, report if isinstance(report, dict) else None, error)

    return launch
