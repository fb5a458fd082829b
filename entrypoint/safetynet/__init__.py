"""The database's safety net: opening the file, its integrity, verified backups, crash-safe
restore (the swap with its quarantine).

May import: base, engine (the migration lock).
"""
