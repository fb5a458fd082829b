"""How the entrypoint's lines look: `entrypoint: ...` text (the default), or one JSON object
per line for log collectors (`LITEDEPLOY_LOG_FORMAT=json`).

A JSON line holds `time` (UTC, ISO 8601 with milliseconds), `level` (info, warning, error),
`event` (the line's first word when it is one: `backup`, `push`, `error`, `hint`, ...;
`entrypoint` otherwise), `message` (the text line, without the `entrypoint: ` prefix) and
`fields` (the values the message was made from, in order, as `args`).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping

from ..base.contract import LOG_FORMAT_ENV as FORMAT_ENV

FORMATS = ("text", "json")
_EVENT = re.compile(r"^([a-z][a-z-]*)(?::)?\s")


class JsonLines(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        import json  # only for JSON lines: the text format's start-up imports neither
        from datetime import UTC, datetime

        message = record.getMessage()
        event = _EVENT.match(message)
        line = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "event": event.group(1) if event else "entrypoint",
            "message": message,
            "fields": {"args": [_plain(a) for a in _args(record)]},
        }
        return json.dumps(line, ensure_ascii=False)


def _args(record: logging.LogRecord) -> tuple[object, ...]:
    args = record.args
    if isinstance(args, tuple):
        return args
    return () if args is None else (args,)


def _plain(value: object) -> object:
    return value if isinstance(value, int | float | bool) or value is None else str(value)


def configure(environ: Mapping[str, str]) -> str | None:
    """Send the `litedeploy` loggers to stderr in the format asked for; the refusal's text when
    the variable names no format (the caller says it as a usage error)."""
    asked = environ.get(FORMAT_ENV, "").strip().lower() or "text"
    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger("litedeploy")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    if asked == "json":
        handler.setFormatter(JsonLines())
        return None
    handler.setFormatter(logging.Formatter("entrypoint: %(message)s"))
    if asked != "text":
        return f"{FORMAT_ENV}={environ[FORMAT_ENV]!r} is not one of {', '.join(FORMATS)}"
    return None
