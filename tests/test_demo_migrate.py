"""The entrypoint-only demo (scripts/demo-migrate.sh, the README's "The entrypoint without
Docker") and the example releases: their happy paths warn about nothing.

Each release ships the snapshots drizzle-kit wrote with its migrations, and drift compares a
database with the snapshot of its newest applied migration: a warning that fires on a demo
teaches people to skip warnings. (In a container, the database folder in /tmp is not a volume,
and that warning is right: it is the one allowed, and only there.)
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from harness import ROOT, Cli

from entrypoint.safetynet.database import in_container


def warnings(stderr: str) -> list[str]:
    said = [line for line in stderr.splitlines() if "warning:" in line]
    if in_container():
        said = [line for line in said if "is not a mount point" not in line]
    return said


def test_the_migrate_demo_warns_about_nothing(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo-migrate.sh"), str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "(exit 15: refused, database unchanged)" in out  # the refusal the demo shows
    assert "reviews in total: 4" in out
    assert "app server would start here" in out
    assert warnings(out) == []
    assert "drift" not in out


def test_each_release_of_the_examples_migrates_without_a_warning(tmp_path: Path, cli: Cli) -> None:
    """The Node shop's releases v1..v4 and the Python demo's v1..v3, in order, on one database
    each, as `deploy` would roll them out."""
    shop = ROOT / "examples" / "node-shop"
    releases = [shop / f"releases/{v}/drizzle" for v in ("v1", "v2", "v3")] + [shop / "drizzle"]
    demo = []
    for version in ("v1", "v2", "v3"):
        folder = tmp_path / f"demo-{version}"
        shutil.copytree(ROOT / "demo" / "migrations", folder)
        if version != "v1":  # the release's Dockerfile copies its migrations over v1's
            shutil.copytree(
                ROOT / "demo" / "releases" / version / "migrations", folder, dirs_exist_ok=True
            )
        demo.append(folder)
    for name, folders in {"node-shop": releases, "demo": demo}.items():
        db = tmp_path / name / "app.db"
        db.parent.mkdir()
        for folder in folders:
            proc = cli("run", "--db", db, "--migrations", folder)
            assert proc.returncode == 0, proc.stderr
            assert warnings(proc.stderr) == [], (folder, proc.stderr)
            assert "drift" not in proc.stderr, (folder, proc.stderr)
