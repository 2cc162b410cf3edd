"""Orbit's engine: workspace, naming, tags, releases, builds, provisioning and operations.

Nothing here imports textual, rich or an Azure SDK at import time; front ends (the CLI in
``orbit_ops.cli``, the console in ``orbit_tui``) call into these modules.
"""

__version__ = "0.1.0"
