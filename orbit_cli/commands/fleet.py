"""The fleet: ``status``, ``plan``, ``provision``, ``roll`` and ``rollback``.

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
)
from orbit_cli.output import echo, print_json, print_table
from orbit_cli.running import exit_code_of, run_operation

if TYPE_CHECKING:
    from orbit_ops.config.model import InvalidSolution
    from orbit_ops.fleet.drift import AppStatus
    from orbit_ops.fleet.planned import PlannedSolution
    from orbit_ops.fleet.roll import RollPlan
    from orbit_ops.fleet.waved_roll import WaveSettings
    from orbit_ops.operations.events import OperationFinished
    from orbit_ops.workspace import Workspace


@click.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--exit-code", is_flag=True, help="Exit 3 when anything is drifted or missing (like terraform "
              "plan -detailed-exitcode).")
@click.option("--only", multiple=True, metavar="PATTERN",
              help="Only ids matching this glob, or labels matching this selector (ring=canary); repeatable.")
@click.option("--exclude", multiple=True, metavar="PATTERN",
              help="Leave out ids matching this glob or label selector (repeatable).")
@json_option
@pass_settings
def status(settings: Settings, ids: tuple[str, ...], exit_code: bool, only: tuple[str, ...],
           exclude: tuple[str, ...]) -> None:
    """Sync, freshness and health of every solution (or of IDS), per app and per resource."""
    import asyncio

    from orbit_ops.fleet.status import read_live_with_health
    from orbit_ops.fleet.sweeps import statuses
    from orbit_ops.names import azure_names

    workspace, specs, invalid = select_solutions(settings, ids, not ids, only, exclude)
    platform = workspace.platform()
    apps = [name for spec in specs for name in azure_names(spec.id).apps.values()]
    snapshot = asyncio.run(read_live_with_health(platform, platform, apps))
    rows = statuses(workspace, specs, snapshot)
    entries: list[tuple[str, dict[str, Any], list[str]]] = [
        (
            row.id,
            row.to_json(),
            [
                row.id,
                row.sync,
                row.freshness,
                row.health,
                *(_pin_cell(row.apps[c]) for c in ("orbit", "agent", "mc")),
                "; ".join(f"{r.name}: {', '.join(r.diff)}" for r in row.resources if r.sync == "drifted")[:80]
                or (row.reason or row.health_reason or ""),
            ],
        )
        for row in rows
    ]
    entries += [(entry.id, {**entry.to_json(), "freshness": None, "health": None, "health_reason": None, "labels": {},
                            "apps": {}, "resources": []},
                 [entry.id, "invalid", "", "", "", "", "", f"{entry.path.name}: see the warning"]) for entry in invalid]
    entries.sort(key=lambda entry: entry[0])
    if settings.json:
        print_json([body for _, body, _ in entries])
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
    from orbit_ops.fleet.entries import SweepPlan
    from orbit_ops.fleet.saved_plans import save_plan
    from orbit_ops.fleet.sweeps import plan_many

    workspace, specs, invalid = select_solutions(settings, ids, all_)
    planned = asyncio.run(plan_many(workspace, specs)) if specs else []
    if settings.json:
        print_json(_plan_json(planned, invalid))
    else:
        _print_plan(planned, invalid)
    if out is not None:
        try:
            save_plan(workspace, SweepPlan(tuple(planned), tuple(invalid), all_), out)
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

    from orbit_ops.fleet.entries import start_sweep
    from orbit_ops.fleet.saved_plans import check_plan
    from orbit_ops.fleet.sweeps import check_concurrency

    refuse_read_only(settings, "apply")
    check_concurrency(concurrency)
    workspace = settings.open()
    confirmed = asyncio.run(check_plan(workspace, plan_file))
    if not settings.json:
        echo(f"{plan_file}: {len(confirmed.solutions)} solution(s), {confirmed.writes} change(s), as planned")
    runner = start_sweep(workspace, confirmed, concurrency=concurrency, wait=not no_wait,
                         lock_timeout=resolve_lock_timeout(lock_timeout),
                         health_timeout=resolve_health_timeout(health_timeout))
    _finish_sweep(settings, run_operation(runner, quiet=settings.json))


def _plan_json(planned: Sequence[PlannedSolution], invalid: Sequence[InvalidSolution] = ()) -> dict[str, Any]:
    from orbit_ops.fleet.sweeps import invalid_outcomes

    solutions: list[dict[str, Any]] = []
    for planned_solution in planned:
        spec, solution_plan = planned_solution.spec, planned_solution.plan
        if solution_plan is None:
            solutions.append({"id": spec.id, "state": "skipped", "actions": [],
                              "error": f"refused: {planned_solution.refused}"})
        else:
            body = {"id": spec.id, "state": "planned", "actions": [a.to_json() for a in solution_plan.actions]}
            if solution_plan.notes:
                body["notes"] = list(solution_plan.notes)
            solutions.append(body)
    solutions += [outcome.to_json() for outcome in invalid_outcomes(invalid)]
    solutions.sort(key=lambda body: str(body["id"]))
    return {"solutions": solutions, "writes": 0}


def _print_plan(planned: Sequence[PlannedSolution], invalid: Sequence[InvalidSolution] = ()) -> None:
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
    echo(f"plan: {len(planned)} solution(s), {creates} to create, {updates} to update"
               + (f", {refused} refused" if refused else "") + (f", {len(invalid)} invalid" if invalid else ""))


@click.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "all_", is_flag=True, help="Every solution (a sweep).")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Solutions converged at once.")
@click.option("--only", multiple=True, metavar="PATTERN",
              help="Only ids matching this glob, or labels matching this selector (ring=canary); repeatable.")
@click.option("--exclude", multiple=True, metavar="PATTERN",
              help="Leave out ids matching this glob or label selector (repeatable).")
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
        _print_plan(confirmed.solutions, invalid)
    writes = confirmed.writes
    if writes and not (ids and len(specs) == 1 and yes):
        confirm(settings, yes, f"provision {len(specs)} solution(s) ({writes} change(s))?")
    runner = start_sweep(workspace, confirmed, concurrency=concurrency, wait=not no_wait,
                         lock_timeout=resolve_lock_timeout(lock_timeout),
                         health_timeout=resolve_health_timeout(health_timeout))
    _finish_sweep(settings, run_operation(runner, quiet=settings.json))


def _finish_sweep(settings: Settings, finished: OperationFinished, *, pins_only: bool = False) -> None:
    """Print a sweep's (or roll's) result and exit with the code its operation's state calls for.

    The operation is ``succeeded`` only when every solution is (``orbit_ops.operations.store``), so the state
    alone decides: 0 succeeded, 130 cancelled, 1 otherwise. A roll whose refused pins make it exit 2
    never gets here (see ``_roll``).
    """
    from orbit_ops.fleet.entries import SweepOutcome

    outcome = SweepOutcome(finished)
    result, refused = outcome.result, outcome.refused
    if settings.json:
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


@click.command()
@click.argument("component", required=False)
@click.argument("version", required=False)
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "all_", is_flag=True, help="Every solution.")
@click.option("--only", multiple=True, metavar="PATTERN",
              help="Only ids matching this glob, or labels matching this selector (ring=canary); repeatable.")
@click.option("--exclude", multiple=True, metavar="PATTERN",
              help="Leave out ids matching this glob or label selector (repeatable).")
@click.option("--no-provision", is_flag=True, help="Only edit the pins; do not provision.")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Solutions converged at once.")
@click.option("--waves", metavar="SPEC", help="Roll in waves: sizes (1,10%,*) or label steps (ring=canary,*).")
@click.option("--soak", metavar="DURATION", default="0", show_default=True,
              help="With --waves: watch each wave this long (90s, 5m) before the next; a degraded app fails it.")
@click.option("--on-failure", type=click.Choice(["halt", "rollback"]), default="halt", show_default=True,
              help="With --waves: when a wave fails, stop, or stop and pin its solutions back.")
@click.option("--max-unhealthy", type=int, default=0, show_default=True,
              help="With --waves: unhealthy solutions a wave may have and still pass.")
@click.option("--resume", "resume", metavar="OP_ID",
              help="Continue roll OP_ID from its first wave that did not succeed.")
@lock_timeout_option
@health_timeout_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_settings
def roll(settings: Settings, component: str | None, version: str | None, ids: tuple[str, ...], all_: bool,
         only: tuple[str, ...], exclude: tuple[str, ...], no_provision: bool, concurrency: int, waves: str | None,
         soak: str, on_failure: str, max_unhealthy: int, resume: str | None, lock_timeout: float | None,
         health_timeout: float | None, yes: bool) -> None:
    """Pin COMPONENT to released VERSION in IDS (or --all), then provision them as one sweep (or in --waves)."""
    from orbit_ops.errors import InputError
    from orbit_ops.fleet.roll import plan_roll
    from orbit_ops.fleet.sweeps import check_concurrency
    from orbit_ops.fleet.waved_roll import WaveSettings, check_settings
    from orbit_ops.fleet.waves import lay_out, parse_duration, parse_waves

    refuse_read_only(settings, "roll")
    check_concurrency(concurrency)
    if resume is not None:
        if component or version or ids or all_ or waves:
            raise InputError("--resume OP_ID takes no COMPONENT, VERSION, IDS, --all or --waves: it continues "
                             "the roll as it was laid out")
        _resume_roll(settings, resume, concurrency, yes, resolve_lock_timeout(lock_timeout),
                     resolve_health_timeout(health_timeout))
        return
    if not component or not version:
        raise InputError("name COMPONENT and VERSION (or --resume OP_ID)")
    workspace, specs, invalid = select_solutions(settings, ids, all_, only, exclude)
    roll_plan = plan_roll(workspace, component, version, specs)
    if waves is None:
        _roll(settings, workspace, roll_plan, no_provision, concurrency, yes, resolve_lock_timeout(lock_timeout),
              resolve_health_timeout(health_timeout), invalid)
        return
    if no_provision:
        raise InputError("--waves provisions each wave and checks its health: it cannot go with --no-provision")
    seconds = parse_duration(soak)
    layout = WaveSettings(lay_out(specs, parse_waves(waves)), seconds, check_settings(seconds, on_failure,
                                                                                     max_unhealthy), max_unhealthy)
    _waved_roll(settings, workspace, roll_plan, layout, concurrency, yes, resolve_lock_timeout(lock_timeout),
                resolve_health_timeout(health_timeout), invalid)


def _waved_roll(settings: Settings, workspace: Workspace, roll_plan: RollPlan, layout: WaveSettings,
                concurrency: int, yes: bool, lock_timeout: float, health_timeout: float,
                invalid: Sequence[InvalidSolution] = (), *, done: Sequence[int] = (),
                resumed_from: str | None = None) -> None:
    from orbit_ops.fleet.entries import start_waved_roll
    from orbit_ops.fleet.waved_roll import outcome_lines

    changes = {change.id: change for change in roll_plan.changes}
    if not settings.json:
        for wave in layout.waves:
            echo(f"wave {wave.index} ({wave.selector}): {len(wave.solutions)} solution(s)"
                 + (" — succeeded before, not run again" if wave.index in done else ""))
            for solution_id in wave.solutions:
                labels = ",".join(f"{k}={v}" for k, v in sorted(roll_plan.specs[solution_id].labels.items()))
                change = changes.get(solution_id)
                echo(f"    {solution_id}: " + (change.describe() if change else f"already on {roll_plan.version}")
                     + (f"  [{labels}]" if labels else ""))
        for entry in invalid:
            echo(f"{entry.id}: invalid, left untouched: {entry.error}")
        echo(f"each wave: re-pin, provision, wait for health, soak {layout.soak:g} s; a wave with more than "
             f"{layout.max_unhealthy} unhealthy solution(s) fails and the roll halts"
             + (" and pins that wave back" if layout.on_failure == "rollback" else ""))
    confirm(settings, yes, f"roll {roll_plan.component} {roll_plan.version} to {len(roll_plan.changes)} solution(s) "
                           f"in {len(layout.waves)} wave(s)?")
    runner = start_waved_roll(workspace, roll_plan, layout, done=done, resumed_from=resumed_from,
                              concurrency=concurrency, lock_timeout=lock_timeout, health_timeout=health_timeout,
                              invalid=invalid)
    finished = run_operation(runner, quiet=settings.json)
    if not settings.json:
        for line in outcome_lines(finished.result or {}):
            echo(line, err=finished.state != "succeeded")
    _finish_sweep(settings, finished)


def _resume_roll(settings: Settings, op_id: str, concurrency: int, yes: bool, lock_timeout: float,
                 health_timeout: float) -> None:
    from orbit_ops.fleet.roll import plan_roll
    from orbit_ops.fleet.waved_roll import resumable

    workspace = settings.open()
    earlier = resumable(workspace, op_id)
    wanted = {solution_id for wave in earlier.settings.waves for solution_id in wave.solutions}
    specs = [spec for spec in workspace.solutions() if spec.id in wanted]
    missing = sorted(wanted - {spec.id for spec in specs})
    if missing:
        from orbit_ops.errors import InputError

        raise InputError(f"cannot resume {earlier.record.id}: solution(s) {', '.join(missing)} of its waves are "
                         "gone or invalid now")
    roll_plan = plan_roll(workspace, earlier.component, earlier.version, specs)
    _waved_roll(settings, workspace, roll_plan, earlier.settings, concurrency, yes, lock_timeout, health_timeout,
                done=earlier.done, resumed_from=earlier.record.id)


def _roll(settings: Settings, workspace: Workspace, roll_plan: RollPlan, no_provision: bool, concurrency: int,
          yes: bool, lock_timeout: float, health_timeout: float, invalid: Sequence[InvalidSolution] = ()) -> None:
    from orbit_ops.fleet.entries import SweepOutcome, start_roll

    if not settings.json:
        for change in roll_plan.changes:
            echo(f"{change.id}: {change.describe()}")
        if roll_plan.unchanged:
            echo(f"already on {roll_plan.version}: {', '.join(roll_plan.unchanged)}")
        for entry in invalid:
            echo(f"{entry.id}: invalid, left untouched: {entry.error}")
    if roll_plan.changes:
        confirm(settings, yes, f"roll {roll_plan.component} {roll_plan.version} to {len(roll_plan.changes)} "
                                f"solution(s){'' if no_provision else ' and provision them'}?")

    runner = start_roll(workspace, roll_plan, provision=not no_provision, concurrency=concurrency,
                        lock_timeout=lock_timeout, health_timeout=health_timeout, invalid=invalid)
    finished = run_operation(runner, quiet=settings.json)
    outcome = SweepOutcome(finished)
    for item in outcome.refused:
        echo(f"error: {item['id']}: pin not changed: {item['error']}", err=True)
    # Exit 2 (invalid input) only when the roll wrote nothing at all and only the input is to blame:
    # a roll that wrote a pin or provisioned anything exits 1 with the refused solutions named.
    if outcome.only_input_refused:
        if settings.json:
            print_json(outcome.result)
        sys.exit(2)
    _finish_sweep(settings, finished, pins_only=no_provision)


@click.command()
@click.argument("solution_id", metavar="ID")
@click.argument("component")
@click.option("--no-provision", is_flag=True, help="Only edit the pin; do not provision.")
@lock_timeout_option
@health_timeout_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_settings
def rollback(settings: Settings, solution_id: str, component: str, no_provision: bool, lock_timeout: float | None,
             health_timeout: float | None, yes: bool) -> None:
    """Re-pin COMPONENT of solution ID to the version it ran before its last roll."""
    from orbit_ops.fleet.roll import plan_roll, previous_pin

    refuse_read_only(settings, "rollback")
    workspace, specs, _ = select_solutions(settings, (solution_id,), False)
    before = previous_pin(workspace, solution_id, component, specs[0].pin(component))
    _roll(settings, workspace, plan_roll(workspace, component, before, specs, allow_latest=True), no_provision, 8,
          yes, resolve_lock_timeout(lock_timeout), resolve_health_timeout(health_timeout))
