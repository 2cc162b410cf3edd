"""Operations started by this console: each runs in a task of its own, so it can outlive screens and the UI.

An ``OperationRunner`` cancels its body when whoever iterates ``events()`` stops. Textual cancels every worker
when the app exits, so a build consumed directly by a worker could never "finish in the background" as the
quit dialog promises. Here a plain task is the stream's one consumer: the runner persists every event to the
operation's log as it goes (the log view and ``orbit logs`` read them there, from the first), and the run keeps
only its outcome, so a long build holds no history in memory. Workers that start a run wait for its end
(:meth:`ConsoleRun.wait`); leaving them stops only the waiting. ``orbit_tui.app.run`` waits for what is still
running once the UI has closed. Knows nothing of Textual.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from orbit_ops.operations.events import OperationFinished
from orbit_ops.operations.runner import OperationRunner


class ConsoleRun:
    """One operation this console started: its runner, the task running it, and how it ended."""

    def __init__(self, runner: OperationRunner, on_finished: Callable[[ConsoleRun], None] | None = None) -> None:
        self.runner = runner
        self.op_id = runner.op_id
        self.kind = runner.kind
        self.target = runner.target
        self.finished: OperationFinished | None = None
        self.error: BaseException | None = None
        self._on_finished = on_finished
        self.task = asyncio.create_task(self._consume(), name=f"console operation {self.op_id}")

    @property
    def done(self) -> bool:
        return self.task.done()

    def cancel(self) -> None:
        """Cancel the operation; its cleanup runs and it ends as ``cancelled``."""
        self.runner.cancel()

    async def wait(self) -> OperationFinished | None:
        """Until the operation has ended (cleanup included); cancelling the wait leaves the operation running.

        Raises:
            OrbitError: the operation could not be started or recorded (e.g. the store is not writable).
        """
        await asyncio.shield(self.task)
        if self.error is not None:
            raise self.error
        return self.finished

    async def _consume(self) -> None:
        try:
            async with contextlib.aclosing(self.runner.events()) as stream:
                async for event in stream:
                    if isinstance(event, OperationFinished):
                        self.finished = event
        except Exception as exc:  # reported through wait() and on_finished, never lost with the task
            self.error = exc
        finally:
            if self._on_finished is not None:
                self._on_finished(self)


class ConsoleRuns:
    """The operations this console started, and what to do with them when it closes."""

    def __init__(self) -> None:
        self.runs: dict[str, ConsoleRun] = {}
        self.on_finished: Callable[[ConsoleRun], object] | None = None

    def start(self, runner: OperationRunner) -> ConsoleRun:
        """Run ``runner`` in a task of its own (call from the event loop)."""
        run = ConsoleRun(runner, self._finished)
        self.runs[run.op_id] = run
        return run

    def _finished(self, run: ConsoleRun) -> None:
        if self.on_finished is not None:
            self.on_finished(run)

    def active(self) -> list[ConsoleRun]:
        return [run for run in self.runs.values() if not run.done]

    def get(self, op_id: str) -> ConsoleRun | None:
        return self.runs.get(op_id)

    def cancel_all(self) -> list[ConsoleRun]:
        """Cancel every active operation; returns them (await :meth:`wait` for their cleanup to finish)."""
        active = self.active()
        for run in active:
            run.cancel()
        return active

    async def wait(self) -> None:
        """Until every operation started here has ended (cleanup included)."""
        tasks = [run.task for run in self.active()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self, say: Callable[[str], None]) -> None:
        """After the UI closed: wait for what still runs, a line per ending; cancelled (Ctrl+C), cancel them all."""
        active = self.active()
        if not active:
            return
        say(
            f"{len(active)} operation(s) started in the console are still running; waiting for them to finish "
            "(Ctrl+C cancels them):"
        )
        for run in active:
            say(f"  {run.kind} {run.target} · {run.op_id}  (orbit logs {run.op_id} --follow)")
        reported: set[str] = set()

        def report() -> None:
            for run in active:
                if run.done and run.op_id not in reported:
                    reported.add(run.op_id)
                    say(_ending(run))

        try:
            for next_done in asyncio.as_completed([run.task for run in active]):
                await next_done
                report()
        except asyncio.CancelledError:
            self.cancel_all()
            await asyncio.shield(self.wait())
            report()
            raise


def _ending(run: ConsoleRun) -> str:
    if run.finished is None:
        return f"{run.kind} {run.target} could not run: {run.error}"
    error = f": {run.finished.error}" if run.finished.error else ""
    return f"{run.kind} {run.target} {run.finished.state}{error} · {run.op_id}"
