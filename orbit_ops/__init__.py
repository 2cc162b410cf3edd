"""Orbit's engine: the workspace, its configuration, the release catalog, builds, the fleet and operations.

Nothing here imports textual, rich or an Azure SDK at import time; the front ends (the CLI in ``orbit_cli``,
the console in ``orbit_tui``) call into these modules. ``docs/architecture.md`` draws the parts.
"""

__version__ = "0.1.0"
