"""Multi-step console flows (plan → confirm → start → watch), run inside the app's workers.

A flow is a plain coroutine over the app, so the worker that runs it stays one line and the steps read in
order. Engine calls that touch git or files run in a thread; every engine error propagates to the app's one
worker-error handler, which shows its message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from orbit_ops.builds import BuildPlan, plan_build, start_build
from orbit_ops.config import SolutionSpec
from orbit_ops.errors import InputError, RefusedError
from orbit_ops.names import APP_COMPONENTS
from orbit_ops.operations import OperationRunner
from orbit_ops.roll import plan_roll, roll_body
from orbit_ops.sweeps import PlannedSolution, plan_many, refuse_unreleased, sweep_body
from orbit_ops.versions import newest_first
from orbit_tui.render import images_to_push, plan_lines, roll_lines, short_commit, timestamp
from orbit_tui.screens.modals import ChoiceScreen, ConfirmScreen, PlanScreen

if TYPE_CHECKING:
    from orbit_tui.app import OrbitApp


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


async def plan_build_flow(app: OrbitApp, component: str, version: str | None) -> None:
    """Plan the build of ``component`` ``version`` (None: newest stable) and ask; a yes starts :func:`build_flow`.

    No worker waits on the operator: the question's answer arrives as a callback.

    Raises:
        RefusedError: the console is read-only, or the tag moved since it was released.
        NotFoundError: unknown component or tag.
    """
    if app.read_only:
        raise RefusedError("the console is read-only: builds are not offered")
    workspace = app.workspace
    plan = await asyncio.to_thread(plan_build, workspace, component, version)
    registry = await asyncio.to_thread(lambda: workspace.target().registry)

    def answered(confirmed: bool | None) -> None:
        if confirmed:
            app.run_build(plan)

    app.push_screen(build_confirmation(plan, registry), answered)


async def build_flow(app: OrbitApp, plan: BuildPlan) -> None:
    """Start the confirmed build, open its live log, and last as long as it runs.

    Raises:
        RefusedError: the tag moved since the question was asked.
        OrbitError: the operation could not be recorded or started.
    """
    workspace = app.workspace
    if plan.action == "already-released":  # the operator asked for the forced rebuild explicitly
        plan = await asyncio.to_thread(lambda: plan_build(workspace, plan.component.name, plan.tag.version, force=True))
    run = app.runs.start(start_build(workspace, plan))
    app.open_log(run.op_id)
    async for _event in run.events():
        pass  # the log view renders the stream from the store; this worker lasts as long as the build


# --- provisioning: plan, re-provision, sweep, roll ---------------------------------------------------------


def _specs(app: OrbitApp, ids: Sequence[str] | None) -> list[SolutionSpec]:
    """The solutions named by ``ids`` (None: every solution), in the workspace's order."""
    specs = app.workspace.solutions()
    if ids is None:
        return list(specs)
    wanted = set(ids)
    chosen = [spec for spec in specs if spec.id in wanted]
    if not chosen:
        raise InputError("no solutions selected")
    return chosen


def _refuse_read_only(app: OrbitApp, what: str) -> None:
    if app.read_only:
        raise RefusedError(f"the console is read-only: {what} is not offered")


def _plan_summary(planned: Sequence[PlannedSolution]) -> tuple[int, str]:
    writes = sum(plan.writes for _, plan, _ in planned if plan)
    return writes, plan_lines(planned)[-1]


async def show_plan_flow(app: OrbitApp, ids: Sequence[str]) -> None:
    """``p``: what provisioning ``ids`` would create and update, field by field; writes nothing."""
    workspace = app.workspace
    specs = await asyncio.to_thread(_specs, app, ids)
    planned = await plan_many(workspace, specs)
    lines = plan_lines(planned)
    app.push_screen(PlanScreen(f"Plan: {_target(specs, everything=False)}", lines[:-1], summary=lines[-1], id="plan"))


def _target(specs: Sequence[SolutionSpec], *, everything: bool) -> str:
    if everything:
        return "all solutions"
    return specs[0].id if len(specs) == 1 else f"{len(specs)} solutions"


async def plan_provision_flow(app: OrbitApp, ids: Sequence[str] | None) -> None:
    """``r`` (``ids``) or ``R`` (None: a sweep of all): plan, then ask with the plan; a yes starts the operation.

    Raises:
        RefusedError: read-only, or a named solution pins an unreleased version (as ``orbit provision`` refuses).
    """
    _refuse_read_only(app, "provisioning")
    workspace = app.workspace
    everything = ids is None
    specs = await asyncio.to_thread(_specs, app, ids)
    if not everything:
        await asyncio.to_thread(refuse_unreleased, workspace, specs)
    planned = await plan_many(workspace, specs)
    lines = plan_lines(planned)
    writes, _ = _plan_summary(planned)
    kind = "sweep" if everything or len(specs) > 1 else "provision"
    target = _target(specs, everything=everything)
    verb = "Sweep" if kind == "sweep" else "Provision"

    def answered(confirmed: bool | None) -> None:
        if not confirmed:
            return

        async def body(ctx: Any) -> dict[str, Any]:
            return await sweep_body(workspace, specs, ctx)

        app.run_operation(OperationRunner(workspace.operations(), kind, target, body, total=len(specs)))

    app.push_screen(
        PlanScreen(
            f"{verb} {target}? ({writes} change(s))",
            lines[:-1],
            summary=lines[-1],
            confirm=verb,
            id="confirm-provision",
        ),
        answered,
    )


def released_choices(app: OrbitApp) -> list[tuple[str, str]]:
    """Every released version of each app component, newest first: ("component@version", label)."""
    records = app.workspace.records()
    choices = []
    for component in APP_COMPONENTS:
        versions = dict.fromkeys(newest_first(record.version for record in records.get(component, [])))
        choices += [(f"{component}@{version}", f"{component}  {version}") for version in versions]
    return choices


async def pick_roll_flow(app: OrbitApp, ids: Sequence[str]) -> None:
    """``t``: pick a released component version to roll to ``ids``; the pick plans it (:func:`plan_roll_flow`)."""
    _refuse_read_only(app, "rolling")
    await asyncio.to_thread(_specs, app, ids)  # refuse an empty selection before asking
    choices = await asyncio.to_thread(released_choices, app)
    if not choices:
        raise RefusedError("nothing is released yet: there is no version to roll")

    def picked(choice: str | None) -> None:
        if choice:
            component, _, version = choice.partition("@")
            app.plan_roll(list(ids), component, version)

    note = f"to {len(ids)} solution(s); only released versions are offered"
    app.push_screen(ChoiceScreen("Roll which version?", choices, note=note, id="pick-roll"), picked)


async def plan_roll_flow(app: OrbitApp, ids: Sequence[str], component: str, version: str) -> None:
    """Plan the roll (which solutions change from what to what) and ask; a yes starts the ``roll`` operation.

    Raises:
        RefusedError: read-only, or the version has no release record.
    """
    _refuse_read_only(app, "rolling")
    workspace = app.workspace
    specs = await asyncio.to_thread(_specs, app, ids)
    plan = await asyncio.to_thread(plan_roll, workspace, component, version, specs)
    lines = roll_lines(
        ((c.id, c.component, c.before, c.after) for c in plan.changes), plan.unchanged, plan.version
    )

    def answered(confirmed: bool | None) -> None:
        if not confirmed:
            return

        async def body(ctx: Any) -> dict[str, Any]:
            return await roll_body(workspace, plan, ctx)

        total = len(plan.changes) + len(plan.unchanged)
        app.run_operation(OperationRunner(workspace.operations(), "roll", plan.target, body, total=total))

    summary = (
        f"{len(plan.changes)} pin(s) rewritten, then the {len(plan.changes) + len(plan.unchanged)} solution(s) "
        "provisioned as one sweep"
    )
    app.push_screen(
        PlanScreen(f"Roll {component} {version}?", lines, summary=summary, confirm="Roll", id="confirm-roll"),
        answered,
    )


async def operation_flow(app: OrbitApp, runner: OperationRunner) -> None:
    """Start a confirmed operation, open its live log, and last as long as it runs (as :func:`build_flow`)."""
    run = app.runs.start(runner)
    app.open_log(run.op_id)
    async for _event in run.events():
        pass
