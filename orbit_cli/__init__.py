"""The ``orbit`` command line: a thin front end that prints what the engine (``orbit_ops``) returns."""
