"""The migration engine: the migrations on disk, their statements, the history table, the plan,
applying it, and the migration lock. Drizzle-compatible, stdlib only.

May import: base.
"""
