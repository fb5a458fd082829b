"""`entrypoint`'s `main`: every command line ends here in one line and an exit code.

A container's start (`entrypoint run -- app`, settings in the environment) is read by
`startup` and never loads typer; every other command line goes to the typer app
(`program`). Core errors, stop signals and bugs become one line, a hint and the documented
exit code the same way for both.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

from ..base import signals
from ..base.errors import Stopped
from . import logs
from .exits import Exit, core_errors

log = logging.getLogger("litedeploy.entrypoint")


def _configure_logging() -> None:
    # The lines name no source file, thread or process: the logging HOWTO's "Optimization"
    # lets records skip looking those up (a record per line, two per migration applied).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if (refused := logs.configure(os.environ)) is not None:
        log.error("error: %s", refused)
        log.error("hint: unset it, or set it to json for one JSON object per line")
        sys.exit(2)


def _stopped_to_exit(stop: Stopped) -> int:
    """A stop signal before exec: one line and the shell's code (128 + the signal).

    Whatever error the stop caused on its way out (a statement "interrupted", a check that
    could not finish) is its consequence, not news: saying it would only mislead.
    """
    log.error("error: stopped by %s before the app was started", stop.name)
    log.error(
        "hint: each migration is committed with its history row or rolled back; start "
        "again to carry on (`entrypoint status` shows what is applied)"
    )
    return stop.exit_code


def _dispatch(args: list[str]) -> int:
    if args[:1] == ["run"]:
        from .startup import request_from_environment

        with core_errors():  # a setting refused while making the request is a core error too
            request = request_from_environment(args[1:], os.environ)
        if request is not None:
            from .launch import launch

            with core_errors():
                launch(request)
            return 0
    from .commands import run_typer

    return run_typer(args)


def main() -> None:
    """Console-script entry point."""
    _configure_logging()
    signals.install()
    try:
        code = _dispatch(sys.argv[1:])
    except Exit as leave:
        code = leave.code
    except Stopped as stop:
        code = _stopped_to_exit(stop)
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if (signum := signals.received()) is not None:  # e.g. a statement the stop aborted
            sys.exit(_stopped_to_exit(Stopped(signum)))
        if os.environ.get("LITEDEPLOY_DEBUG"):  # the traceback, and still the documented code
            traceback.print_exc()
        log.error(
            "internal error: %s: %s (set LITEDEPLOY_DEBUG=1 for a traceback)",
            type(exc).__name__,
            exc,
        )
        code = 70
    sys.exit(code)
