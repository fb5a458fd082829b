"""What keeps `entrypoint/` working when frozen into the self-contained bundle (bundle/).

A frozen program has no Python to spawn (`sys.executable` is the bundle itself, which takes no
`-m`), no source files beside its modules (`__file__` points into an archive), and a loader
that puts the bundle's libraries on LD_LIBRARY_PATH. The code must not depend on the first two,
and must not hand the third to the app. tests/bundle runs the real bundle in containers.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from entrypoint.handoff.app import app_environment

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "entrypoint"
SPEC = ROOT / "bundle" / "entrypoint.spec"

# Modules whose use spawns a Python or reads files beside the code.
FORBIDDEN_MODULES = {"subprocess", "multiprocessing", "runpy", "importlib.resources", "pkgutil"}
# Attribute chains that do the same.
FORBIDDEN_ATTRIBUTES = {
    "sys.executable",
    "os.system",
    "os.popen",
    "os.fork",
    "os.posix_spawn",
    "os.posix_spawnp",
    "os.spawnv",
    "os.spawnve",
    "os.spawnvp",
    "os.spawnl",
    "os.execl",
    "os.execlp",
    "os.execvp",
    "os.execvpe",
}


def dotted(node: ast.AST) -> str | None:
    """`a.b.c` for a chain of names and attributes, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def frozen_hazards(source: str) -> list[str]:
    """What in this module would break (or spawn a Python) when frozen, one line each."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            names = []
        for name in names:
            if name in FORBIDDEN_MODULES:
                found.append(f"line {node.lineno}: imports {name}")
        chain = dotted(node) if isinstance(node, ast.Attribute) else None
        if chain in FORBIDDEN_ATTRIBUTES:
            found.append(f"line {node.lineno}: uses {chain}")
        if isinstance(node, ast.Name) and node.id == "__file__":
            found.append(f"line {node.lineno}: uses __file__")
    return found


def test_the_entrypoint_never_spawns_a_python_nor_reads_files_beside_its_code() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20
    hazards = [
        f"{path.relative_to(PACKAGE.parent)}: {hazard}"
        for path in modules
        for hazard in frozen_hazards(path.read_text())
    ]
    assert hazards == []


def bundle_excludes() -> set[str]:
    """The modules bundle/entrypoint.spec leaves out of the bundle (its EXCLUDES list)."""
    for node in ast.parse(SPEC.read_text()).body:
        if isinstance(node, ast.Assign) and [dotted(t) for t in node.targets] == ["EXCLUDES"]:
            return set(ast.literal_eval(node.value))
    raise AssertionError(f"no EXCLUDES list in {SPEC}")


def test_the_entrypoint_imports_only_what_the_bundle_holds() -> None:
    """The standard library, typer and itself, and nothing the bundle leaves out: an import
    of an excluded module would work from a venv and fail only in the bundle."""
    excluded = bundle_excludes()
    assert {"deploy", "docker", "yaml", "rich", "ssl"} <= excluded
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                allowed = top in sys.stdlib_module_names or top in {"typer", "entrypoint"}
                if not allowed or top in excluded or name in excluded:
                    wrong.append(f"{path.relative_to(ROOT)} line {node.lineno}: {name}")
    assert wrong == []


@pytest.mark.parametrize(
    "source",
    [
        "import subprocess\nsubprocess.run([sys.executable, '-m', 'entrypoint'])",
        "import sys, os\nos.execv(sys.executable, [sys.executable, '-m', 'entrypoint'])",
        "from multiprocessing import Process",
        "from importlib.resources import files",
        "DATA = Path(__file__).parent / 'ddl.sql'",
    ],
)
def test_the_scan_sees_what_breaks_when_frozen(source: str) -> None:
    assert frozen_hazards(source) != []


def test_the_app_gets_the_callers_library_path_back_when_frozen() -> None:
    loader = {
        "PATH": "/usr/bin",
        "LD_LIBRARY_PATH": "/opt/litedeploy/_internal:/usr/local/lib/app",
        "LD_LIBRARY_PATH_ORIG": "/usr/local/lib/app",
        "_PYI_ARCHIVE_FILE": "/opt/litedeploy/entrypoint",
        "_PYI_APPLICATION_HOME_DIR": "/opt/litedeploy/_internal",
        "_PYI_PARENT_PROCESS_LEVEL": "0",
        "DB_PATH": "/data/app.db",
    }
    assert app_environment(loader, frozen=True) == {
        "PATH": "/usr/bin",
        "LD_LIBRARY_PATH": "/usr/local/lib/app",
        "DB_PATH": "/data/app.db",
    }


def test_a_library_path_only_the_loader_set_is_removed_when_frozen() -> None:
    loader = {"LD_LIBRARY_PATH": "/opt/litedeploy/_internal", "HOME": "/root"}
    assert app_environment(loader, frozen=True) == {"HOME": "/root"}


def test_the_environment_passes_unchanged_when_not_frozen() -> None:
    env = {"LD_LIBRARY_PATH": "/usr/local/lib", "LD_LIBRARY_PATH_ORIG": "x", "_PYI_X": "y"}
    assert app_environment(env, frozen=False) == env
