"""The ``orbit`` commands, one module a group (listings, operations, fleet, console)."""
