"""The safety analysis: the schema model, findings on the SQL, the rehearsal on a copy and its
judge, the check after migrating, drift from the snapshot, and the gate that uses them.

May import: base, engine, safetynet, settings.
"""
