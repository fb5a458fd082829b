"""The entrypoint's errors as deploy's exit codes (deploy/errors.py, FROM_ENTRYPOINT).

deploy's commands run the entrypoint's backup, restore and history code, here or in the
helper container (whose JSON carries the entrypoint's exit code, which names the class). Its
exit codes are not deploy's: each error is raised for real below, the way deploy meets it,
and mapped by its class.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import typer

from deploy import errors
from deploy.cli import _errors_to_exit
from deploy.datafolder import perform
from deploy.errors import FROM_ENTRYPOINT, FROM_ENTRYPOINT_IN_RESTORE, FolderError, exit_code
from entrypoint.base import errors as ep
from entrypoint.engine.history import new_table
from entrypoint.engine.lock import migration_lock
from entrypoint.engine.sources import Format
from entrypoint.safetynet.backup import room_for_backup, take_backup
from entrypoint.safetynet.database import check_file
from entrypoint.safetynet.restore import restore_backup

# deploy's documented codes an error of the entrypoint's may become (cli.EXIT_CODES).
USAGE, PREFLIGHT, LOCKED, STEP_FAILED = 2, 3, 7, 1


def _raised(call: Any, *args: Any, **kwargs: Any) -> Exception:
    try:
        call(*args, **kwargs)
    except (ep.EntrypointError, errors.DeployError) as exc:
        return exc
    raise AssertionError(f"{call.__name__} raised nothing")


def _database(tmp_path: Path) -> Path:
    db = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.commit()
    return db


def test_a_value_the_entrypoint_refuses_is_a_usage_error(tmp_path: Path) -> None:
    error = _raised(new_table, Format.SQL, "sqlite_history")  # a name SQLite keeps for itself
    assert isinstance(error, ep.UsageError)
    assert exit_code(error) == USAGE
    assert exit_code(error, restoring=True) == USAGE


def test_a_migrator_holding_the_lock_is_locked(tmp_path: Path) -> None:
    db = _database(tmp_path)
    with migration_lock(db, 0):
        error = _raised(lambda: migration_lock(db, 0).__enter__())
    assert isinstance(error, ep.LockTimeout)
    assert exit_code(error) == LOCKED
    assert exit_code(error, restoring=True) == LOCKED


def test_a_database_in_use_during_a_restore_is_locked(tmp_path: Path) -> None:
    db = _database(tmp_path)
    made = take_backup(db, tmp_path / "backups")
    with migration_lock(db, 0):  # another litedeploy process is migrating it
        error = _raised(restore_backup, db, made.path, lock_timeout=0)  # deploy waits 30 s
    assert isinstance(error, ep.DatabaseBusy)
    assert exit_code(error, restoring=True) == LOCKED
    assert exit_code(error) == LOCKED


def test_a_missing_backup_is_a_failed_step_of_a_restore_else_preflight(tmp_path: Path) -> None:
    args = {"backup_dir": str(tmp_path), "path": None, "latest": True, "deploy_id": None}
    error = _raised(perform, "find", args)
    assert isinstance(error, FolderError)
    assert error.entrypoint_code == ep.RestoreFailed.exit_code  # 12: not one of deploy's codes
    assert "there are no backups" in error.message
    assert exit_code(error, restoring=True) == STEP_FAILED
    assert exit_code(error) == error.exit_code == PREFLIGHT


def test_a_failed_backup_is_a_failed_step_of_a_restore_else_preflight(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    db.write_text("not an SQLite database, but long enough to have been one" * 4)
    error = _raised(perform, "backup", {"db": str(db), "backup_dir": str(tmp_path / "b")})
    assert isinstance(error, FolderError)
    assert error.entrypoint_code == ep.BackupFailed.exit_code
    assert exit_code(error, restoring=True) == STEP_FAILED
    assert exit_code(error) == PREFLIGHT


def test_no_room_is_a_failed_step_of_a_restore_else_preflight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _database(tmp_path)
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=0))
    error = _raised(room_for_backup, db, tmp_path)
    assert isinstance(error, ep.NoSpace)
    assert exit_code(error, restoring=True) == STEP_FAILED
    assert exit_code(error) == PREFLIGHT


def test_any_other_error_of_the_entrypoint_is_preflight(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    db.write_text("not an SQLite database, but long enough to have been one" * 4)
    error = _raised(check_file, db)
    assert isinstance(error, ep.DatabaseError)
    assert exit_code(error) == exit_code(error, restoring=True) == PREFLIGHT
    # The entrypoint's 5 and 6 (a refused plan, a failed migration) are not deploy's 5 and 6
    # (rolled back, rollback failed): they say nothing happened to production.
    for cls in (ep.PlanRefused, ep.MigrationFailed):
        assert exit_code(cls("the container's business")) == PREFLIGHT


def test_an_error_that_is_none_of_the_entrypoints_keeps_deploys_code(tmp_path: Path) -> None:
    into = tmp_path / "snapshots"
    into.write_text("a file where the snapshot's folder should be")
    args = {"source": str(_database(tmp_path)), "into": str(into), "name": "app.db", "owner": None}
    error = _raised(perform, "snapshot", args)  # an OSError, not one of the entrypoint's
    assert isinstance(error, FolderError)
    assert error.entrypoint_code == 1
    assert exit_code(error) == exit_code(error, restoring=True) == STEP_FAILED
    assert exit_code(errors.LockHeld("held")) == LOCKED  # deploy's own keep theirs
    assert exit_code(errors.RolledBack("back"), restoring=True) == 5


def test_the_class_travels_as_its_code() -> None:
    """A FolderError from the helper container has only the entrypoint's code: it maps as
    the error it names does, for every class of the entrypoint's."""
    classes = [
        c for c in vars(ep).values() if isinstance(c, type) and issubclass(c, ep.EntrypointError)
    ]
    assert len({c.exit_code for c in classes}) == len(classes)  # one code, one class
    for cls in classes:
        if cls is ep.EntrypointError:
            continue
        carried = FolderError("in the container", entrypoint_code=cls.exit_code)
        for restoring in (False, True):
            mapped = exit_code(cls("here"), restoring=restoring)
            assert exit_code(carried, restoring=restoring) == mapped
            assert mapped in (USAGE, PREFLIGHT, LOCKED, STEP_FAILED), cls


def test_the_tables_name_only_deploys_codes() -> None:
    assert set(FROM_ENTRYPOINT.items()) <= set(FROM_ENTRYPOINT_IN_RESTORE.items())
    assert set(FROM_ENTRYPOINT_IN_RESTORE.values()) <= {USAGE, LOCKED, STEP_FAILED}


@pytest.mark.parametrize(("restoring", "expected"), [(False, PREFLIGHT), (True, STEP_FAILED)])
def test_the_cli_exits_with_the_mapped_code(
    restoring: bool, expected: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as caught, _errors_to_exit(restoring=restoring):
        raise ep.RestoreFailed("backup app.db.x.backup does not exist", hint="list them")
    assert caught.value.exit_code == expected
    assert capsys.readouterr().err.splitlines() == [
        "deploy: error: backup app.db.x.backup does not exist",
        "deploy: hint: list them",
    ]
