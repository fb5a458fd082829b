"""litedeploy's container entrypoint: back up, migrate, check, then exec the app.

The package is built in wings, each a folder that may import only the wings below it
(tests/test_layout.py checks it):

    cli        the command line (typer), on top of everything
    handoff    drop root and exec the app                        -> base
    modes      migrate and push, over one session                -> all below
    pushplan   push's planner: declared schema, changes          -> safety, engine, base
    safety     schema model, findings, rehearsal, judge, gate    -> settings and below
    settings   what `run` is told (settings.py)                  -> safetynet, engine, base
    safetynet  database file, integrity, backup, restore         -> engine, base
    engine     sources, statements, history, plan, apply, lock   -> base
    base       errors, durable writes, faults, signals, contract -> the standard library
"""
