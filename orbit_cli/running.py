"""Running an operation from the CLI: its event stream printed to its end, and the exit code of its outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orbit_ops.operations.events import OperationFinished
    from orbit_ops.operations.store import OperationRunner


def run_operation(runner: OperationRunner, *, quiet: bool) -> OperationFinished:
    """Run an operation's event stream to its end, printing it; returns the OperationFinished event.

    Ctrl-C cancels the operation: its cleanup runs, it is recorded ``cancelled`` (error ``interrupted
    (Ctrl-C)``) and the stream ends with that line; a second Ctrl-C stops without waiting for the cleanup.
    """
    import asyncio
    import contextlib
    import signal

    from orbit_cli.render import EventPrinter

    async def consume() -> OperationFinished | None:
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            loop.remove_signal_handler(signal.SIGINT)  # the next Ctrl-C is Python's KeyboardInterrupt again
            runner.cancel("interrupted (Ctrl-C)")

        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # no signals off the main thread
            loop.add_signal_handler(signal.SIGINT, interrupt)
        try:
            with EventPrinter(quiet=quiet) as printer:
                async with contextlib.aclosing(runner.events()) as events:
                    async for event in events:
                        printer.handle(event)
                return printer.finished
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGINT)

    finished = asyncio.run(consume())
    if finished is None:
        raise RuntimeError(f"operation {runner.op_id} ended its stream without its outcome")
    return finished


def exit_code_of(state: str) -> int:
    """The exit code of a command whose operation ended in ``state`` (see docs/reliability.md, Outcomes)."""
    return {"succeeded": 0, "cancelled": 130}.get(state, 1)
