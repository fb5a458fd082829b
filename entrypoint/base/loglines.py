"""How a log line looks as JSON, the same for both halves (`LITEDEPLOY_LOG_FORMAT=json`).

A line is one JSON object: `time` (UTC, ISO 8601 with milliseconds), `level` (info, warning,
error), `event` (the message's first word when it is one: `backup`, `push`, `error`, `hint`,
...; the command's name otherwise), `message` (the text line, without its `entrypoint: ` or
`deploy: ` prefix) and `fields` (the values the message was made from, in order, as `args`).
The entrypoint writes them through `logging` (cli/logs.py); deploy writes its own lines with
`json_line` (deploy/cli.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

from .contract import LOG_FORMAT_ENV

FORMATS = ("text", "json")
_EVENT = re.compile(r"^([a-z][a-z-]*)(?::)?\s")


def asked(environ: Mapping[str, str]) -> tuple[str, str | None]:
    """The format LITEDEPLOY_LOG_FORMAT asks for (`text` when unset), and the refusal's text
    when it names no format (the caller says it as a usage error and writes text)."""
    value = environ.get(LOG_FORMAT_ENV, "").strip().lower() or "text"
    if value in FORMATS:
        return value, None
    return (
        "text",
        f"{LOG_FORMAT_ENV}={environ[LOG_FORMAT_ENV]!r} is not one of {', '.join(FORMATS)}",
    )


def json_line(
    message: str, *, level: str, created: float, source: str, args: Sequence[object] = ()
) -> str:
    """One line as a JSON object; `source` is the event of a line whose first word is none."""
    import json  # only for JSON lines: the text format's start-up imports neither
    from datetime import UTC, datetime

    event = _EVENT.match(message)
    line = {
        "time": datetime.fromtimestamp(created, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "level": level,
        "event": event.group(1) if event else source,
        "message": message,
        "fields": {"args": [_plain(a) for a in args]},
    }
    return json.dumps(line, ensure_ascii=False)


class JsonLines(logging.Formatter):
    """One JSON object per log record."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def format(self, record: logging.LogRecord) -> str:
        return json_line(
            record.getMessage(),
            level=record.levelname.lower(),
            created=record.created,
            source=self.source,
            args=_args(record),
        )


def _args(record: logging.LogRecord) -> tuple[object, ...]:
    args = record.args
    if isinstance(args, tuple):
        return args
    return () if args is None else (args,)


def _plain(value: object) -> object:
    return value if isinstance(value, int | float | bool) or value is None else str(value)
