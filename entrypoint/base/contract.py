"""The contract between the host-side `deploy` and the container's entrypoint, in one place.

The two halves talk through the app container's environment: deploy reads the compose
file's DB_PATH and LITEDEPLOY_BACKUP_DIR to find the database and its backups on the host,
passes LITEDEPLOY_DEPLOY_ID (and push mode) to the container it starts, and starts the
rehearsal's container with backups off and the stop-before-exec switch on. The entrypoint
reads the same variables as `run`'s options. Both import the names and values from here
(deploy may import the base wing), so that neither can rename one without the other.

Every setting of the tool's own is named LITEDEPLOY_*: the entrypoint runs in the app's
environment, where BACKUP=s3://... or CHECK=1 may well mean something to the app. Only
DB_PATH, MIGRATIONS_DIR (the names apps already give their database and migrations) and
APP_ENV (the app's environment, which production-only refusals read) are shared.

Also here: the database paths each side assumes when DB_PATH is unset, and the side files
SQLite keeps beside a database, which the entrypoint's backup and restore and deploy's data
folder must agree on.
"""

from __future__ import annotations

from pathlib import Path

# The package version (pyproject.toml's; tests/test_drift_memo.py holds them equal): part of
# the key of what one version of the code remembers for the next start (drift_memo.py).
VERSION = "0.1.0"

# -- environment variables: the entrypoint reads them, deploy sets or reads them ------------

DB_PATH_ENV = "DB_PATH"  # --db: the database file, a path inside the container
MIGRATIONS_DIR_ENV = "MIGRATIONS_DIR"  # --migrations
BACKUP_ENV = "LITEDEPLOY_BACKUP"  # --backup: when `run` takes a backup (always, pending, never)
BACKUP_DIR_ENV = (
    "LITEDEPLOY_BACKUP_DIR"  # --backup-dir: deploy finds the backups on the host from it
)
BACKUP_KEEP_ENV = "LITEDEPLOY_BACKUP_KEEP"  # --backup-keep
BACKUP_METHOD_ENV = "LITEDEPLOY_BACKUP_METHOD"  # --backup-method
DEPLOY_ID_ENV = (
    "LITEDEPLOY_DEPLOY_ID"  # --deploy-id: recorded in the backup, found by deploy with it
)
LOG_FORMAT_ENV = "LITEDEPLOY_LOG_FORMAT"  # text (the default) or json: cli/logs.py
MODE_ENV = "LITEDEPLOY_MIGRATE_MODE"  # --mode: migrate (the default) or push
REHEARSAL_ENV = "LITEDEPLOY_REHEARSAL"  # --rehearsal: stop after the checks, exec nothing

# -- the values deploy passes ----------------------------------------------------------------

BACKUP_NEVER = "never"  # LITEDEPLOY_BACKUP for the rehearsal: its copy is thrown away
MODE_PUSH = "push"  # LITEDEPLOY_MIGRATE_MODE for `deploy --push` (staging)
REHEARSAL_ON = "1"  # LITEDEPLOY_REHEARSAL for the rehearsal's container

# -- where the database is when DB_PATH is not set -------------------------------------------

# The entrypoint's --db default, relative to its working directory (the container's WORKDIR).
# deploy finds the same file by the same rules (deploy/stack.py, database_in_container): --db,
# then DB_PATH from the service or the image, then this, from the image's WORKDIR.
CLI_DEFAULT_DB = Path("./data/app.db")

# -- the files SQLite keeps beside a database ------------------------------------------------

JOURNAL_SUFFIX = "-journal"  # the rollback journal
WAL_SUFFIX = "-wal"  # the write-ahead log
SHM_SUFFIX = "-shm"  # the WAL's shared-memory index
SIDE_FILES = (JOURNAL_SUFFIX, WAL_SUFFIX, SHM_SUFFIX)
# litedeploy's own: a restore's intent, there only while a restore is unfinished (swap.py).
RESTORE_INTENT_SUFFIX = ".restoring"


def side_file(db: Path, suffix: str) -> Path:
    """The side file of a database: `app.db` and WAL_SUFFIX -> `app.db-wal`."""
    return db.with_name(db.name + suffix)
