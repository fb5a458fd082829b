"""`entrypoint run ... -- CMD`: migrate, then become CMD (same pid), or fail before migrating."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import (
    Cli,
    applied,
    assert_one_clear_error,
    cli_env,
    db_state,
    entrypoint_argv,
    query,
    write_plain,
)

from entrypoint.base.errors import CommandNotExecutable
from entrypoint.handoff import app as handoff

MIGRATIONS = [
    ("0001_a", "CREATE TABLE a (id integer);"),
    ("0002_b", "CREATE TABLE b (id integer);"),
]

# The app: prints its pid and what it finds in the database, then exits with a code of its own.
APP = """\
import os, sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute("SELECT name FROM __litedeploy_migrations").fetchall()
print(os.getpid(), len(rows), flush=True)
sys.exit(int(sys.argv[2]))
"""


def test_command_replaces_the_process_and_its_exit_code_passes_through(tmp_path: Path) -> None:
    folder = write_plain(tmp_path / "m", MIGRATIONS)
    db = tmp_path / "app.db"
    proc = subprocess.Popen(
        entrypoint_argv(
            "run", "--db", db, "--migrations", folder, "--", sys.executable, "-c", APP, db, "42"
        ),
        cwd=tmp_path,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 42, stderr
    pid, migrations_seen = stdout.split()
    assert int(pid) == proc.pid  # exec, not a child process
    assert int(migrations_seen) == 2  # it ran after the migrations were committed
    assert "Applied 0002_b" in stderr
    assert f"exec {sys.executable} -c" in stderr  # logged, and flushed before the exec


def test_arguments_reach_the_command_unchanged(tmp_path: Path, cli: Cli) -> None:
    folder = write_plain(tmp_path / "m", MIGRATIONS)
    odd = ["--db", "two words", "$HOME", "; exit 3", "*"]
    proc = cli(
        "run",
        "--db",
        tmp_path / "app.db",
        "--migrations",
        folder,
        "--",
        sys.executable,
        "-c",
        "import sys, json; print(json.dumps(sys.argv[1:]))",
        *odd,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '["--db", "two words", "$HOME", "; exit 3", "*"]'


def test_no_command_exits_0_after_migrating(tmp_path: Path, cli: Cli) -> None:
    folder = write_plain(tmp_path / "m", MIGRATIONS)
    db = tmp_path / "app.db"
    proc = cli("run", "--db", db, "--migrations", folder)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert len(query(db, "SELECT * FROM __litedeploy_migrations")) == 2


@pytest.fixture
def pending(tmp_path: Path) -> tuple[Path, Path]:
    """A database with 0001 applied and 0002 pending."""
    folder = write_plain(tmp_path / "m", MIGRATIONS[:1])
    db = tmp_path / "app.db"
    applied(db, folder)
    write_plain(folder, MIGRATIONS[1:])
    return db, folder


def not_executable(tmp_path: Path) -> str:
    script = tmp_path / "server.sh"
    script.write_text("#!/bin/sh\necho started\n")
    script.chmod(0o644)
    return str(script)


def a_directory(tmp_path: Path) -> str:
    (tmp_path / "bin").mkdir()
    return str(tmp_path / "bin")


def executable(tmp_path: Path, name: str, data: bytes) -> str:
    script = tmp_path / name
    script.write_bytes(data)
    script.chmod(0o755)
    return str(script)


def no_shebang(tmp_path: Path) -> str:
    """Runs from a shell (which treats it as a script); os.execv refuses it: ENOEXEC."""
    return executable(tmp_path, "server.sh", b"echo started\nexec sleep 1\n")


def empty_script(tmp_path: Path) -> str:
    return executable(tmp_path, "server", b"")


def missing_interpreter(tmp_path: Path) -> str:
    return executable(tmp_path, "server.js", b"#!/usr/local/bin/no-such-node\nconsole.log(1)\n")


def no_shebang_on_path(tmp_path: Path) -> str:
    """The same, found through PATH."""
    (tmp_path / "bin").mkdir()
    executable(tmp_path / "bin", "start-server", b"echo started\n")
    return "start-server"


@pytest.mark.parametrize(
    ("make_command", "code", "message"),
    [
        (lambda tmp: "no-such-server-xyz", 127, "command not found: no-such-server-xyz"),
        (lambda tmp: str(tmp / "missing" / "server"), 127, "command not found"),
        (not_executable, 126, "command is not executable"),
        (a_directory, 126, "command is not executable"),
        (no_shebang, 126, "neither #! nor an ELF header"),
        (empty_script, 126, "it is empty"),
        (missing_interpreter, 126, "'/usr/local/bin/no-such-node', which does not exist"),
        (no_shebang_on_path, 126, "cannot execute start-server: it starts with neither"),
    ],
    ids=[
        "not-on-path",
        "missing-path",
        "no-exec-bit",
        "directory",
        "no-shebang",
        "empty",
        "missing-interpreter",
        "no-shebang-on-path",
    ],
)
def test_bad_command_fails_before_migrating(
    tmp_path: Path, cli: Cli, pending: tuple[Path, Path], make_command, code, message
) -> None:
    db, folder = pending
    command = make_command(tmp_path)
    before = db_state(db)
    path = f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    proc = cli(
        "run",
        "--db",
        db,
        "--migrations",
        folder,
        "--",
        command,
        "--port",
        "3000",
        env={"PATH": path},
    )
    assert_one_clear_error(proc, code, message)
    assert "Applying" not in proc.stderr
    assert db_state(db) == before


def test_bad_command_on_a_new_database_creates_nothing(tmp_path: Path, cli: Cli) -> None:
    folder = write_plain(tmp_path / "m", MIGRATIONS)
    db = tmp_path / "app.db"
    proc = cli("run", "--db", db, "--migrations", folder, "--", "no-such-server-xyz")
    assert_one_clear_error(proc, 127)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_unknown_user_is_refused_before_migrating(
    tmp_path: Path, cli: Cli, pending: tuple[Path, Path]
) -> None:
    db, folder = pending
    before = db_state(db)
    proc = cli(
        "run", "--db", db, "--migrations", folder, "--user", "no-such-user-xyz", "--", "true"
    )
    assert_one_clear_error(proc, 2, "no-such-user-xyz")
    assert db_state(db) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_user_drops_root_before_exec_and_owns_the_new_database(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    folder = write_plain(tmp_path / "m", MIGRATIONS)
    data = tmp_path / "data"
    data.mkdir()
    db = data / "app.db"
    shell = shutil.which("sh")
    assert shell is not None
    # Start with supplementary groups of root's, so that keeping them would show.
    setpriv = shutil.which("setpriv")
    prefix = [setpriv, "--groups=0,4", "--"] if setpriv else []
    # `id`, not python: this interpreter may live under /root, which nobody cannot read.
    argv = entrypoint_argv(
        "run", "--db", db, "--migrations", folder, "--user", "nobody",
        "--", shell, "-c", 'id -u; id -g; id -G; echo "$HOME $USER"',
    )  # fmt: skip
    proc = subprocess.run(
        [*prefix, *argv], cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    uid, gid, groups, env = proc.stdout.splitlines()
    assert (int(uid), int(gid)) == (nobody.pw_uid, nobody.pw_gid)
    expected_groups = set(os.getgrouplist("nobody", nobody.pw_gid))
    assert {int(g) for g in groups.split()} == expected_groups  # root's groups are gone
    assert env == f"{nobody.pw_dir} nobody"
    for path in (db, data / "app.db.lock"):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid), path
    assert len(query(db, "SELECT * FROM __litedeploy_migrations")) == 2


def test_a_format_binfmt_misc_runs_is_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel's binfmt_misc may run what is neither ELF nor #! (a jar, another CPU's ELF):
    its entries, as /proc/sys/fs/binfmt_misc shows them, are read and trusted."""
    proc = tmp_path / "binfmt_misc"
    proc.mkdir()
    (proc / "status").write_text("enabled\n")
    (proc / "register").write_text("")
    (proc / "jar").write_text("enabled\ninterpreter /usr/bin/jexec\nflags: \nextension .jar\n")
    (proc / "wasm").write_text(
        "enabled\ninterpreter /usr/bin/wasmtime\nflags: \noffset 0\nmagic 0061736d\nmask ffffffff\n"
    )
    (proc / "off").write_text("disabled\ninterpreter /bin/x\nflags: \noffset 0\nmagic 6563\n")
    monkeypatch.setattr(handoff, "BINFMT_MISC", proc)
    jar = executable(tmp_path, "app.jar", b"PK\x03\x04...")
    wasm = executable(tmp_path, "app", b"\x00asm\x01\x00\x00\x00")
    assert handoff.resolve_command([jar]) == jar
    assert handoff.resolve_command([wasm]) == wasm
    with pytest.raises(CommandNotExecutable, match="neither #! nor an ELF header"):
        handoff.resolve_command([no_shebang(tmp_path)])  # "ec" matches only a disabled entry
