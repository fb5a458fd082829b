"""The `entrypoint` command line: a thin typer layer over the core modules."""

from . import backups, check, plan, rehearse, run, status
from .app import app, main

__all__ = ["app", "backups", "check", "main", "plan", "rehearse", "run", "status"]
