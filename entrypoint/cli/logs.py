"""How the entrypoint's lines look: `entrypoint: ...` text (the default), or one JSON object
per line for log collectors (`LITEDEPLOY_LOG_FORMAT=json`; the object: base/loglines.py).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from ..base.loglines import JsonLines, asked


def configure(environ: Mapping[str, str]) -> str | None:
    """Send the `litedeploy` loggers to stderr in the format asked for; the refusal's text when
    the variable names no format (the caller says it as a usage error)."""
    chosen, refused = asked(environ)
    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger("litedeploy")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    if chosen == "json":
        handler.setFormatter(JsonLines("entrypoint"))
    else:
        handler.setFormatter(logging.Formatter("entrypoint: %(message)s"))
    return refused
