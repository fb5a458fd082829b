"""The install path the README gives (issue 12): `python -m build` makes an sdist and a wheel
from a clean checkout, the wheel is built from the sdist (so the sdist holds what a build
needs), and installed into a fresh venv it gives working `entrypoint` and `deploy` commands.

Offline, like CI's containers: pip takes the build backend and the dependencies from the
wheelhouse that scripts/test.sh builds in wheels/ (ensure_wheelhouse).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / "wheels"


def run(argv: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    assert result.returncode == 0, f"{argv}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def offline() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(WHEELS), PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist and wheel, built from a copy of the files git tracks (a clean checkout)."""
    if not any(WHEELS.glob("setuptools-*.whl")):
        pytest.fail("wheels/ holds no setuptools wheel: scripts/test.sh builds the wheelhouse")
    checkout = tmp_path_factory.mktemp("checkout")
    tracked = run(["git", "-C", ROOT, "ls-files", "-z"]).stdout.split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    out = tmp_path_factory.mktemp("dist")
    # Without --sdist/--wheel, build makes the sdist and then the wheel from the unpacked sdist.
    run([sys.executable, "-m", "build", "--outdir", out, checkout], env=offline())
    return out


def test_the_wheel_holds_the_two_packages_and_no_tests(dist: Path) -> None:
    (wheel,) = dist.glob("litedeploy-*-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"entrypoint", "deploy", wheel.name.split("-py3")[0] + ".dist-info"}
    assert "entrypoint/cli/program.py" in names and "deploy/cli.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "entrypoint = entrypoint.cli:main" in text and "deploy = deploy.cli:main" in text


def test_the_sdist_holds_what_a_build_needs_and_no_tests(dist: Path) -> None:
    (sdist,) = dist.glob("litedeploy-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "entrypoint/cli/program.py", "deploy/cli.py"} <= names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "demo/", "wheels/"))]


def test_a_fresh_venv_with_the_wheel_runs_both_commands(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("litedeploy-*-py3-none-any.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    run([venv / "bin" / "pip", "install", "-q", wheel], env=offline())
    entrypoint = run([venv / "bin" / "entrypoint", "--help"], cwd=tmp_path)
    assert "Usage: entrypoint [OPTIONS] COMMAND" in entrypoint.stdout
    deploy = run([venv / "bin" / "deploy", "--help"], cwd=tmp_path)
    assert "Usage: deploy" in deploy.stdout
    assert "--install-completion" in deploy.stdout
    for command in ("entrypoint", "deploy"):
        version = run([venv / "bin" / command, "--version"], cwd=tmp_path)
        assert version.stdout.startswith(f"{command} (litedeploy) "), version.stdout
    # what `deploy --install-completion bash` wires into the shell: a completion request
    completing = {
        "_DEPLOY_COMPLETE": "complete_bash",
        "COMP_WORDS": "deploy --ta",
        "COMP_CWORD": "1",
    }
    completed = run([venv / "bin" / "deploy"], cwd=tmp_path, env={**offline(), **completing})
    assert completed.stdout.split() == ["--tag", "--tag-variable"]
    # the commands run the installed code, not a checkout's
    origin = run(
        [venv / "bin" / "python", "-c", "import entrypoint; print(entrypoint.__file__)"],
        cwd=tmp_path,
    )
    assert origin.stdout.startswith(str(venv))
