"""The console's flows of a roll in waves (issue 15): ask how, confirm the layout, resume, roll a failed wave back.

Like ``orbit_tui.flows``: plain coroutines over :class:`orbit_tui.flows.FlowSteps`; what the operator confirms
(the roll plan and its layout, the resume, the roll back) is the object the started operation applies.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from orbit_ops.config.model import SolutionSpec
from orbit_ops.console_queries import plan_after_roll
from orbit_ops.errors import InputError
from orbit_ops.fleet.entries import start_waved_roll
from orbit_ops.fleet.preflight import check_roll
from orbit_ops.fleet.roll import plan_roll
from orbit_ops.fleet.wave_recovery import layout_lines, plan_resume, plan_wave_rollback, start_wave_rollback
from orbit_ops.fleet.waves import WaveSettings, check_settings, lay_out, parse_duration, parse_waves
from orbit_tui.flows import FlowSteps, _refuse_read_only, _specs
from orbit_tui.plan_render import plan_model
from orbit_tui.screens.modals import PlanScreen
from orbit_tui.screens.waves import WavesForm, WavesScreen

RINGED_WAVES = "ring=canary,ring=early,*"
SIZED_WAVES = "1,25%,*"


def default_form(labels: Sequence[dict[str, str]]) -> WavesForm:
    """The waves first offered: the rings when the selection carries ``ring=canary``, else sizes."""
    rings = {solution_labels.get("ring") for solution_labels in labels}
    if "canary" in rings:
        return WavesForm(RINGED_WAVES if "early" in rings else "ring=canary,*")
    return WavesForm(SIZED_WAVES)


def ask_waves(steps: FlowSteps, ids: Sequence[str], component: str, version: str, form: WavesForm) -> None:
    """Show the waves form; its answer plans the waved roll (``steps.plan_waves``)."""

    def answered(answer: WavesForm | None) -> None:
        if answer is not None:
            steps.plan_waves(list(ids), component, version, answer)

    steps.ask(WavesScreen(f"Roll {component} {version} to {len(ids)} solution(s) in waves", form), answered)


def settings_of(form: WavesForm, specs: Sequence[SolutionSpec]) -> WaveSettings:
    """The form as the engine takes it (the CLI's ``--waves``, ``--soak``, ``--on-failure``, ``--max-unhealthy``).

    Raises:
        InputError: a field the engine refuses, with its message.
    """
    try:
        allowed = int(form.max_unhealthy or "0")
    except ValueError:
        raise InputError(f"--max-unhealthy {form.max_unhealthy!r} is not a number of solutions") from None
    seconds = parse_duration(form.soak or "0")
    on_failure = check_settings(seconds, form.on_failure or "halt", allowed)
    return WaveSettings(lay_out(specs, parse_waves(form.waves)), seconds, on_failure, allowed)


def settings_sentence(settings: WaveSettings) -> str:
    return (f"Each wave: re-pin, provision, wait for health, soak {settings.soak:g} s; a wave with more than "
            f"{settings.max_unhealthy} unhealthy solution(s) fails and the roll halts"
            + (" and pins that wave back." if settings.on_failure == "rollback" else ".")
            + " In the roll view, c stops it after the current wave.")


async def plan_waved_roll_flow(steps: FlowSteps, ids: Sequence[str], component: str, version: str,
                               form: WavesForm | None) -> None:
    """Lay the selection out in the form's waves and ask with the layout (each wave's solutions, their labels) and
    the plan; a refused form comes back with the engine's message; a yes starts the waved roll. With no form
    yet (``w`` on the version pick), ask for one, offering :func:`default_form`.

    Raises:
        RefusedError: read-only, or the version has no release record.
    """
    _refuse_read_only(steps, "rolling")
    workspace = steps.workspace
    specs = await asyncio.to_thread(_specs, steps, ids)
    if form is None:
        ask_waves(steps, ids, component, version, default_form([spec.labels for spec in specs]))
        return
    try:
        settings = settings_of(form, specs)
    except InputError as exc:
        ask_waves(steps, ids, component, version, dataclasses.replace(form, error=str(exc)))
        return
    plan = await asyncio.to_thread(plan_roll, workspace, component, version, specs)
    plan = await check_roll(workspace, plan)
    model = plan_model(await plan_after_roll(workspace, plan), plan.preflight)

    def answered(answer: bool | str | None) -> None:
        if answer:
            steps.run_operation(start_waved_roll(workspace, plan, settings))

    count = len(settings.waves)
    steps.ask(
        PlanScreen(
            f"Roll {component} {version} in {count} wave{'s' if count != 1 else ''}?",
            model,
            intro=layout_lines(plan, settings.waves),
            summary=f"{model.totals}. {settings_sentence(settings)}",
            confirm="Roll in waves",
            id="confirm-waves",
        ),
        answered,
    )


async def resume_roll_flow(steps: FlowSteps, op_id: str) -> None:
    """``r`` in the roll view: continue the roll from its first wave that did not succeed (``orbit roll --resume``),
    asked with the remaining layout first.

    Raises:
        RefusedError: read-only.
        InputError: it still runs, every wave succeeded, it was resumed already, or a solution is gone.
    """
    _refuse_read_only(steps, "resuming")
    workspace = steps.workspace
    earlier, plan = await plan_resume(workspace, op_id)
    remaining = [wave for wave in earlier.settings.waves if wave.index not in earlier.done]

    def answered(answer: bool | str | None) -> None:
        if answer:
            steps.run_operation(start_waved_roll(workspace, plan, earlier.settings, done=earlier.done,
                                                 resumed_from=earlier.record.id))

    steps.ask(
        PlanScreen(
            f"Resume {earlier.record.id}: {plan.component} {plan.version}, from wave {remaining[0].index}?",
            [*plan.preflight.lines(), *layout_lines(plan, earlier.settings.waves, earlier.done)],
            summary=f"Waves that succeeded are not run again. {settings_sentence(earlier.settings)}",
            confirm="Resume",
            id="confirm-resume",
        ),
        answered,
    )


async def roll_back_wave_flow(steps: FlowSteps, op_id: str) -> None:
    """``u`` in the roll view: pin the failed wave's solutions back to where each was and provision them, asked
    first with each pin change.

    Raises:
        RefusedError: read-only, still running, no failed wave, or nothing of it left to roll back.
    """
    _refuse_read_only(steps, "rolling back")
    workspace = steps.workspace
    back = await plan_wave_rollback(workspace, op_id)
    width = max(len(change.id) for change in back.changes)
    lines = [*(line for plan in back.plans for line in plan.preflight.lines()),
             *(f"{change.id:<{width}}  {change.component}  {change.before_text} → {change.after_text}"
               for change in back.changes)]

    def answered(answer: bool | str | None) -> None:
        if answer:
            steps.run_operation(start_wave_rollback(workspace, back))

    steps.ask(
        PlanScreen(
            f"Roll back wave {back.wave.index} ({back.wave.selector}) of {back.record.id}?",
            lines,
            summary=f"{len(back.changes)} pin(s) go back to the version each had; those solutions are then "
                    "provisioned. Later waves were never started and stay as they are.",
            confirm="Roll back",
            id="confirm-rollback-wave",
        ),
        answered,
    )
