"""The console model's workers, and whether any of them is still running or scheduled (``at_rest``).

Workers run on the host node (the app), so the app's one worker-error handler sees their errors. A group holds
one job at a time (a new one replaces one still running, as Textual's exclusive workers do); ``at_rest`` is set
whenever no job runs and no step waits for the next screen refresh: what tests wait for instead of looking into
Textual's queues.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from textual.dom import DOMNode
from textual.worker import Worker


class Jobs:
    """The workers of the console model, run on ``host``."""

    def __init__(self, host: DOMNode) -> None:
        self.host = host
        self._running: dict[str, object] = {}  # worker group → the job that last started in it
        self._scheduled = 0
        self.at_rest = asyncio.Event()
        self.at_rest.set()

    def run(self, group: str, work: Callable[[], Awaitable[None]]) -> Worker[None]:
        """Run ``work`` in a worker of ``group``, replacing one still running there."""
        token = object()
        self._running[group] = token
        self.at_rest.clear()

        async def job() -> None:
            try:
                await work()
            finally:
                if self._running.get(group) is token:
                    del self._running[group]
                self._check_rest()

        return self.host.run_worker(job, name=group, group=group, exclusive=True, exit_on_error=False)

    def busy(self, group: str) -> bool:
        """Whether a job of ``group`` still runs."""
        return group in self._running

    def after_refresh(self, step: Callable[[], object]) -> None:
        """Run ``step`` once the screen has been drawn; until then the model is not at rest."""
        self._scheduled += 1
        self.at_rest.clear()

        def run() -> None:
            self._scheduled -= 1
            try:
                step()
            finally:
                self._check_rest()

        self.host.call_after_refresh(run)

    def _check_rest(self) -> None:
        if not self._running and not self._scheduled:
            self.at_rest.set()
