"""The code's layout: each wing imports only the wings below it, and no module imports itself
round a circle. Read from the source with `ast` (imports inside functions count too), so a
deferred import cannot hide an arrow that runs the wrong way.

The written direction is the one in entrypoint/__init__.py and the README's "How the code is
laid out"; a change to it changes ALLOWED here and there together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ROOT

# wing -> the wings it may import (besides itself). "settings" is the one-file wing settings.py.
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "engine": {"base"},
    "safetynet": {"base", "engine"},
    "settings": {"base", "engine", "safetynet"},
    "safety": {"base", "engine", "safetynet", "settings"},
    "pushplan": {"base", "engine", "safety"},
    "modes": {"base", "engine", "safetynet", "settings", "safety", "pushplan"},
    "handoff": {"base"},
    "cli": {"base", "engine", "safetynet", "settings", "safety", "pushplan", "modes", "handoff"},
    "main": {"cli"},  # entrypoint/__main__.py
    # The host-side command reads backups, restores and the history with the entrypoint's own
    # code; it never runs a migration itself (that is the container's job).
    "deploy": {"base", "engine", "safetynet", "settings", "modes"},
}


def modules() -> dict[str, Path]:
    """Every module of the two packages by dotted name."""
    found = {}
    for package in ("entrypoint", "deploy"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports(name: str, path: Path) -> Iterator[str]:
    """The project modules `name` imports, anywhere in its file (submodules as themselves)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    known = modules()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            targets = [f"{origin}.{a.name}" for a in node.names]
            targets = [t if t in known else origin for t in targets]
        else:
            continue
        yield from (t for t in targets if t.split(".")[0] in ("entrypoint", "deploy"))


def wing(name: str) -> str:
    parts = name.split(".")
    if parts[0] == "deploy":
        return "deploy"
    if len(parts) == 1:
        return "package"  # entrypoint/__init__.py: a docstring, imports nothing
    if parts[1] == "__main__":
        return "main"
    return parts[1]


def test_every_module_sits_in_a_known_wing() -> None:
    stray = [n for n in modules() if wing(n) not in ALLOWED and wing(n) != "package"]
    assert stray == [], f"modules outside the wings of entrypoint/__init__.py: {stray}"


def test_each_wing_imports_only_the_wings_below_it() -> None:
    wrong = []
    for name, path in modules().items():
        mine = wing(name)
        for target in imports(name, path):
            theirs = wing(target)
            if theirs != mine and theirs not in ALLOWED.get(mine, set()):
                wrong.append(f"{name} -> {target} ({mine} may not import {theirs})")
    assert wrong == []


def test_the_written_direction_has_no_circle() -> None:
    """ALLOWED itself is a ladder: no wing may reach, through others, back to itself."""
    for start in ALLOWED:
        seen, todo = set(), list(ALLOWED[start])
        while todo:
            current = todo.pop()
            assert current != start, f"{start} reaches itself through the allowed arrows"
            if current not in seen:
                seen.add(current)
                todo += ALLOWED.get(current, set())


def test_no_module_imports_itself_round_a_circle() -> None:
    graph = {n: set(imports(n, p)) - {n} for n, p in modules().items()}
    graph = {n: {t for t in ts if t in graph and not _package_face(t)} for n, ts in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert circles == []


def _package_face(name: str) -> bool:
    """A package's __init__.py that only hands names on is not a room of its own."""
    return name in ("entrypoint", "deploy", "entrypoint.cli")


@pytest.mark.parametrize(
    ("importer", "target", "allowed"),
    [
        ("entrypoint.safetynet.backup", "entrypoint.safety.checks", False),
        ("entrypoint.modes.push", "entrypoint.modes.session", True),
        ("entrypoint.engine.plan", "entrypoint.safetynet.database", False),
        ("deploy.deployer", "entrypoint.safety.rehearsal", False),
        ("entrypoint.cli.run", "entrypoint.modes.migrate", True),
    ],
)
def test_the_rule_itself_tells_right_from_wrong(importer: str, target: str, allowed: bool) -> None:
    """The check above can fail: the same rule, on arrows chosen to be right and wrong."""
    mine, theirs = wing(importer), wing(target)
    assert (theirs == mine or theirs in ALLOWED[mine]) is allowed
