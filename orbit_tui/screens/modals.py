"""Small modal screens: a yes/no confirmation, a plan to read (or confirm), a choice, the quit question, a path
prompt and the key help."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from orbit_ops.text import visible
from orbit_tui.commands import ActionEntry
from orbit_tui.plan_render import PlanModel
from orbit_tui.widgets import PlanView

# Esc and n dismiss, y confirms: every question of the console answers to the same keys.
_ANSWER_BINDINGS: list[BindingType] = [
    Binding("escape", "answer(False)", "Close"),
    Binding("y", "answer(True)", "Yes", show=False),
    Binding("n", "answer(False)", "No", show=False),
]


class ConfirmScreen(ModalScreen[bool]):
    """Asks before something happens: True when confirmed, False when dismissed."""

    BINDINGS: ClassVar[list[BindingType]] = _ANSWER_BINDINGS

    def __init__(
        self,
        title: str,
        lines: Sequence[str | tuple[str, str]],
        *,
        confirm: str = "Confirm",
        dismiss: str = "Cancel",
        warning: str | None = None,
        focus_confirm: bool = True,
        id: str | None = None,
    ) -> None:
        """``lines`` are sentences, or (label, value) pairs shown as an aligned two-column list."""
        super().__init__(id=id, classes="dialog-screen")
        # Lines quote solution names, targets and errors: shown with their control characters visible.
        self.title_text = visible(title)
        self.lines = [
            (visible(line[0]), visible(line[1], multiline=True)) if isinstance(line, tuple)
            else visible(line, multiline=True)
            for line in lines
        ]
        self.confirm_label = confirm
        self.dismiss_label = dismiss
        self.warning = visible(warning, multiline=True) if warning else warning
        self.focus_confirm = focus_confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            for line in self.lines:
                if isinstance(line, tuple):
                    with Horizontal(classes="dialog-field"):
                        yield Label(line[0], classes="dialog-key", markup=False)
                        yield Static(line[1], classes="dialog-value", markup=False)
                else:
                    yield Static(line, classes="dialog-line", markup=False)
            if self.warning:
                yield Static(self.warning, classes="dialog-warning", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm_label, id="confirm", variant="primary")
                yield Button(self.dismiss_label, id="dismiss")

    def on_mount(self) -> None:
        # Enter answers with the focused button: the safe one when the question carries a warning.
        self.query_one("#confirm" if self.focus_confirm else "#dismiss", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class PlanScreen(ModalScreen[bool | str]):
    """A plan, scrollable (a sweep lists every solution): just shown (``confirm=None``), or asked about.

    Answers True (confirmed), False (dismissed), or the id of an ``alternative`` button (e.g. a roll's
    "pins only", the console's ``--no-provision``).
    """

    BINDINGS: ClassVar[list[BindingType]] = _ANSWER_BINDINGS

    def __init__(
        self,
        title: str,
        body: PlanModel | Sequence[str],
        *,
        summary: str = "",
        confirm: str | None = None,
        dismiss: str = "Cancel",
        alternative: tuple[str, str] | None = None,
        intro: Sequence[str] = (),
        id: str | None = None,
    ) -> None:
        """``body``: a provisioning plan (laid out in columns) or plain lines (e.g. a roll's pin changes);
        ``intro``: lines shown above a plan (a roll's pin changes); ``alternative``: (id, label) of a third answer
        beside confirm and dismiss."""
        super().__init__(id=id, classes="dialog-screen")
        self.title_text = visible(title)
        self.body = body if isinstance(body, PlanModel) else [visible(line, multiline=True) for line in body]
        self.intro = [visible(line, multiline=True) for line in intro]
        self.summary = visible(summary, multiline=True)
        self.confirm_label = confirm
        self.dismiss_label = dismiss if confirm else "Close"
        self.alternative = alternative if confirm else None

    @property
    def text(self) -> str:
        """The plan as plain text (what the operator reads, without the styles)."""
        if isinstance(self.body, PlanModel):  # the preflight heads the plan, above the intro
            preflight = list(self.body.preflight)
            lines = self.body.lines()[len(preflight):]
        else:
            preflight, lines = [], list(self.body)
        return "\n".join([self.title_text, *preflight, *self.intro, *lines, self.summary])

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog plan"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            with VerticalScroll(classes="plan-body"):
                if isinstance(self.body, PlanModel) and self.body.preflight:
                    preflight = "\n".join(visible(line, multiline=True) for line in self.body.preflight)
                    yield Static(Text(preflight), id="plan-preflight", classes="plan-preflight")
                if self.intro:
                    yield Static(Text("\n".join(self.intro)), id="plan-intro", classes="plan-intro")
                if isinstance(self.body, PlanModel):
                    yield PlanView(self.body, id="plan-text")
                else:
                    yield Static(Text("\n".join(self.body)), id="plan-text")  # Text keeps the alignment
            if self.summary:
                yield Static(self.summary, classes="dialog-note", markup=False)
            with Horizontal(classes="dialog-buttons"):
                if self.confirm_label:
                    yield Button(self.confirm_label, id="confirm", variant="primary")
                if self.alternative:
                    yield Button(self.alternative[1], id=self.alternative[0])
                yield Button(self.dismiss_label, id="dismiss")

    def on_mount(self) -> None:
        self.query_one("#confirm" if self.confirm_label else "#dismiss", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if self.alternative and event.button.id == self.alternative[0]:
            self.dismiss(self.alternative[0])
        else:
            self.dismiss(event.button.id == "confirm")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer and self.confirm_label is not None)


class ChoiceScreen(ModalScreen[str | None]):
    """Pick one of ``choices`` ((id, label) pairs) with the cursor and Enter; None when dismissed."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(
        self,
        title: str,
        choices: Sequence[tuple[str, str]],
        note: str = "",
        id: str | None = None,
        disabled: Collection[str] = (),
    ) -> None:
        """``disabled``: ids shown (their label says why) but not pickable."""
        super().__init__(id=id, classes="dialog-screen")
        self.title_text = visible(title)
        self.choices = [(key, visible(label)) for key, label in choices]
        self.note = visible(note, multiline=True)
        self.unavailable = frozenset(disabled)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield OptionList(
                *(Option(label, id=key, disabled=key in self.unavailable) for key, label in self.choices),
                id="choices",
                markup=False,
            )
            if self.note:
                yield Static(self.note, classes="dialog-note", markup=False)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)


QUIT_BACKGROUND, QUIT_CANCEL, QUIT_STAY = "background", "cancel", "stay"


class QuitScreen(ModalScreen[str]):
    """Operations this console started still run: let them finish, cancel them, or stay."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "choose('stay')", "Stay"),
        Binding("b", "choose('background')", "Finish in background", show=False),
        Binding("c", "choose('cancel')", "Cancel them", show=False),
    ]

    def __init__(self, running: Sequence[str]) -> None:
        super().__init__(classes="dialog-screen")
        self.running = [visible(line) for line in running]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(
                f"{len(self.running)} operation(s) started here are still running", classes="dialog-title", markup=False
            )
            yield Static("\n".join(self.running), classes="dialog-line", markup=False)
            yield Static(
                "Finishing in the background keeps this process running after the console closes, printing a "
                "line as each ends (Ctrl+C then cancels them). Cancelling stops them and runs their cleanup.",
                classes="dialog-note",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Let them finish in the background", id=QUIT_BACKGROUND, variant="primary")
                yield Button("Cancel them", id=QUIT_CANCEL, variant="error")
                yield Button("Stay", id=QUIT_STAY)

    def on_mount(self) -> None:
        self.query_one(f"#{QUIT_STAY}", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or QUIT_STAY)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class PathScreen(ModalScreen[str | None]):
    """Asks for a file path, offering ``default``; None when dismissed."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, title: str, default: str, note: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = visible(title)
        self.default = default
        self.note = visible(note, multiline=True)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Input(self.default, id="path")
            if self.note:
                yield Static(self.note, classes="dialog-note", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel", id="dismiss")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._answer(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self._answer(self.query_one("#path", Input).value)
        else:
            self.dismiss(None)

    def _answer(self, value: str) -> None:
        self.dismiss(value.strip() or None)

    def action_close(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """Every binding of the screen it was opened on, including those not shown in the footer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
    ]

    def __init__(self, screen_title: str, entries: Sequence[ActionEntry], legend: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.screen_title = screen_title
        self.entries = list(entries)
        self.legend = legend

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Label(f"Keys: {self.screen_title}", classes="dialog-title", markup=False)
            yield DataTable(id="keys", cursor_type="row", show_cursor=False)
            if self.legend:
                yield Static(self.legend, id="legend", classes="dialog-line", markup=False)
            yield Static("Ctrl+P opens the command palette: every action above, by name.", classes="dialog-note")

    def on_mount(self) -> None:
        table = self.query_one("#keys", DataTable)
        table.add_columns("key", "action", "")
        for entry in self.entries:
            table.add_row(entry.key, entry.help, "" if entry.enabled else "(not now)")

    def action_close(self) -> None:
        self.dismiss(None)
