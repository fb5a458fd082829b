"""The two modes of `entrypoint run`: migrate and push, each one story over a shared session
(checks, the lock, backup, restore on failure, removing a database the run created).

May import: base, engine, safetynet, settings, safety, pushplan.
"""
