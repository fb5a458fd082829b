"""Core errors and stops as one line, a hint and an exit code: the same for both parsers
(`startup` without typer, `program` with it)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..base import signals
from ..base.errors import EntrypointError, Stopped

log = logging.getLogger("litedeploy.entrypoint")


class Exit(Exception):
    """Leave with this exit code: an error was already said."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@contextmanager
def core_errors(leave: Callable[[int], BaseException] = Exit) -> Iterator[None]:
    """The one place where core errors become a message and an exit code (`leave(code)`)."""
    try:
        yield
    except EntrypointError as exc:
        if (signum := signals.received()) is not None:  # the error is what the stop caused
            raise Stopped(signum) from exc
        log.error("error: %s", exc.message)
        if exc.hint:
            log.error("hint: %s", exc.hint)
        raise leave(exc.exit_code) from None
