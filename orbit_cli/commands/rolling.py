"""``orbit roll`` (at once or in waves, from a saved plan, or resumed) and ``orbit rollback`` (SPEC §3.4, §3.7)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from orbit_cli.options import (
    Settings,
    confirm,
    health_timeout_option,
    json_option,
    lock_timeout_option,
    pass_settings,
    refuse_read_only,
    resolve_health_timeout,
    resolve_lock_timeout,
    select_solutions,
    selection_options,
)
from orbit_cli.output import echo, print_json
from orbit_cli.running import finish_sweep, run_operation

if TYPE_CHECKING:
    from orbit_ops.config.model import InvalidSolution
    from orbit_ops.fleet.roll import RollPlan
    from orbit_ops.fleet.waves import WaveSettings
    from orbit_ops.workspace import Workspace


@click.command()
@click.argument("component", required=False)
@click.argument("version", required=False)
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "all_", is_flag=True, help="Every solution.")
@selection_options
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
@click.option("--plan-out", "plan_out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the roll's plan (pins, waves) to FILE and stop; `orbit apply FILE` carries it out exactly.")
@lock_timeout_option
@health_timeout_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_settings
def roll(settings: Settings, component: str | None, version: str | None, ids: tuple[str, ...], all_: bool,
         only: tuple[str, ...], exclude: tuple[str, ...], no_provision: bool, concurrency: int, waves: str | None,
         soak: str, on_failure: str, max_unhealthy: int, resume: str | None, plan_out: Path | None,
         lock_timeout: float | None, health_timeout: float | None, yes: bool) -> None:
    """Pin COMPONENT to released VERSION in IDS (or --all), then provision them as one sweep (or in --waves)."""
    import asyncio

    from orbit_ops.errors import InputError
    from orbit_ops.fleet.preflight import check_roll
    from orbit_ops.fleet.roll import plan_roll
    from orbit_ops.fleet.sweeps import check_concurrency
    from orbit_ops.fleet.waves import WaveSettings, check_settings, lay_out, parse_duration, parse_waves

    refuse_read_only(settings, "roll")
    check_concurrency(concurrency)
    if resume is not None:
        if component or version or ids or all_ or waves or plan_out:
            raise InputError("--resume OP_ID takes no COMPONENT, VERSION, IDS, --all, --waves or --plan-out: it "
                             "continues the roll as it was laid out")
        _resume_roll(settings, resume, concurrency, yes, resolve_lock_timeout(lock_timeout),
                     resolve_health_timeout(health_timeout))
        return
    if not component or not version:
        raise InputError("name COMPONENT and VERSION (or --resume OP_ID)")
    workspace, specs, invalid = select_solutions(settings, ids, all_, only, exclude)
    roll_plan = asyncio.run(check_roll(workspace, plan_roll(workspace, component, version, specs)))
    layout = None
    if waves is not None:
        if no_provision:
            raise InputError("--waves provisions each wave and checks its health: it cannot go with --no-provision")
        seconds = parse_duration(soak)
        layout = WaveSettings(lay_out(specs, parse_waves(waves)), seconds,
                              check_settings(seconds, on_failure, max_unhealthy), max_unhealthy)
    if plan_out is not None:
        _save_roll_plan(settings, workspace, roll_plan, layout, invalid, no_provision, plan_out)
    elif layout is None:
        run_roll(settings, workspace, roll_plan, no_provision, concurrency, yes, resolve_lock_timeout(lock_timeout),
              resolve_health_timeout(health_timeout), invalid)
    else:
        run_waved_roll(settings, workspace, roll_plan, layout, concurrency, yes, resolve_lock_timeout(lock_timeout),
                    resolve_health_timeout(health_timeout), invalid)


def _save_roll_plan(settings: Settings, workspace: Workspace, roll_plan: RollPlan, layout: WaveSettings | None,
                    invalid: Sequence[InvalidSolution], no_provision: bool, out: Path) -> None:
    import asyncio

    from orbit_ops.errors import InputError
    from orbit_ops.fleet.saved_plans import save_roll_plan

    if no_provision:
        raise InputError("--plan-out saves a roll that provisions: it cannot go with --no-provision")
    _show_roll(settings, roll_plan, layout, invalid)
    try:
        asyncio.run(save_roll_plan(workspace, roll_plan, layout, out))
    except OSError as exc:
        raise InputError(f"{out}: cannot write the plan: {exc.strerror or exc}") from None
    echo(f"roll plan saved to {out}; nothing written; carry out exactly this with: orbit apply {out}",
         err=settings.json)


def _show_roll(settings: Settings, roll_plan: RollPlan, layout: WaveSettings | None,
               invalid: Sequence[InvalidSolution] = (), done: Sequence[int] = ()) -> None:
    """The pin changes (in their waves, with labels) and the invalid files, as the operator confirms them."""
    if settings.json:
        return
    if layout is None:
        for change in roll_plan.changes:
            echo(f"{change.id}: {change.describe()}")
        if roll_plan.unchanged:
            echo(f"already on {roll_plan.version}: {', '.join(roll_plan.unchanged)}")
    else:
        from orbit_ops.fleet.wave_recovery import layout_lines

        for line in layout_lines(roll_plan, layout.waves, done):
            echo(line)
    for entry in invalid:
        echo(f"{entry.id}: invalid, left untouched: {entry.error}")
    for line in roll_plan.preflight.lines():
        echo(line)
    if layout is not None:
        echo(f"each wave: re-pin, provision, wait for health, soak {layout.soak:g} s; a wave with more than "
             f"{layout.max_unhealthy} unhealthy solution(s) fails and the roll halts"
             + (" and pins that wave back" if layout.on_failure == "rollback" else ""))


def run_waved_roll(settings: Settings, workspace: Workspace, roll_plan: RollPlan, layout: WaveSettings,
                concurrency: int, yes: bool, lock_timeout: float, health_timeout: float,
                invalid: Sequence[InvalidSolution] = (), *, done: Sequence[int] = (),
                resumed_from: str | None = None) -> None:
    from orbit_ops.fleet.entries import start_waved_roll
    from orbit_ops.fleet.waved_roll import outcome_lines

    _show_roll(settings, roll_plan, layout, invalid, done)
    confirm(settings, yes, f"roll {roll_plan.component} {roll_plan.version} to {len(roll_plan.changes)} solution(s) "
                           f"in {len(layout.waves)} wave(s)?")
    runner = start_waved_roll(workspace, roll_plan, layout, done=done, resumed_from=resumed_from,
                              concurrency=concurrency, lock_timeout=lock_timeout, health_timeout=health_timeout,
                              invalid=invalid)
    finished = run_operation(runner, quiet=settings.json)
    if not settings.json:
        for line in outcome_lines(finished.result or {}):
            echo(line, err=finished.state != "succeeded")
    finish_sweep(settings.json, finished)


def _resume_roll(settings: Settings, op_id: str, concurrency: int, yes: bool, lock_timeout: float,
                 health_timeout: float) -> None:
    import asyncio

    from orbit_ops.fleet.wave_recovery import plan_resume

    workspace = settings.open()
    earlier, roll_plan = asyncio.run(plan_resume(workspace, op_id))
    run_waved_roll(settings, workspace, roll_plan, earlier.settings, concurrency, yes, lock_timeout, health_timeout,
                done=earlier.done, resumed_from=earlier.record.id)


def run_roll(settings: Settings, workspace: Workspace, roll_plan: RollPlan, no_provision: bool, concurrency: int,
          yes: bool, lock_timeout: float, health_timeout: float, invalid: Sequence[InvalidSolution] = ()) -> None:
    from orbit_ops.fleet.entries import SweepOutcome, start_roll

    _show_roll(settings, roll_plan, None, invalid)
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
    finish_sweep(settings.json, finished, pins_only=no_provision)


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
    import asyncio

    from orbit_ops.fleet.preflight import check_roll
    from orbit_ops.fleet.roll import plan_roll, previous_pin

    refuse_read_only(settings, "rollback")
    workspace, specs, _ = select_solutions(settings, (solution_id,), False)
    before = previous_pin(workspace, solution_id, component, specs[0].pin(component))
    roll_plan = asyncio.run(check_roll(workspace, plan_roll(workspace, component, before, specs, allow_latest=True)))
    run_roll(settings, workspace, roll_plan, no_provision, 8, yes, resolve_lock_timeout(lock_timeout),
          resolve_health_timeout(health_timeout))
