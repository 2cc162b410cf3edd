"""The view of a roll in waves (issue 15), streamed from the store like any log (any process's roll): each wave's
state and soak countdown, each solution's state and health as it arrives, the halt and its reason; ``c`` stops
the roll after the current wave, ``r`` resumes a halted roll, ``u`` rolls its failed wave back."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Label

from orbit_ops.errors import OrbitError
from orbit_ops.fleet.roll_layouts import SavedLayout, saved_layout, stop_requested
from orbit_ops.fleet.waves import Wave, is_wave_child, wave_child
from orbit_ops.operations.events import ChildChanged, Event
from orbit_ops.operations.kinds import ACTIVE_STATES
from orbit_tui.messages import DialogRequested, ResumeRollRequested, RollBackWaveRequested, StopAfterWaveRequested
from orbit_tui.model import ConsoleModel
from orbit_tui.render import Cell
from orbit_tui.roll_render import SOLUTION_COLUMNS, WAVE_COLUMNS, halt_text, solution_row, wave_row
from orbit_tui.screens.log import LogScreen
from orbit_tui.screens.modals import ConfirmScreen
from orbit_tui.widgets import StateTable


class RollScreen(LogScreen):
    """A waved roll's operation: its waves (from the layout it saved, ``.orbit/rolls/<op>.json``) and its members
    as the engine reports them; the log below."""

    MUTATING = frozenset({"cancel", "stop_after_wave", "resume", "roll_back_wave"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "stop_after_wave", "Stop after wave",
                tooltip="Let the current wave finish (with its soak) and start no later one (asks first)"),
        Binding("C", "cancel", "Cancel now", tooltip="Cancel the roll now, mid-wave (asks first)"),
        Binding("r", "resume", "Resume", tooltip="Continue from the first wave that did not succeed (asks first)"),
        Binding("u", "roll_back_wave", "Roll back wave",
                tooltip="Pin the failed wave's solutions back where each was and provision them (asks first)"),
    ]

    def __init__(self, model: ConsoleModel, op_id: str, roll_layout: SavedLayout | None = None) -> None:
        super().__init__(model, op_id)
        self.roll_layout = roll_layout
        self.messages: dict[str, str] = {}
        self.labels: dict[str, dict[str, str]] = {}
        self.stop_asked = False

    def compose_body(self) -> ComposeResult:
        yield from self.compose_header()
        waves = StateTable(WAVE_COLUMNS, id="waves", openable=False)
        waves.show_cursor = False
        yield waves
        yield Label("", id="roll-halt", markup=False)
        children = StateTable(SOLUTION_COLUMNS, id="children", openable=False)
        children.show_cursor = False
        yield children
        yield from self.compose_log()

    def on_mount(self) -> None:
        if self.roll_layout is None:
            try:
                self.roll_layout = saved_layout(self.workspace, self.op_id)
            except OrbitError as exc:
                self.notify(str(exc), title="Roll view", severity="error", markup=False)
        self.labels = {spec.id: dict(spec.labels) for spec in self.workspace.solutions()}
        for wave in self.waves:
            self.query_one("#waves", StateTable).upsert_row(wave_child(wave.index), self._wave_cells(wave))
            for solution_id in wave.solutions:
                self._solution(solution_id, "queued", "")
        self.set_interval(1.0, self._tick)
        super().on_mount()

    @property
    def waves(self) -> tuple[Wave, ...]:
        return self.roll_layout.settings.waves if self.roll_layout else ()

    def _wave_of(self, solution_id: str) -> int | None:
        return next((wave.index for wave in self.waves if solution_id in wave.solutions), None)

    def _wave_cells(self, wave: Wave) -> tuple[Cell, ...]:
        name = wave_child(wave.index)
        return wave_row(wave, self.members.get(name, "queued"), self.messages.get(name, ""), self.model.clock())

    def _solution(self, solution_id: str, state: str, message: str) -> None:
        table = self.query_one("#children", StateTable)
        table.display = True
        table.upsert_row(solution_id, solution_row(solution_id, self._wave_of(solution_id),
                                                   self.labels.get(solution_id, {}), state, message))

    def apply(self, event: Event) -> None:
        if not isinstance(event, ChildChanged):
            super().apply(event)
            return
        self._header_stale = True
        self.members[event.child] = event.state
        self.messages[event.child] = event.message
        if is_wave_child(event.child):
            wave = next((wave for wave in self.waves if wave_child(wave.index) == event.child), None)
            if wave is not None:
                self.query_one("#waves", StateTable).upsert_row(event.child, self._wave_cells(wave))
        else:
            self._solution(event.child, event.state, event.message)

    def _tick(self) -> None:
        """Redraw the soaking waves' countdown (the deadline is the engine's; the clock the console's)."""
        for wave in self.waves:
            name = wave_child(wave.index)
            if self.members.get(name) == "running" and "soaking until" in self.messages.get(name, ""):
                self.query_one("#waves", StateTable).upsert_row(name, self._wave_cells(wave))

    def _show_header(self) -> None:
        super()._show_header()
        if self.state in ACTIVE_STATES and not self.stop_asked:
            self.stop_asked = stop_requested(self.workspace, self.op_id)  # by this console or another process
        halt = halt_text(self.state, self.error, self.members, self.messages, self.waves, self.stop_asked)
        label = self.query_one("#roll-halt", Label)
        label.update(halt)
        label.display = bool(halt)

    # -- actions --------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = super().check_action(action, parameters)
        if not allowed:
            return allowed
        if action == "stop_after_wave":
            return self.state in ACTIVE_STATES and not self.stop_asked
        if action == "resume":
            return self.state not in ACTIVE_STATES and self.state != "succeeded"
        if action == "roll_back_wave":
            return self.state not in ACTIVE_STATES and any(
                self.members.get(wave_child(wave.index)) == "failed" for wave in self.waves)
        if action == "retry_failed":
            return False  # a waved roll resumes (r) instead: its waves, not a flat retry
        return allowed

    def action_stop_after_wave(self) -> None:
        running = next((wave.index for wave in self.waves if self.members.get(wave_child(wave.index)) == "running"),
                       None)
        question = ConfirmScreen(
            f"Stop {self.kind} {self.target} after {'wave ' + str(running) if running else 'the current wave'}?",
            [("operation", self.op_id), ("state", self.state),
             "The current wave finishes, its soak included; no later wave starts and their solutions end skipped. "
             "The roll ends cancelled; r (or orbit roll --resume) continues it later."],
            confirm="Stop after this wave",
            dismiss="Keep rolling",
            id="confirm-stop",
        )
        self.post_message(DialogRequested(question, self._stop))

    def _stop(self, confirmed: bool | None) -> None:
        if confirmed:
            self.stop_asked = True
            self.post_message(StopAfterWaveRequested(self.op_id, f"{self.kind} {self.target}"))
            self._show_header()

    def action_resume(self) -> None:
        self.post_message(ResumeRollRequested(self.op_id))

    def action_roll_back_wave(self) -> None:
        self.post_message(RollBackWaveRequested(self.op_id))
