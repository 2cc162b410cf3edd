"""``orbit wait``: wait, without writing, until solutions are healthy or degraded (SPEC §3.6)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from orbit_cli.options import Settings, json_option, pass_settings, report_invalid, select_solutions, selection_options
from orbit_cli.output import echo, print_json

if TYPE_CHECKING:
    from orbit_ops.fleet.wait import SolutionHealth


@click.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "all_", is_flag=True, help="Every solution.")
@selection_options
@click.option("--timeout", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Give up (exit 1) after this long (default 300; 0: answer from one read).")
@json_option
@pass_settings
def wait(settings: Settings, ids: tuple[str, ...], all_: bool, only: tuple[str, ...], exclude: tuple[str, ...],
         timeout: float | None) -> None:
    """Wait until every app of IDS (or --all) is healthy or degraded; writes nothing.

    Exit 0 when all are healthy, 1 when any is degraded, invalid or not settled (progressing, missing,
    unknown) when the timeout passes.
    """
    import asyncio

    from orbit_ops.fleet.wait import DEFAULT_WAIT_TIMEOUT, wait_for_health

    workspace, specs, invalid = select_solutions(settings, ids, all_, only, exclude)
    if not settings.json:
        report_invalid(invalid)
    waited = DEFAULT_WAIT_TIMEOUT if timeout is None else timeout
    result = asyncio.run(wait_for_health(workspace.platform(), [spec.id for spec in specs], waited,
                                         on_settled=None if settings.json else _print_line))
    if settings.json:
        print_json(sorted([solution.to_json() for solution in result.solutions]
                          + [{"id": entry.id, "health": None, "health_reason": f"invalid: {entry.error}", "apps": {}}
                             for entry in invalid], key=lambda body: str(body["id"])))
    else:
        unsettled = [solution for solution in result.solutions if not solution.settled]
        for solution in unsettled:
            _print_line(solution)
        if unsettled:
            echo(f"{len(unsettled)} solution(s) neither healthy nor degraded after {waited:g} s", err=True)
    if invalid or result.exit_code:
        sys.exit(1)


def _print_line(solution: SolutionHealth) -> None:
    reason = solution.health_reason
    echo(f"{solution.id}: {solution.health}" + (f": {reason}" if reason else ""))
