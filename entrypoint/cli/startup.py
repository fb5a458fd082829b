"""`entrypoint run` on a container's start-up path: the settings from the environment alone.

An app image's `ENTRYPOINT ["/opt/litedeploy/entrypoint", "run", "--"]` gives no options;
everything comes from environment variables. That command line is read here, without
loading typer (a sixth of a start with nothing pending): the same variables, the same
checks (`values`), the same defaults as `run`'s options. The two options a hand-written
start gives most, `--db PATH` and `--migrations DIR` (each once, before the command), are
read too, as their variables would be. Anything else, another option, `--help`, push mode,
or a value this reader would have to judge differently from typer (one that is not plainly
valid), goes to the full parser, which also words the errors. tests/test_startup.py holds
the two to the same answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..base.contract import (
    BACKUP_DIR_ENV,
    BACKUP_ENV,
    BACKUP_KEEP_ENV,
    BACKUP_METHOD_ENV,
    CLI_DEFAULT_DB,
    DB_PATH_ENV,
    DEPLOY_ID_ENV,
    MIGRATIONS_DIR_ENV,
    MODE_ENV,
    REHEARSAL_ENV,
)
from ..safetynet.backup_options import Method
from ..safetynet.integrity import Level
from ..settings import Findings, Policy
from . import values
from .launch import RunRequest, run_request
from .values import DEFAULT_MIGRATIONS, FormatChoice, Mode, TransactionChoice

# click's boolean words (any case, spaces around ignored), as typer reads a flag's variable.
_BOOLEANS = {
    **dict.fromkeys(("1", "true", "t", "yes", "y", "on"), True),
    **dict.fromkeys(("0", "false", "f", "no", "n", "off"), False),
}


def _boolean(value: str) -> bool:
    try:
        return _BOOLEANS[value.strip().lower()]
    except KeyError:
        raise ValueError(value) from None


def _choice(kind: type[Any]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        return kind(value)  # exact value; typer judges (and words) anything else

    return parse


def _keep(value: str) -> str:
    return value


def _backups_to_keep(value: str) -> int:
    number = int(value.strip())
    if not 1 <= number <= values.MAX_BACKUP_KEEP:
        raise ValueError(value)
    return number


# run's parameter, its environment variable, how the value is read, its default.
SETTINGS: tuple[tuple[str, str, Callable[[str], Any], Any], ...] = (
    ("db", DB_PATH_ENV, values.sqlite_path, CLI_DEFAULT_DB),
    ("migrations", MIGRATIONS_DIR_ENV, Path, DEFAULT_MIGRATIONS),
    ("fmt", "LITEDEPLOY_MIGRATIONS_FORMAT", _choice(FormatChoice), FormatChoice.AUTO),
    ("table", "LITEDEPLOY_MIGRATIONS_TABLE", values.history_table_name, None),
    ("allow_out_of_order", "LITEDEPLOY_ALLOW_OUT_OF_ORDER", _boolean, False),
    ("allow_changed", "LITEDEPLOY_ALLOW_CHANGED", _boolean, False),
    ("allow_newer_database", "LITEDEPLOY_ALLOW_NEWER_DATABASE", _boolean, False),
    (
        "transaction",
        "LITEDEPLOY_MIGRATE_TRANSACTION",
        _choice(TransactionChoice),
        TransactionChoice.EACH,
    ),
    ("lock_timeout", "LITEDEPLOY_LOCK_TIMEOUT", values.seconds, 60.0),
    ("user", "LITEDEPLOY_APP_USER", _keep, None),
    ("backup", BACKUP_ENV, _choice(Policy), Policy.PENDING),
    ("backup_dir", BACKUP_DIR_ENV, values.sqlite_path, None),
    ("backup_keep", BACKUP_KEEP_ENV, _backups_to_keep, 10),
    ("backup_method", BACKUP_METHOD_ENV, _choice(Method), Method.AUTO),
    ("check", "LITEDEPLOY_CHECK", _choice(Level), Level.QUICK),
    ("journal_mode", "LITEDEPLOY_JOURNAL_MODE", values.known_journal_mode, None),
    ("require_volume", "LITEDEPLOY_REQUIRE_VOLUME", _boolean, False),
    ("allow_row_loss", "LITEDEPLOY_ALLOW_ROW_LOSS", _boolean, False),
    ("deploy_id", DEPLOY_ID_ENV, values.deploy_id_value, None),
    ("findings", "LITEDEPLOY_FINDINGS", _choice(Findings), Findings.BLOCK),
    ("rehearse", "LITEDEPLOY_REHEARSE", _boolean, True),
    ("rehearsal_dir", "LITEDEPLOY_REHEARSAL_DIR", values.sqlite_path, None),
    ("env", "APP_ENV", _keep, None),
    ("strict", "LITEDEPLOY_STRICT_DRIFT", _boolean, False),
    ("mode", MODE_ENV, _choice(Mode), Mode.MIGRATE),
    ("rehearsal", REHEARSAL_ENV, _boolean, False),
)
# Push mode's variables: set, they send the command line to the full parser (push mode is
# for staging, and migrate mode warns that they are ignored).
PUSH_ONLY = (
    "LITEDEPLOY_PUSH_SCHEMA",
    "LITEDEPLOY_PUSH_RENAMES",
    "LITEDEPLOY_ACCEPT_DATA_LOSS",
    "LITEDEPLOY_ALLOW_PUSH_IN_PRODUCTION",
)
# The options read here, each as the variable typer would otherwise read it from.
OPTIONS = {"--db": DB_PATH_ENV, "--migrations": MIGRATIONS_DIR_ENV}


def _options(args: Sequence[str]) -> tuple[dict[str, str], list[str]] | None:
    """`--db PATH` / `--migrations DIR` (or `--db=PATH`) at the front of `args`, as the
    variables they stand for, and the rest; None for what typer should judge: an option
    given twice or without a value, or a value that is empty or starts with `-`."""
    given: dict[str, str] = {}
    rest = list(args)
    while rest and (rest[0] in OPTIONS or rest[0].split("=", 1)[0] in OPTIONS):
        name, has_value, value = rest.pop(0).partition("=")
        if not has_value:
            if not rest:
                return None
            value = rest.pop(0)
        if OPTIONS[name] in given or not value or value.startswith("-"):
            return None
        given[OPTIONS[name]] = value
    return given, rest


def request_from_environment(args: Sequence[str], environ: Mapping[str, str]) -> RunRequest | None:
    """`run`'s request when `args` (after `run`) is only `[--db PATH] [--migrations DIR]
    [--] [command ...]`; else None.

    None means: let the full parser read this command line (it gives the same answer, or
    the error this reader does not word).
    """
    if (front := _options(args)) is None:
        return None
    given_options, args = front
    if args and args[0].startswith("-") and args[0] != "--":
        return None  # another option (or --help): the full parser's
    command = list(args[1:] if args[:1] == ["--"] else args)
    environ = {**environ, **given_options}  # an option wins over its variable, as in typer
    if any(environ.get(name) for name in PUSH_ONLY):
        return None
    given: dict[str, Any] = {}
    for param, variable, read, default in SETTINGS:
        raw = environ.get(variable)
        if not raw:  # unset or empty: the default, as typer takes it
            given[param] = default
            continue
        try:
            given[param] = read(raw)
        except ValueError:
            return None  # not plainly valid: typer says what is wrong with it
    if given["mode"] is not Mode.MIGRATE:
        return None
    return run_request(
        command=command,
        allow=None,
        schema=None,
        rename=None,
        accept_data_loss=False,
        allow_push_in_production=False,
        dry_run=False,
        **given,
    )
