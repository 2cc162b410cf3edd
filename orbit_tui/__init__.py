"""Orbit's console: a Textual front end over the ``orbit_ops`` engine."""
