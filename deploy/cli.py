"""`deploy`: the host-side command. Not implemented yet; it says so instead of pretending."""

from __future__ import annotations

import sys

MESSAGE = (
    "deploy: not implemented yet. The host-side deploy (compose cutover, health wait, rollback "
    "from the entrypoint's backup) is planned; until then run `docker compose up -d "
    "--force-recreate` yourself."
)


def main() -> None:
    """Console-script entry point: explain and exit non-zero."""
    print(MESSAGE, file=sys.stderr)
    sys.exit(2)
