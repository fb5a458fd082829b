"""Which way a release replaces the running one: start-first beside it, or recreate.

Start-first needs three things: a proxy to switch (deploy.yml's proxy_service), a version
running now, and pending migrations that version can live with: expand-only, as the new image's
own `entrypoint plan` judges them on a snapshot of the live database (entrypoint/safety/
expand.py: new tables, nullable or defaulted columns, new indexes; no drop, rename, rebuild or
data rewrite). Anything else, or any doubt, is the recreate path with its backup and restore.
`strategy:` in deploy.yml (or --strategy) forces either, per release.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .rehearsal import rehearsal_env
from .runner import Result
from .stack import Stack

PLAN_BLOCKED = 15  # `entrypoint plan` found a blocking finding: its JSON is still printed


class Strategy(StrEnum):
    START_FIRST = "start-first"
    RECREATE = "recreate"


@dataclass(frozen=True)
class Choice:
    """The strategy that runs, and why, for the deploy's line."""

    strategy: Strategy
    reason: str

    def line(self) -> str:
        return f"strategy: {self.strategy} ({self.reason})"


@dataclass(frozen=True)
class Verdict:
    """What the new image's `entrypoint plan --json` said of its pending migrations."""

    pending: tuple[str, ...]
    expand_only: bool
    contract: tuple[str, ...]  # one line per change the running version cannot live with

    def reason(self) -> str:
        if not self.pending:
            return "nothing pending: the running version is compatible"
        if self.expand_only:
            names = ", ".join(self.pending[:3]) + (" ..." if len(self.pending) > 3 else "")
            return f"expand-only: the running version can live with {names}"
        more = len(self.contract) - 1
        return f"not expand-only: {self.contract[0]}" + (f" (and {more} more)" if more else "")


class Undecided(Exception):
    """The plan could not be read: say why; the deploy recreates."""


def plan_argv(stack: Stack, image: str, program: list[str], snapshot_dir: Path) -> list[str]:
    """`entrypoint plan --json` of `image` on the snapshot: no network, read-only analysis.
    Environment values are passed by name only, as the rehearsal does."""
    argv = [
        "docker",
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        f"{snapshot_dir}:{stack.db_container_path.parent}",
        "--entrypoint",
        program[0],
    ]
    for key in sorted(rehearsal_env(stack)):
        argv += ["-e", key]
    return [*argv, image, *program[1:], "plan", "--json"]


def program_of(entrypoint: list[str]) -> list[str] | None:
    """The entrypoint's program (what comes before `run` in the image's ENTRYPOINT), or None
    when the image does not start through litedeploy's `run`."""
    if "run" not in entrypoint or entrypoint.index("run") == 0:
        return None
    return entrypoint[: entrypoint.index("run")]


def read_plan(result: Result) -> Verdict:
    if result.returncode not in (0, PLAN_BLOCKED):
        raise Undecided(f"`entrypoint plan` exited {result.returncode}: {result.tail(2)}")
    try:
        data = json.loads(result.stdout)
        names = tuple(str(m["name"]) for m in data["migrations"])
        expand_only = data["expand_only"]
        contract = tuple(str(c) for c in data.get("contract_changes") or ())
    except (ValueError, KeyError, TypeError) as exc:
        raise Undecided(
            "the image's `entrypoint plan --json` does not say whether its migrations are "
            "expand-only (an older litedeploy?)"
        ) from exc
    if not isinstance(expand_only, bool) or (not expand_only and not contract):
        raise Undecided("the image's `entrypoint plan --json` gave no expand-only verdict")
    return Verdict(pending=names, expand_only=expand_only, contract=contract)


def choose(
    wanted: str, *, proxy: bool, running: bool, push: bool, verdict: Verdict | str | None
) -> Choice:
    """The strategy for this release. `verdict` is the plan's, or why there is none."""
    if wanted == Strategy.RECREATE:
        return Choice(Strategy.RECREATE, "strategy: recreate in the settings")
    if not proxy:
        return Choice(Strategy.RECREATE, "no proxy in deploy.yml (proxy_service) to switch")
    if not running:
        return Choice(Strategy.RECREATE, "nothing runs yet")
    if push:
        return Choice(Strategy.RECREATE, "push mode syncs the schema as a whole")
    judged = verdict.reason() if isinstance(verdict, Verdict) else (verdict or "not judged")
    if wanted == Strategy.START_FIRST:
        return Choice(Strategy.START_FIRST, f"strategy: start-first in the settings; {judged}")
    if isinstance(verdict, Verdict) and verdict.expand_only:
        return Choice(Strategy.START_FIRST, judged)
    return Choice(Strategy.RECREATE, judged)
