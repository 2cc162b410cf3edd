"""The fleet: ``status``, ``plan`` (and a saved plan's ``apply``) and ``provision``; rolls are ``rolling``'s.

Each plans, asks and starts through the engine's entries (``orbit_ops.fleet.entries``), then prints the
outcome as the entries read it; no command assembles an operation itself.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from orbit_cli.options import (
    Settings,
    confirm,
    health_timeout_option,
    json_option,
    lock_timeout_option,
    pass_settings,
    refuse_read_only,
    report_invalid,
    resolve_health_timeout,
    resolve_lock_timeout,
    select_solutions,
    selection_options,
)
from orbit_cli.output import JsonList, echo, print_json, print_table
from orbit_cli.running import finish_sweep, run_operation

if TYPE_CHECKING:
    from orbit_ops.config.model import InvalidSolution
    from orbit_ops.fleet.drift import AppStatus, SolutionStatus
    from orbit_ops.fleet.planned import PlannedSolution
    from orbit_ops.fleet.preflight import Preflight


@click.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--exit-code", is_flag=True, help="Exit 3 when anything is drifted or missing (like terraform "
              "plan -detailed-exitcode).")
@selection_options
@json_option
@pass_settings
def status(settings: Settings, ids: tuple[str, ...], exit_code: bool, only: tuple[str, ...],
           exclude: tuple[str, ...]) -> None:
    """Sync, freshness and health of every solution (or of IDS), per app and per resource."""
    import asyncio

    from orbit_ops.fleet.status import read_statuses
    from orbit_ops.names import azure_names

    workspace, specs, invalid = select_solutions(settings, ids, not ids, only, exclude)
    apps = [name for spec in specs for name in azure_names(spec.id).apps.values()]
    listing = JsonList()
    made: dict[str, tuple[Any, list[str]]] = {}  # id → what is printed of its status (the last one told)

    def keep(row: SolutionStatus) -> None:
        """What is printed of ``row``: made as each solution is judged, most of them while the listing is read
        (``read_statuses`` tells every final status, the last told for a solution being its final one)."""
        cells = [
            row.id,
            row.sync,
            row.freshness,
            row.health,
            *(_pin_cell(row.apps[c]) for c in ("orbit", "agent", "mc")),
            "; ".join(f"{r.name}: {', '.join(r.diff)}" for r in row.resources if r.sync == "drifted")[:80]
            or (row.reason or row.health_reason or ""),
        ]
        made[row.id] = (listing.item(row.to_json()) if settings.json else None, cells)

    rows, _ = asyncio.run(read_statuses(workspace, specs, apps, on_status=keep))
    entries: list[tuple[str, Any, list[str]]] = [(row.id, *made[row.id]) for row in rows]
    entries += [(entry.id, listing.item({**entry.to_json(), "freshness": None, "health": None, "health_reason": None,
                                         "labels": {}, "apps": {}, "resources": []}) if settings.json else None,
                 [entry.id, "invalid", "", "", "", "", "", f"{entry.path.name}: see the warning"]) for entry in invalid]
    entries.sort(key=lambda entry: entry[0])
    if settings.json:
        listing.print([body for _, body, _ in entries])
    else:
        report_invalid(invalid)
        print_table(["id", "sync", "freshness", "health", "orbit", "agent", "mc", "drift"],
                    [row for _, _, row in entries])
    if exit_code and (invalid or any(row.sync in ("drifted", "missing") for row in rows)):
        sys.exit(3)


def _pin_cell(app: AppStatus) -> str:
    shown = app.pinned if app.pinned == app.resolved else f"{app.pinned}={app.resolved}"
    if app.live and app.live != app.resolved:
        shown += f" (live {app.live})"
    elif app.live is None:
        shown += " (absent)"
    return str(shown)


@click.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "all_", is_flag=True, help="Every solution.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Save the plan to FILE, for `orbit apply FILE` to apply exactly (refused if anything changed).")
@json_option
@pass_settings
def plan(settings: Settings, ids: tuple[str, ...], all_: bool, out: Path | None) -> None:
    """What provisioning IDS (or --all) would create and update; writes nothing (but FILE with --out)."""
    import asyncio

    from orbit_ops.errors import InputError
    from orbit_ops.fleet.entries import SweepPlan, plan_sweep
    from orbit_ops.fleet.saved_plans import save_plan

    workspace, specs, invalid = select_solutions(settings, ids, all_)
    planned = asyncio.run(plan_sweep(workspace, specs, skip_unreleased=True))
    if settings.json:
        print_json(_plan_json(planned.solutions, invalid, planned.preflight))
    else:
        _print_plan(planned.solutions, invalid, planned.preflight)
    if out is not None:
        try:
            save_plan(workspace, SweepPlan(planned.solutions, tuple(invalid), all_, planned.preflight), out)
        except OSError as exc:
            raise InputError(f"{out}: cannot write the plan: {exc.strerror or exc}") from None
        echo(f"plan saved to {out}; apply exactly this with: orbit apply {out}", err=settings.json)
    if invalid:
        sys.exit(1)  # not everything would converge: the invalid files are left as they are


@click.command("apply")
@click.argument("plan_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--concurrency", type=int, default=8, show_default=True, help="Solutions converged at once.")
@click.option("--no-wait", is_flag=True, help="Fail a solution at once if another operation holds it.")
@lock_timeout_option
@health_timeout_option
@json_option
@pass_settings
def apply_plan(settings: Settings, plan_file: Path, concurrency: int, no_wait: bool,
               lock_timeout: float | None, health_timeout: float | None) -> None:
    """Apply exactly the plan `orbit plan --out FILE` saved; refused (exit 2, nothing written) when a solution's
    pins, desired state or live resources changed since. Asks nothing: the saved plan was the confirmation."""
    import asyncio

    from orbit_cli.commands.rolling import run_roll, run_waved_roll
    from orbit_ops.fleet.entries import start_sweep
    from orbit_ops.fleet.saved_plans import check_plan, check_roll_plan, read_plan
    from orbit_ops.fleet.sweeps import check_concurrency

    refuse_read_only(settings, "apply")
    check_concurrency(concurrency)
    workspace = settings.open()
    body = read_plan(workspace, plan_file)
    if body.get("kind") == "roll":
        roll_plan, layout = asyncio.run(check_roll_plan(workspace, plan_file, body))
        if layout is None:
            run_roll(settings, workspace, roll_plan, False, concurrency, True, resolve_lock_timeout(lock_timeout),
                     resolve_health_timeout(health_timeout))
        else:
            run_waved_roll(settings, workspace, roll_plan, layout, concurrency, True,
                           resolve_lock_timeout(lock_timeout), resolve_health_timeout(health_timeout))
        return
    confirmed = asyncio.run(check_plan(workspace, plan_file, body))
    if not settings.json:
        echo(f"{plan_file}: {len(confirmed.solutions)} solution(s), {confirmed.writes} change(s), as planned")
    runner = start_sweep(workspace, confirmed, concurrency=concurrency, wait=not no_wait,
                         lock_timeout=resolve_lock_timeout(lock_timeout),
                         health_timeout=resolve_health_timeout(health_timeout))
    finish_sweep(settings.json, run_operation(runner, quiet=settings.json))


def _plan_json(planned: Sequence[PlannedSolution], invalid: Sequence[InvalidSolution] = (),
               preflight: Preflight | None = None) -> dict[str, Any]:
    from orbit_ops.fleet.sweeps import invalid_outcomes

    solutions: list[dict[str, Any]] = []
    for planned_solution in planned:
        spec, solution_plan = planned_solution.spec, planned_solution.plan
        if solution_plan is None:
            solutions.append({"id": spec.id, "state": "skipped", "actions": [],
                              "error": f"refused: {planned_solution.refused}"})
        else:
            body = {"id": spec.id, "state": "planned", "actions": [a.to_json() for a in solution_plan.actions],
                    "preflight": [lack.to_json() for lack in planned_solution.preflight]}
            if solution_plan.notes:
                body["notes"] = list(solution_plan.notes)
            solutions.append(body)
    solutions += [outcome.to_json() for outcome in invalid_outcomes(invalid)]
    solutions.sort(key=lambda body: str(body["id"]))
    return {"solutions": solutions, "writes": 0, "preflight_warnings": list(preflight.warnings if preflight else ())}


def _print_plan(planned: Sequence[PlannedSolution], invalid: Sequence[InvalidSolution] = (),
                preflight: Preflight | None = None) -> None:
    for entry in invalid:
        echo(f"{entry.id}: invalid, left untouched: {entry.error}")
    for planned_solution in planned:
        spec, solution_plan = planned_solution.spec, planned_solution.plan
        if solution_plan is None:
            echo(f"{spec.id}: refused: {planned_solution.refused}")
            continue
        echo(f"{spec.id}: {solution_plan.summary()}")
        for note in solution_plan.notes:
            echo(f"    note: {note}")
        for action in solution_plan.actions:
            if action.action != "none":
                echo(f"    {action.action} {action.kind} {action.name}: {'; '.join(action.changes)}")
    creates = sum(p.plan.creates for p in planned if p.plan)
    updates = sum(p.plan.updates for p in planned if p.plan)
    refused = sum(1 for p in planned if p.plan is None)
    for line in preflight.lines() if preflight else ():
        echo(line)
    echo(f"plan: {len(planned)} solution(s), {creates} to create, {updates} to update"
               + (f", {refused} refused" if refused else "") + (f", {len(invalid)} invalid" if invalid else ""))


@click.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "all_", is_flag=True, help="Every solution (a sweep).")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Solutions converged at once.")
@selection_options
@click.option("--failed-from", metavar="OP_ID", help="Retry only the solutions that failed in sweep OP_ID.")
@click.option("--no-wait", is_flag=True, help="Fail a solution at once if another operation holds it.")
@lock_timeout_option
@health_timeout_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_settings
def provision(settings: Settings, ids: tuple[str, ...], all_: bool, concurrency: int, only: tuple[str, ...],
              exclude: tuple[str, ...], failed_from: str | None, no_wait: bool, lock_timeout: float | None,
              health_timeout: float | None, yes: bool) -> None:
    """Converge IDS (or --all) to their config: create what is missing, update what drifted.

    Each new revision is then followed until it is healthy or degraded: a degraded one, or one not settled
    within --health-timeout, fails its solution (exit 1).
    """
    import asyncio

    from orbit_ops.fleet.entries import plan_sweep, retry_selection, start_sweep
    from orbit_ops.fleet.sweeps import check_concurrency

    refuse_read_only(settings, "provision")
    check_concurrency(concurrency)
    if failed_from:
        retry = retry_selection(settings.open(), failed_from)
        if not retry.ids:
            echo(f"operation {retry.record.id} has no failed solutions; nothing to retry", err=True)
            return
        ids, all_ = retry.ids, False
    workspace, specs, invalid = select_solutions(settings, ids, all_, only, exclude)
    confirmed = asyncio.run(plan_sweep(workspace, specs, invalid, everything=all_))
    if not settings.json:
        _print_plan(confirmed.solutions, invalid, confirmed.preflight)
    writes = confirmed.writes
    if writes and not (ids and len(specs) == 1 and yes):
        confirm(settings, yes, f"provision {len(specs)} solution(s) ({writes} change(s))?")
    runner = start_sweep(workspace, confirmed, concurrency=concurrency, wait=not no_wait,
                         lock_timeout=resolve_lock_timeout(lock_timeout),
                         health_timeout=resolve_health_timeout(health_timeout))
    finish_sweep(settings.json, run_operation(runner, quiet=settings.json))
