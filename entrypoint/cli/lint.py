"""`entrypoint lint`: the migrations folder checked on its own, for CI. No database."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..base.contract import MIGRATIONS_DIR_ENV
from ..base.errors import SourceError
from ..engine.sources import Format
from ..safety.lint import Problem, lint
from .options import DEFAULT_MIGRATIONS, FormatChoice, FormatOption
from .program import app, errors_to_exit
from .values import migrations_folder


class Output(StrEnum):
    TEXT = "text"
    GITHUB = "github"


def _line(problem: Problem, folder: Path, output: Output) -> str:
    where = folder / problem.path if problem.path != "." else folder
    if output is Output.GITHUB:  # a workflow command: an annotation on the file in the PR
        message = problem.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return f"::{problem.level} file={where},title=litedeploy {problem.rule}::{message}"
    return f"{where}: {problem.level}: {problem.message} [{problem.rule}]"


@app.command(
    "lint",
    epilog="Example (CI): entrypoint lint ./drizzle --output github",
)
def lint_command(
    migrations: Annotated[
        Path,
        typer.Argument(
            envvar=MIGRATIONS_DIR_ENV,
            show_default=False,
            help="Migrations folder (drizzle-kit's `out`) [default: ./drizzle].",
        ),
    ] = DEFAULT_MIGRATIONS,
    fmt: FormatOption = FormatChoice.AUTO,
    output: Annotated[
        Output,
        typer.Option(
            "--output",
            help="text: one line a problem; github: GitHub Actions annotations on the files.",
        ),
    ] = Output.TEXT,
    strict: Annotated[
        bool, typer.Option("--strict", help="Warnings fail too (exit 3), not only errors.")
    ] = False,
) -> None:
    """Check a migrations folder without a database, before it ships.

    It must load as `run` loads it; journal dates in order (drizzle's migrator never runs a
    migration dated before one already applied); a snapshot for each migration; no `.sql` file
    nothing runs; one statement per `--> statement-breakpoint` piece (drizzle's migrator fails
    on more); and the findings a file gives on its own (transaction control, empty pieces,
    another database file). Exits 0 when no error was found (3 with one, or with a warning
    under --strict).
    """
    with errors_to_exit():
        folder = migrations_folder(migrations)
        chosen = None if fmt is FormatChoice.AUTO else Format(fmt.value)
        source, problems = lint(folder, chosen)
        for problem in problems:
            typer.echo(_line(problem, folder, output))
        errors = sum(1 for p in problems if p.level == "error")
        warnings = len(problems) - errors
        counted = f"{len(source.migrations)} migration(s)" if source is not None else "nothing"
        typer.echo(
            f"lint: {counted} in {folder} ({source.format if source else 'unread'}): "
            f"{errors} error(s), {warnings} warning(s)",
            err=True,
        )
        if errors or (strict and warnings):
            first = next(p for p in problems if p.level == "error" or strict)
            raise SourceError(
                f"lint: {first.path}: {first.message}",
                hint="fix the folder (each problem is listed above), then run lint again",
            )
