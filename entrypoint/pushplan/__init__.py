"""Push's planner: the declared schema (a drizzle-kit snapshot or a schema.sql) and the
changes that turn the live schema into it, with what each would cost in data.

May import: base, engine, safety.
"""
