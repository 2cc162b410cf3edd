"""Multi-step console flows (plan → confirm → start → watch), run inside the app's workers.

A flow is a plain coroutine over the app, so the worker that runs it stays one line and the steps read in
order. Engine calls that touch git or files run in a thread; every engine error propagates to the app's one
worker-error handler, which shows its message.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from orbit_ops.builds import BuildPlan, plan_build, start_build
from orbit_ops.errors import RefusedError
from orbit_tui.render import images_to_push, short_commit, timestamp
from orbit_tui.screens.modals import ConfirmScreen

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
