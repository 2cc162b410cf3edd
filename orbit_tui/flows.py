"""Multi-step console flows (plan → confirm → start → watch), run inside the app's workers.

A flow is a plain coroutine over :class:`FlowSteps` (the workspace, and how to ask the operator and start the
next step), never the app, so the worker that runs it stays one line and the steps read in order. Engine calls
that touch git or files run in a thread; every engine error propagates to the app's one worker-error handler,
which shows its message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from textual.screen import ModalScreen

from orbit_ops.build.pipeline import BuildPlan, plan_build, start_build
from orbit_ops.config.model import SolutionSpec
from orbit_ops.console_queries import plan_after_roll, rollback_choices
from orbit_ops.errors import InputError, NotFoundError, RefusedError
from orbit_ops.fleet.entries import failed_members, plan_sweep, start_roll, start_sweep
from orbit_ops.fleet.preflight import check_roll
from orbit_ops.fleet.roll import plan_roll
from orbit_ops.names import APP_COMPONENTS
from orbit_ops.operations.runner import OperationRunner
from orbit_ops.versions import newest_first
from orbit_ops.workspace import Workspace
from orbit_tui.plan_render import plan_model, roll_lines
from orbit_tui.render import images_to_push, short_commit, timestamp
from orbit_tui.screens.modals import ChoiceScreen, ConfirmScreen, PlanScreen
from orbit_tui.screens.waves import IN_WAVES, RollPickScreen, WavesForm

Answered = Callable[[Any], None]


@dataclass(frozen=True)
class FlowSteps:
    """What a flow may do besides reading the workspace: ask the operator, and start the step a yes leads to."""

    workspace: Workspace
    read_only: bool
    ask: Callable[[ModalScreen[Any], Answered | None], object]  # show a question (or a plan) and take its answer
    run_build: Callable[[BuildPlan], object]  # start a confirmed build
    run_operation: Callable[[OperationRunner], object]  # start a confirmed provision, sweep or roll
    plan_roll: Callable[[list[str], str, str, bool], object]  # plan a picked roll (ids, component, version, rollback)
    # plan a roll in waves (ids, component, version, the waves form: None asks for it)
    plan_waves: Callable[[list[str], str, str, WavesForm | None], object]


def build_confirmation(plan: BuildPlan, registry: str) -> ConfirmScreen:
    """The question asked before a build: tag, commit, images to push, and whether it is already released."""
    tag = plan.tag
    lines: list[str | tuple[str, str]] = [
        ("tag", f"{tag.tag}  ({'annotated' if tag.annotated else 'lightweight'}, {tag.date[:10]})"),
        ("commit", tag.commit),
        ("pushes", "\n".join(images_to_push(registry, plan.component.name, tag.version))),
        ("context", f"{plan.component.context}  (Dockerfile {plan.component.dockerfile})"),
    ]
    existing = plan.existing
    if existing is None:
        return ConfirmScreen(f"Build {tag.tag}?", lines, confirm="Build", dismiss="Cancel", id="confirm-build")
    warning = (
        f"{tag.tag} is already released from commit {short_commit(existing.commit)} on "
        f"{timestamp(existing.built_at)} ({existing.digest}). Nothing needs building; a forced rebuild pushes "
        "the images again and appends a new release record."
    )
    return ConfirmScreen(
        f"{tag.tag} is already released",
        lines,
        confirm="Force rebuild",
        dismiss="Close",
        warning=warning,
        focus_confirm=False,
        id="confirm-build",
    )


async def plan_build_flow(steps: FlowSteps, component: str, version: str | None) -> None:
    """Plan the build of ``component`` ``version`` (None: newest stable) and ask; a yes runs it (``run_build``).

    No worker waits on the operator: the question's answer arrives as a callback.

    Raises:
        RefusedError: the console is read-only, or the tag moved since it was released.
        NotFoundError: unknown component or tag.
    """
    if steps.read_only:
        raise RefusedError("the console is read-only: builds are not offered")
    workspace = steps.workspace
    plan = await asyncio.to_thread(plan_build, workspace, component, version)
    registry = await asyncio.to_thread(lambda: workspace.target().registry)

    def answered(confirmed: bool | None) -> None:
        if confirmed:
            steps.run_build(plan)

    steps.ask(build_confirmation(plan, registry), answered)


async def build_runner(workspace: Workspace, plan: BuildPlan) -> OperationRunner:
    """The operation of the confirmed build (a forced rebuild when the operator confirmed one of a released tag).

    Raises:
        RefusedError: the tag moved since the question was asked.
    """
    if plan.action == "already-released":  # the operator asked for the forced rebuild explicitly
        plan = await asyncio.to_thread(lambda: plan_build(workspace, plan.component.name, plan.tag.version, force=True))
    return start_build(workspace, plan)


# --- provisioning: plan, re-provision, sweep, roll ---------------------------------------------------------


def _specs(steps: FlowSteps, ids: Sequence[str] | None) -> list[SolutionSpec]:
    """The solutions named by ``ids`` (None: every solution), in the workspace's order."""
    specs = steps.workspace.solutions()
    if ids is None:
        return list(specs)
    wanted = set(ids)
    for entry in steps.workspace.invalid_solutions():
        if entry.id in wanted:
            raise entry.error  # named explicitly, as `orbit provision ID` does: refused, nothing written
    chosen = [spec for spec in specs if spec.id in wanted]
    if not chosen:
        raise InputError("no solutions selected")
    return chosen


def _refuse_read_only(steps: FlowSteps, what: str) -> None:
    if steps.read_only:
        raise RefusedError(f"the console is read-only: {what} is not offered")


async def show_plan_flow(steps: FlowSteps, ids: Sequence[str]) -> None:
    """``p``: what provisioning ``ids`` would create and update, field by field; writes nothing."""
    workspace = steps.workspace
    specs = await asyncio.to_thread(_specs, steps, ids)
    planned = await plan_sweep(workspace, specs, skip_unreleased=True)
    model = plan_model(planned.solutions, planned.preflight)
    steps.ask(PlanScreen(f"Plan: {planned.target}", model, summary=model.totals, id="plan"), None)


async def plan_provision_flow(steps: FlowSteps, ids: Sequence[str] | None, *, retrying: str | None = None) -> None:
    """``r`` (``ids``) or ``R`` (None: a sweep of all): plan, then ask with the plan; a yes starts the operation.

    ``retrying`` names the operation whose failures ``ids`` are (``orbit provision --failed-from``).

    Raises:
        RefusedError: read-only, or a named solution pins an unreleased version (as ``orbit provision`` refuses).
    """
    _refuse_read_only(steps, "provisioning")
    workspace = steps.workspace
    everything = ids is None
    specs = await asyncio.to_thread(_specs, steps, ids)
    invalid = workspace.invalid_solutions() if everything else []
    confirmed = await plan_sweep(workspace, specs, invalid, everything=everything)
    model = plan_model(confirmed.solutions, confirmed.preflight)
    writes = sum(len(block.entries) for block in model.blocks)
    target = confirmed.target
    verb = "Sweep" if confirmed.kind == "sweep" else "Provision"
    untouched = f"; {len(invalid)} invalid file(s) left untouched" if invalid else ""
    if retrying:
        verb = f"Retry the failures of {retrying}: {verb.lower()}"

    def answered(answer: bool | str | None) -> None:
        if answer:
            steps.run_operation(start_sweep(workspace, confirmed))

    steps.ask(
        PlanScreen(
            f"{verb} {target}? ({writes} change(s){untouched})",
            model,
            summary=model.totals,
            confirm="Retry" if retrying else verb,
            id="confirm-provision",
        ),
        answered,
    )


async def retry_failed_flow(steps: FlowSteps, op_id: str) -> None:
    """``r`` on an operation: re-provision only the solutions that failed in it (``--failed-from``), asked first.

    Raises:
        RefusedError: read-only, the operation still runs, or nothing in it failed.
        NotFoundError: no such operation.
    """
    _refuse_read_only(steps, "retrying")
    record = await asyncio.to_thread(steps.workspace.operations().get, op_id)
    if not record.finished:
        raise RefusedError(f"{record.kind} {record.target} is still {record.state}: retry its failures once it ended")
    retry = list(failed_members(record))
    if not retry:
        raise RefusedError(f"operation {record.id} has no failed solutions; nothing to retry")
    known = {spec.id for spec in await asyncio.to_thread(steps.workspace.solutions)}
    gone = [solution for solution in retry if solution not in known]
    if gone:
        raise NotFoundError(f"failed in {record.id} but no longer in the workspace: {', '.join(gone)}")
    await plan_provision_flow(steps, retry, retrying=record.id)


def released_choices(steps: FlowSteps, ids: Sequence[str] = ()) -> list[tuple[str, str]]:
    """Every released version of each app component, newest first: ("component@version", label).

    The label says which version is the newest release and how many of the solutions ``ids`` it would change.
    """
    records = steps.workspace.records()
    releases = steps.workspace.release_index()
    specs = _specs(steps, ids) if ids else []
    choices = []
    for component in APP_COMPONENTS:
        versions = list(dict.fromkeys(newest_first(record.version for record in records.get(component, []))))
        newest = releases.latest(component)
        for version in versions:
            changes = sum(1 for spec in specs if spec.pin(component) != version)
            notes = ["newest release"] if version == newest else []
            if specs:
                notes.append(f"changes {changes} of {len(specs)}" if changes else f"all {len(specs)} already on it")
            choices.append((f"{component}@{version}", f"{component:<6} {version:<12} {'  ·  '.join(notes)}".rstrip()))
    return choices


async def pick_roll_flow(steps: FlowSteps, ids: Sequence[str]) -> None:
    """``t``: pick a released component version to roll to ``ids``; the pick plans it (:func:`plan_roll_flow`)."""
    _refuse_read_only(steps, "rolling")
    await asyncio.to_thread(_specs, steps, ids)  # refuse an empty selection before asking
    choices = await asyncio.to_thread(released_choices, steps, ids)
    if not choices:
        raise RefusedError("nothing is released yet: there is no version to roll")

    def picked(choice: str | None) -> None:
        if choice and choice.startswith(IN_WAVES):
            component, _, version = choice.removeprefix(IN_WAVES).partition("@")
            steps.plan_waves(list(ids), component, version, None)
        elif choice:
            component, _, version = choice.partition("@")
            steps.plan_roll(list(ids), component, version, False)

    note = (f"to {len(ids)} solution(s); only released versions are offered. Enter picks; the next step shows the "
            "plan. w: roll it in waves (canary first, health-gated).")
    steps.ask(RollPickScreen("Roll which version?", choices, note=note, id="pick-roll"), picked)


PINS_ONLY = "pins-only"


def verb_summary(rollback: bool) -> str:
    return "Roll back" if rollback else "Roll"


async def plan_roll_flow(
    steps: FlowSteps, ids: Sequence[str], component: str, version: str, *, rollback: bool = False
) -> None:
    """Plan the roll (which solutions change from what to what) and ask; a yes starts the ``roll`` operation.

    The question offers three answers: roll (pins, then one sweep), pins only (``--no-provision``), cancel.
    ``rollback`` (``u``, ``orbit rollback``) may restore a floating ``latest`` pin.

    Raises:
        RefusedError: read-only, or the version has no release record.
    """
    _refuse_read_only(steps, "rolling")
    workspace = steps.workspace
    specs = await asyncio.to_thread(_specs, steps, ids)
    plan = await asyncio.to_thread(lambda: plan_roll(workspace, component, version, specs, allow_latest=rollback))
    plan = await check_roll(workspace, plan)  # the solutions its new version would leave lacking a variable
    lines = roll_lines(((c.id, c.component, c.before_text, c.after_text) for c in plan.changes), plan.unchanged,
                       plan.version)
    model = plan_model(await plan_after_roll(workspace, plan), plan.preflight)  # what the sweep after the pins does

    def answered(answer: bool | str | None) -> None:
        if answer:
            steps.run_operation(start_roll(workspace, plan, provision=answer is True))

    count = len(plan.changes) + len(plan.unchanged)
    summary = (
        f"{model.totals}. {verb_summary(rollback)}: {len(plan.changes)} pin(s) rewritten, then the {count} "
        "solution(s) provisioned as one sweep. Pins only: the pins are rewritten and nothing is provisioned "
        "(orbit roll --no-provision)."
    )
    verb = "Roll back" if rollback else "Roll"
    steps.ask(
        PlanScreen(
            f"{verb} {component} {version}?" if not rollback else f"{verb} {component} of {ids[0]} to {version}?",
            model,
            intro=lines,
            summary=summary,
            confirm=verb,
            alternative=(PINS_ONLY, "Pins only"),
            id="confirm-roll",
        ),
        answered,
    )


async def pick_rollback_flow(steps: FlowSteps, solution_id: str) -> None:
    """``u`` on a solution: pick the app whose pin goes back to what it was before its last roll.

    Apps with no roll in the history are listed with the reason, not offered. The pick plans the roll back
    (:func:`plan_roll_flow`), asked with the same question as any roll.

    Raises:
        RefusedError: read-only, or no app of the solution was ever rolled.
    """
    _refuse_read_only(steps, "rolling back")
    choices = await asyncio.to_thread(rollback_choices, steps.workspace, solution_id)
    if not any(choice.previous for choice in choices):
        raise RefusedError(
            f"no roll in the operation history changed a pin of {solution_id}: nothing to roll back "
            "(roll the version you want with t)"
        )
    offered = [
        (
            f"{choice.component}@{choice.previous}" if choice.previous else choice.component,
            f"{choice.component:<6} {choice.current} → {choice.previous}"
            if choice.previous
            else f"{choice.component:<6} {choice.current}  (no roll set this pin)",
        )
        for choice in choices
    ]
    disabled = [choice.component for choice in choices if not choice.previous]

    def picked(choice: str | None) -> None:
        if choice:
            component, _, version = choice.partition("@")
            steps.plan_roll([solution_id], component, version, True)

    note = "Each app goes back to the pin it had before the roll that set its current one."
    steps.ask(
        ChoiceScreen(
            f"Roll back which app of {solution_id}?", offered, note=note, id="pick-rollback", disabled=disabled
        ),
        picked,
    )
