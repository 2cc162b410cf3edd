"""What screens ask of the console: requests that bubble up from a screen to the app, which acts on them.

Screens post these and set nothing above them (Textual's "attributes down, messages up"): the app answers a
request by starting a flow or a read of the console model (``orbit_tui.model``), and the model publishes what it
read to the screens that show it. No module here knows a screen or the app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from textual.message import Message
from textual.screen import Screen

from orbit_ops.config.model import InvalidSolution

# What a screen shows, read by the model; "solution" is one solution's detail: the fleet's status and its revisions.
Part = Literal["components", "tags", "fleet", "operations", "history", "solution"]


class BuildRequested(Message):
    """``b``: build ``component`` at ``version`` (None: its newest stable tag), asked first."""

    def __init__(self, component: str, version: str | None) -> None:
        super().__init__()
        self.component = component
        self.version = version


class PlanRequested(Message):
    """``p``: show what provisioning ``ids`` would change."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__()
        self.ids = ids


class ProvisionRequested(Message):
    """``r`` (``ids``) or ``R`` (None: a sweep of every solution), asked first with the plan."""

    def __init__(self, ids: list[str] | None) -> None:
        super().__init__()
        self.ids = ids


class RollRequested(Message):
    """``t``: pick a released version to roll to ``ids``."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__()
        self.ids = ids


class RollBackRequested(Message):
    """``u``: pick an app of ``solution_id`` to roll back."""

    def __init__(self, solution_id: str) -> None:
        super().__init__()
        self.solution_id = solution_id


class RetryRequested(Message):
    """``r`` on an operation: re-provision the solutions that failed in ``op_id``."""

    def __init__(self, op_id: str) -> None:
        super().__init__()
        self.op_id = op_id


class StopAfterWaveRequested(Message):
    """The operator confirmed stopping waved roll ``op_id`` after its current wave (any process's roll)."""

    def __init__(self, op_id: str, what: str) -> None:
        super().__init__()
        self.op_id = op_id
        self.what = what


class ResumeRollRequested(Message):
    """``r`` in the roll view: continue waved roll ``op_id`` from its first wave that did not succeed."""

    def __init__(self, op_id: str) -> None:
        super().__init__()
        self.op_id = op_id


class RollBackWaveRequested(Message):
    """``u`` in the roll view: pin the failed wave of waved roll ``op_id`` back."""

    def __init__(self, op_id: str) -> None:
        super().__init__()
        self.op_id = op_id


class CancelRequested(Message):
    """The operator confirmed cancelling ``op_id`` (any process's operation)."""

    def __init__(self, op_id: str, what: str) -> None:
        super().__init__()
        self.op_id = op_id
        self.what = what


class LogRequested(Message):
    """Enter on an operation: open its log."""

    def __init__(self, op_id: str) -> None:
        super().__init__()
        self.op_id = op_id


class TagsRequested(Message):
    """Enter on a component: open its tags."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component


class SolutionRequested(Message):
    """Enter on a solution: open its detail."""

    def __init__(self, solution_id: str) -> None:
        super().__init__()
        self.solution_id = solution_id


class InvalidSolutionRequested(Message):
    """Enter on an invalid solution file's row: open what is wrong with it."""

    def __init__(self, entry: InvalidSolution) -> None:
        super().__init__()
        self.entry = entry


class DialogRequested(Message):
    """A screen's own question (a path to save to, a confirmation): shown above it, answered to ``answered``."""

    def __init__(self, dialog: Screen[Any], answered: Callable[[Any], None] | None = None) -> None:
        super().__init__()
        self.dialog = dialog
        self.answered = answered


class BackRequested(Message):
    """Esc with nothing of the screen's own to close: go back."""


class ReadRequested(Message):
    """A screen (re)wants what it shows read from the workspace: ``what`` is a part of the console model, ``key``
    the component (``tags``) or solution (``history``, ``solution``) it is about."""

    def __init__(self, what: Part, key: str = "") -> None:
        super().__init__()
        self.what = what
        self.key = key
