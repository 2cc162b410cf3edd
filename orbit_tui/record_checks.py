"""Every release record verified once per refresh of the console, the answer shared by every screen (decision 0076).

Verifying the records (``orbit_ops.console_queries.record_problems``: every release tag listed, every record's
image looked up in the registry) is the console's costliest read after the fleet itself. Components, Tags and
Solutions each need its answer; they get the same one until the console is refreshed (ctrl+r, or an operation of
this console ending: :meth:`ConsoleModel.reload`), which is when tags and records are read again too. The
first screen to ask verifies, in its worker's thread; a screen asking meanwhile waits for that answer rather
than verifying a second time.
"""

from __future__ import annotations

import threading

from orbit_ops.console_queries import record_problems
from orbit_ops.workspace import Workspace

Problems = dict[tuple[str, str], tuple[str, ...]]


class RecordChecks:
    """(component, version) → problems of its records, verified once per refresh (:meth:`invalidate`)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._lock = threading.Lock()
        self._generation = 0
        self._found: tuple[int, Problems] | None = None

    def invalidate(self) -> None:
        """The console was refreshed: the next question verifies again."""
        self._generation += 1

    def problems(self) -> Problems:
        """Runs in a worker's thread: the answer of this refresh, verified now if nobody asked yet.

        Raises:
            GitError: the tags cannot be listed (not remembered: the next question tries again).
        """
        with self._lock:
            generation = self._generation
            if self._found is None or self._found[0] != generation:
                self._found = (generation, record_problems(self.workspace))
            return self._found[1]
