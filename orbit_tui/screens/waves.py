"""The questions of a roll in waves: the version pick that offers waves (``w``) and the waves form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static

from orbit_ops.text import visible
from orbit_tui.screens.modals import ChoiceScreen

IN_WAVES = "waves:"  # the prefix of a pick answered with w: "waves:orbit@1.3.0-rc.1"


class RollPickScreen(ChoiceScreen):
    """The version pick of ``t``: Enter rolls it at once (as before), ``w`` rolls it in waves."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("w", "in_waves", "In waves")]

    def action_in_waves(self) -> None:
        options = self.query_one("#choices", OptionList)
        highlighted = options.highlighted
        if highlighted is not None:
            option = options.get_option_at_index(highlighted)
            if option.id and not option.disabled:
                self.dismiss(IN_WAVES + option.id)


@dataclass(frozen=True)
class WavesForm:
    """How to roll in waves, as typed (the engine checks it): the steps, the soak, on-failure, the allowance."""

    waves: str
    soak: str = "0"
    on_failure: str = "halt"
    max_unhealthy: str = "0"
    error: str = ""  # why the last answer was refused, shown above the fields


FIELDS = (("waves", "waves"), ("soak", "soak"), ("on_failure", "on failure"), ("max_unhealthy", "max unhealthy"))
HINTS = {
    "waves": "1,25%,* or ring=canary,ring=early,*",
    "soak": "watch each wave: 0, 90s, 5m",
    "on_failure": "halt, or rollback (pin it back)",
    "max_unhealthy": "unhealthy a wave may have and pass",
}


class WavesScreen(ModalScreen[WavesForm | None]):
    """Asks how to roll in waves; Enter in any field (or the button) answers, Esc closes. None when closed."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, title: str, form: WavesForm) -> None:
        super().__init__(classes="dialog-screen waves-form")
        self.title_text = visible(title)
        self.form = form

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog waves"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            if self.form.error:
                yield Static(visible(self.form.error, multiline=True), id="waves-error", classes="dialog-warning",
                             markup=False)
            for name, label in FIELDS:
                with Horizontal(classes="dialog-field"):
                    yield Label(label, classes="dialog-key", markup=False)
                    yield Input(getattr(self.form, name), id=f"waves-{name.replace('_', '-')}", compact=True,
                                tooltip=HINTS[name])
                    yield Label(HINTS[name], classes="note", markup=False)
            yield Static("Enter: show the waves and the plan (nothing is written before you confirm it). Tab: next "
                         "field. Esc: close.", classes="dialog-note", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Show the waves", id="confirm", variant="primary")
                yield Button("Cancel", id="dismiss")

    def on_mount(self) -> None:
        self.query_one("#waves-waves", Input).focus()

    @property
    def answer(self) -> WavesForm:
        values = {name: self.query_one(f"#waves-{name.replace('_', '-')}", Input).value.strip() for name, _ in FIELDS}
        return WavesForm(**values)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(self.answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self.answer if event.button.id == "confirm" else None)

    def action_close(self) -> None:
        self.dismiss(None)
