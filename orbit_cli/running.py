"""Running an operation from the CLI: its event stream printed to its end, and the exit code of its outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orbit_ops.operations.events import OperationFinished
    from orbit_ops.operations.runner import OperationRunner


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


def finish_sweep(as_json: bool, finished: OperationFinished, *, pins_only: bool = False) -> None:
    """Print a sweep's (or roll's) result and exit with the code its operation's state calls for.

    The operation is ``succeeded`` only when every solution is (``orbit_ops.operations.store``), so the state
    alone decides: 0 succeeded, 130 cancelled, 1 otherwise. A roll whose refused pins make it exit 2
    never gets here (see ``orbit_cli.commands.rolling.run_roll``).
    """
    import sys

    from orbit_cli.output import echo, print_json
    from orbit_ops.fleet.entries import SweepOutcome

    outcome = SweepOutcome(finished)
    result, refused = outcome.result, outcome.refused
    if as_json:
        print_json(result if result else {"solutions": [], "writes": 0, "error": finished.error})
    else:
        for solution in outcome.not_converged:
            health = f" (health {solution['health']})" if solution.get("health") else ""
            echo(f"{solution['id']}: {solution['state']}: {solution.get('error', '')}{health}", err=True)
        for solution in outcome.unhealthy:
            reason = f": {solution['health_reason']}" if solution.get("health_reason") else ""
            echo(f"{solution['id']}: succeeded, health {solution['health']}{reason}")
        if result and pins_only:
            written, unchanged = len(result.get("pins", [])), len(result.get("unchanged", []))
            invalid = len(result.get("invalid", []))
            echo(f"{written} pin(s) written, {unchanged} already on {result.get('version')}, {len(refused)} refused"
                 + (f", {invalid} invalid" if invalid else "") + f"; not provisioned; operation {finished.op_id}")
        elif result:
            pins = f" ({len(refused)} pin(s) refused)" if refused else ""
            health = ", ".join(f"{count} {health}" for health, count in outcome.health_counts.items())
            echo(f"{outcome.converged} converged, {len(outcome.not_converged) + len(refused)} not{pins}; "
                 f"{outcome.writes} write(s); " + (f"health: {health}; " if health else "")
                 + f"operation {finished.op_id}")
    if finished.state != "succeeded":
        sys.exit(exit_code_of(finished.state))
