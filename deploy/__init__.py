"""Host-side deploy for SQLite apps on Docker Compose (not yet implemented; see deploy.cli)."""
