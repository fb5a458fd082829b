"""Host-side deploy for SQLite apps on Docker Compose (the CLI is deploy.cli)."""

VERSION = "0.1.0"  # pyproject.toml's; tests/test_packaging.py holds them equal
