"""The Orbit console: modes, global keys, the command palette, the requests of screens, and the one worker-error
handler.

Screens post requests (``orbit_tui.messages``); the app answers them by opening screens, running flows
(``orbit_tui.flows``) in its workers and asking the console model (``orbit_tui.model``) to read, and owns the
model's interval. The app imports every screen; no screen imports the app.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.worker import Worker, WorkerState

from orbit_ops.build.pipeline import BuildPlan
from orbit_ops.errors import InputError, OrbitError
from orbit_ops.fleet.roll_layouts import is_waved_roll, request_stop
from orbit_ops.operations.liveness import HOST
from orbit_ops.operations.lockstore import current_user
from orbit_ops.operations.runner import OperationRunner
from orbit_ops.team import request_cancel
from orbit_ops.text import visible
from orbit_ops.workspace import Workspace
from orbit_tui import messages
from orbit_tui.commands import OrbitCommands, screen_actions
from orbit_tui.fleet_model import HealthDegraded
from orbit_tui.flows import (
    FlowSteps,
    build_runner,
    pick_roll_flow,
    pick_rollback_flow,
    plan_build_flow,
    plan_provision_flow,
    plan_roll_flow,
    retry_failed_flow,
    show_plan_flow,
)
from orbit_tui.health_render import degraded_notice
from orbit_tui.model import ConsoleModel
from orbit_tui.render import describe_target, display_path, notification_severity, operation_summary
from orbit_tui.runs import ConsoleRun, ConsoleRuns
from orbit_tui.screens.base import OrbitScreen
from orbit_tui.screens.components import ComponentsScreen
from orbit_tui.screens.log import LogScreen
from orbit_tui.screens.modals import QUIT_BACKGROUND, QUIT_CANCEL, HelpScreen, QuitScreen
from orbit_tui.screens.operations import OperationsScreen
from orbit_tui.screens.roll import RollScreen
from orbit_tui.screens.solution import InvalidSolutionScreen, SolutionScreen
from orbit_tui.screens.solutions import SolutionsScreen
from orbit_tui.screens.tags import TagsScreen
from orbit_tui.screens.waves import WavesForm
from orbit_tui.wave_flows import plan_waved_roll_flow, resume_roll_flow, roll_back_wave_flow
from orbit_tui.widgets import ModeBar

Clock = Callable[[], datetime]


class OperationEnded(Message):
    """An operation started by this console finished (or could not start)."""

    def __init__(self, run: ConsoleRun) -> None:
        super().__init__()
        self.run = run


class OrbitApp(App[None]):
    """The console over one :class:`Workspace` (the engine, injected), optionally read-only, with a given clock."""

    CSS_PATH = "orbit.tcss"
    TITLE = "Orbit"
    COMMANDS = App.COMMANDS | {OrbitCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "mode('components')", "Components", show=False, tooltip="Components screen"),
        Binding("2", "mode('solutions')", "Solutions", show=False, tooltip="Solutions screen"),
        Binding("3", "mode('operations')", "Operations", show=False, tooltip="Operations screen"),
        Binding("ctrl+r", "reload", "Reload", show=False, tooltip="Re-read config, solutions, tags and records"),
        Binding("question_mark", "help", "Help", tooltip="Every key of this screen"),
        Binding("q", "quit", "Quit", tooltip="Quit (asks first while operations started here still run)"),
    ]

    def __init__(
        self, workspace: Workspace, *, read_only: bool = False, clock: Clock | None = None, refresh_seconds: float = 2.0
    ) -> None:
        super().__init__()
        self.model = ConsoleModel(
            workspace, self, read_only=read_only, clock=clock or (lambda: datetime.now(UTC)),
            refresh_seconds=refresh_seconds,
        )
        self.workspace = workspace
        self.read_only = read_only
        self._opening: tuple[str, object] | None = None  # a solution asked for before its spec was read, and where
        self.runs.on_finished = lambda run: self.post_message(OperationEnded(run))
        self.steps = FlowSteps(
            workspace, read_only, ask=self.push_screen, run_build=self.run_build, run_operation=self.run_operation,
            plan_roll=lambda ids, component, version, rollback: self.plan_roll(ids, component, version,
                                                                                rollback=rollback),
            plan_waves=lambda ids, component, version, form: self.plan_waves(ids, component, version, form),
        )
        config = workspace.config
        self.sub_title = visible(f"{display_path(config.root)} · {describe_target(config)}") + (
            " · read-only" if read_only else ""
        )  # the folder and orbit.yaml's azure names are text from files, shown with their controls visible
        self.add_mode("components", lambda: ComponentsScreen(self.model))
        self.add_mode("solutions", lambda: SolutionsScreen(self.model))
        self.add_mode("operations", lambda: OperationsScreen(self.model))

    @property
    def runs(self) -> ConsoleRuns:
        return self.model.runs

    def on_mount(self) -> None:
        self.model.fleet.degraded.subscribe(self, self.on_health_degraded)
        self.model.fleet.changed.subscribe(self, self.on_fleet_changed)
        self.switch_mode("components")
        self.set_interval(self.model.refresh_seconds, self._tick)

    def on_health_degraded(self, degraded: HealthDegraded) -> None:
        """Solutions whose health turned degraded since the last read: said loudly, whatever screen is shown."""
        title, message = degraded_notice(degraded.solutions)
        self.notify(message, title=title, severity="error", timeout=15, markup=False)

    def _tick(self) -> None:
        screen = self.screen
        if isinstance(screen, OrbitScreen):
            self.model.tick(screen.SHOWS, screen.shows_key())

    # -- navigation -----------------------------------------------------------------------------------------

    def action_mode(self, mode: str) -> None:
        """Switch to ``mode``; asking for the current one returns to its first screen."""
        if mode == self.current_mode:
            while len(self.screen_stack) > 1:
                self.pop_screen()
            return
        self.model.mode_history.append(self.current_mode)
        self.switch_mode(mode)

    def on_mode_bar_picked(self, message: ModeBar.Picked) -> None:
        self.action_mode(message.mode)

    def on_back_requested(self, _message: messages.BackRequested) -> None:
        """Esc: close the screen on top, or return to the mode used before this one."""
        if len(self.screen_stack) > 1:
            self.pop_screen()
        elif self.model.mode_history:
            self.switch_mode(self.model.mode_history.pop())

    def open_log(self, op_id: str) -> None:
        """The operation's live log; a roll in waves gets the roll view (its waves above its log)."""
        if is_waved_roll(self.workspace, op_id):
            self.push_screen(RollScreen(self.model, op_id))
        else:
            self.push_screen(LogScreen(self.model, op_id))

    def on_log_requested(self, message: messages.LogRequested) -> None:
        self.open_log(message.op_id)

    def on_tags_requested(self, message: messages.TagsRequested) -> None:
        self.push_screen(TagsScreen(self.model, message.component))

    def on_solution_requested(self, message: messages.SolutionRequested) -> None:
        self._opening = None
        fleet = self.model.fleet
        view = fleet.view(message.solution_id)
        if view is None:
            return
        spec = view.whole
        if spec is None:  # the row shows the cache's head of it: opened once its spec is read (a moment, decision 0094)
            self._opening = (message.solution_id, self.screen)
            return
        self.push_screen(SolutionScreen(self.model, view, spec, fleet.statuses.get(view.spec.id)))

    def on_fleet_changed(self, _changed: bool) -> None:
        """A solution asked for while only its head was known opens once the specs have been read, if the screen it
        was asked from is still the one shown (an Esc or another screen meanwhile drops it)."""
        fleet = self.model.fleet
        if self._opening is None or (fleet.heads_only and not fleet.load_error):
            return
        solution_id, asked_from = self._opening
        self._opening = None
        if self.screen is asked_from and not fleet.load_error:
            self.post_message(messages.SolutionRequested(solution_id))

    def on_invalid_solution_requested(self, message: messages.InvalidSolutionRequested) -> None:
        self.push_screen(InvalidSolutionScreen(self.model, message.entry))

    def on_dialog_requested(self, message: messages.DialogRequested) -> None:
        self.push_screen(message.dialog, message.answered)

    def on_read_requested(self, message: messages.ReadRequested) -> None:
        self.model.read(message.what, message.key)

    def action_help(self) -> None:
        title = type(self.screen).__name__.removesuffix("Screen")
        legend = getattr(self.screen, "LEGEND", "")
        self.push_screen(HelpScreen(title, screen_actions(self.screen, include_disabled=True), legend))

    def action_reload(self) -> None:
        self.model.reload()

    # -- operations -----------------------------------------------------------------------------------------

    def on_build_requested(self, message: messages.BuildRequested) -> None:
        self.build_release(message.component, message.version)

    def on_plan_requested(self, message: messages.PlanRequested) -> None:
        self.show_plan(message.ids)

    def on_provision_requested(self, message: messages.ProvisionRequested) -> None:
        self.provision_solutions(message.ids)

    def on_roll_requested(self, message: messages.RollRequested) -> None:
        self.roll_solutions(message.ids)

    def on_roll_back_requested(self, message: messages.RollBackRequested) -> None:
        self.roll_back(message.solution_id)

    def on_retry_requested(self, message: messages.RetryRequested) -> None:
        self.retry_failed(message.op_id)

    @work(exclusive=True, group="build-plan", exit_on_error=False)
    async def build_release(self, component: str, version: str | None) -> None:
        """``b``: plan the build and ask (see :func:`orbit_tui.flows.plan_build_flow`)."""
        await plan_build_flow(self.steps, component, version)

    @work(exclusive=True, group="build", exit_on_error=False)
    async def run_build(self, plan: BuildPlan) -> None:
        """Start a confirmed build, open its live log, and last as long as it runs.

        Exclusive: a second build stops only this worker's waiting for the first; the first build itself runs
        on in its :class:`ConsoleRun`, whose end is still announced.
        """
        await self._follow(self.runs.start(await build_runner(self.workspace, plan)))

    @work(exclusive=True, group="solutions-plan", exit_on_error=False)
    async def show_plan(self, ids: list[str]) -> None:
        """``p`` on Solutions: the plan of ``ids``, shown (see :func:`orbit_tui.flows.show_plan_flow`)."""
        await show_plan_flow(self.steps, ids)

    @work(exclusive=True, group="solutions-plan", exit_on_error=False)
    async def provision_solutions(self, ids: list[str] | None) -> None:
        """``r`` (``ids``) / ``R`` (None, all): plan and ask (see :func:`orbit_tui.flows.plan_provision_flow`)."""
        await plan_provision_flow(self.steps, ids)

    @work(exclusive=True, group="solutions-plan", exit_on_error=False)
    async def roll_solutions(self, ids: list[str]) -> None:
        """``t``: pick a released version to roll (see :func:`orbit_tui.flows.pick_roll_flow`)."""
        await pick_roll_flow(self.steps, ids)

    @work(exclusive=True, group="solutions-plan", exit_on_error=False)
    async def plan_roll(self, ids: list[str], component: str, version: str, *, rollback: bool = False) -> None:
        """Plan the picked roll (or roll back) and ask (see :func:`orbit_tui.flows.plan_roll_flow`)."""
        await plan_roll_flow(self.steps, ids, component, version, rollback=rollback)

    @work(exclusive=True, group="solutions-plan", exit_on_error=False)
    async def plan_waves(self, ids: list[str], component: str, version: str, form: WavesForm | None) -> None:
        """``w`` on the roll pick: ask how, then lay out and ask (see :func:`orbit_tui.wave_flows`)."""
        await plan_waved_roll_flow(self.steps, ids, component, version, form)

    def on_resume_roll_requested(self, message: messages.ResumeRollRequested) -> None:
        self.resume_roll(message.op_id)

    def on_roll_back_wave_requested(self, message: messages.RollBackWaveRequested) -> None:
        self.roll_back_wave(message.op_id)

    def on_stop_after_wave_requested(self, message: messages.StopAfterWaveRequested) -> None:
        self.request_stop(message.op_id, message.what)

    @work(exclusive=True, group="solutions-plan", exit_on_error=False)
    async def resume_roll(self, op_id: str) -> None:
        """``r`` in the roll view (see :func:`orbit_tui.wave_flows.resume_roll_flow`)."""
        await resume_roll_flow(self.steps, op_id)

    @work(exclusive=True, group="solutions-plan", exit_on_error=False)
    async def roll_back_wave(self, op_id: str) -> None:
        """``u`` in the roll view (see :func:`orbit_tui.wave_flows.roll_back_wave_flow`)."""
        await roll_back_wave_flow(self.steps, op_id)

    @work(group="cancel", exit_on_error=False)
    async def request_stop(self, op_id: str, what: str) -> None:
        """Ask waved roll ``op_id`` to stop after its current wave (any process's roll checks between waves)."""
        await asyncio.to_thread(request_stop, self.workspace, op_id)
        self.notify(f"stop requested for {what}: the current wave finishes, no later wave starts",
                    title="Stopping after this wave", markup=False)

    @work(exclusive=True, group="solutions-plan", exit_on_error=False)
    async def roll_back(self, solution_id: str) -> None:
        """``u`` on a solution: pick the app to roll back (see :func:`orbit_tui.flows.pick_rollback_flow`)."""
        await pick_rollback_flow(self.steps, solution_id)

    @work(exclusive=True, group="solutions-plan", exit_on_error=False)
    async def retry_failed(self, op_id: str) -> None:
        """``r`` on an operation: re-provision its failures (see :func:`orbit_tui.flows.retry_failed_flow`)."""
        await retry_failed_flow(self.steps, op_id)

    @work(exclusive=True, group="operation", exit_on_error=False)
    async def run_operation(self, runner: OperationRunner) -> None:
        """Start a confirmed provision, sweep or roll, open its live log, and last as long as it runs.

        Exclusive like :meth:`run_build`: a second operation replaces only this worker's waiting for the first.
        """
        await self._follow(self.runs.start(runner))

    async def _follow(self, run: ConsoleRun) -> None:
        self.open_log(run.op_id)
        await run.wait()  # the log view follows the events from the store; this worker lasts as long as the run

    def on_cancel_requested(self, message: messages.CancelRequested) -> None:
        self.request_cancel(message.op_id, message.what)

    @work(group="cancel", exit_on_error=False)
    async def request_cancel(self, op_id: str, what: str) -> None:
        """Ask the engine to cancel ``op_id`` (any process's operation: its owner stops it and cleans up)."""
        await request_cancel(self.workspace, op_id, by=f"{current_user()} on {HOST}")  # here or on another machine
        self.notify(f"cancel requested for {what}", title="Cancelling", markup=False)

    def on_operation_ended(self, message: OperationEnded) -> None:
        run = message.run
        self.model.reload()
        if run.finished is None:
            self.notify(
                f"{run.kind} {run.target} could not run: {run.error}",
                title="Operation failed",
                severity="error",
                timeout=15,
                markup=False,
            )
            return
        state = run.finished.state
        severity = notification_severity(state)
        self.notify(
            operation_summary(run.kind, run.target, run.op_id, state, run.finished.error),
            title=f"Operation {state}",
            severity=severity,
            timeout=15 if severity == "error" else 6,
            markup=False,
        )

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every toast of the console (screens' and widgets' ``notify`` come here): messages quote errors and
        targets, so their control characters are shown as escapes, never sent to the terminal."""
        super().notify(visible(message, multiline=True), title=visible(title), severity=severity, timeout=timeout,
                       markup=markup)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker errors surface: the engine's message, never a traceback."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        known = isinstance(error, OrbitError)
        message = str(error) if known else f"unexpected {type(error).__name__}: {error}"
        self.notify(message, title="Error", severity="error", timeout=15, markup=False)

    # -- quitting -------------------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        active = self.runs.active()
        if not active:
            self.exit()
            return
        lines = [f"{run.kind} {run.target} · {run.op_id}" for run in active]
        self.push_screen(QuitScreen(lines), self._quit_chosen)

    def _quit_chosen(self, choice: str | None) -> None:
        if choice == QUIT_BACKGROUND:
            self.exit()
        elif choice == QUIT_CANCEL:
            self.cancel_and_quit()

    @work(exclusive=True, group="quit", exit_on_error=False)
    async def cancel_and_quit(self) -> None:
        cancelled = self.runs.cancel_all()
        self.notify(
            f"cancelling {len(cancelled)} operation(s); waiting for their cleanup", title="Quitting", markup=False
        )
        await self.runs.wait()
        self.exit()


REFRESH_ENV = "ORBIT_TUI_REFRESH_SECONDS"


def refresh_seconds_from_env(default: float = 2.0) -> float:
    """The background refresh interval: ``$ORBIT_TUI_REFRESH_SECONDS`` (at least 0.5 s), else ``default``.

    Raises:
        InputError: the variable is set but is not a number of seconds.
    """
    text = os.environ.get(REFRESH_ENV, "").strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        raise InputError(f"{REFRESH_ENV}={text!r} is not a number of seconds (e.g. 5 or 0.5)") from None
    if seconds != seconds or seconds < 0.5:  # NaN or too fast to be useful
        raise InputError(f"{REFRESH_ENV}={text!r}: the refresh interval must be at least 0.5 seconds")
    return seconds


def run(workspace: Workspace, *, read_only: bool = False) -> None:
    """Open the console on ``workspace``; returns when the operator quit and operations left running ended.

    Raises:
        InputError: ``$ORBIT_TUI_REFRESH_SECONDS`` is not a valid interval.
    """
    refresh = refresh_seconds_from_env()

    async def main() -> None:
        app = OrbitApp(workspace, read_only=read_only, refresh_seconds=refresh)
        await app.run_async()
        await app.runs.drain(lambda line: print(visible(line, multiline=True), file=sys.stderr, flush=True))

    asyncio.run(main())
