"""The roll view's cells (pure): a wave's row with its soak countdown, a solution's row, the halt line."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from orbit_ops.fleet.waved_roll import STOPPED_BY_OPERATOR, soak_deadline
from orbit_ops.fleet.waves import Wave, wave_child
from orbit_tui.render import Cell, state_cell

WAVE_COLUMNS = ("wave", "selector", "state", "solutions", "message")
SOLUTION_COLUMNS = ("solution", "wave", "labels", "state", "message")


def wave_state(state: str, message: str) -> str:
    """A wave member's state as the view says it: ``soaking`` while its soak runs."""
    return "soaking" if state == "running" and soak_deadline(message) is not None else state


def wave_message(message: str, now: datetime) -> str:
    """The wave's message, a soak told as its countdown: ``soak: 42 s left (ends 06:10:30 UTC)``."""
    deadline = soak_deadline(message)
    if deadline is None:
        return message
    left = max(0, int((deadline - now).total_seconds() + 0.999))
    return f"soak: {left} s left (ends {deadline:%H:%M:%S} UTC)"


def wave_row(wave: Wave, state: str, message: str, now: datetime) -> tuple[Cell, ...]:
    shown = wave_state(state, message)
    return (Cell(str(wave.index)), Cell(wave.selector), state_cell(shown), Cell(str(len(wave.solutions))),
            Cell(wave_message(message, now)))


def solution_row(solution_id: str, wave: int | None, labels: Mapping[str, str], state: str,
                 message: str) -> tuple[Cell, ...]:
    shown = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    return (Cell(solution_id), Cell(str(wave) if wave else "—"), Cell(shown, "-muted" if not shown else None),
            state_cell(state), Cell(message))


def halt_text(state: str, error: str | None, members: Mapping[str, str], messages: Mapping[str, str],
              waves: tuple[Wave, ...], stop_requested: bool) -> str:
    """Why the roll stopped, or that it will: ``halted at wave 2 (25%): 3 of 10 unhealthy …``; empty otherwise."""
    failed = next((wave for wave in waves if members.get(wave_child(wave.index)) == "failed"), None)
    later = "later waves not started"
    if failed is not None:
        why = messages.get(wave_child(failed.index), "")
        return f"halted at wave {failed.index} ({failed.selector}): {why}; {later}. r resumes, u rolls it back."
    if state == "cancelled" and error and error.startswith(STOPPED_BY_OPERATOR):
        return f"{error}; {later}. r resumes from the next wave."
    if state in ("cancelled", "interrupted", "failed"):
        return f"{state}{': ' + error if error else ''}. r resumes from the first wave that did not succeed."
    if stop_requested and state in ("queued", "running"):
        return "stop requested: the current wave finishes (with its soak); no later wave starts."
    return ""
