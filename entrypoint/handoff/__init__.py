"""The hand-off to the app: give its user access to the database folder, drop root, exec.

May import: base.
"""
