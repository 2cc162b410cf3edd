"""Events of an operation: small frozen facts, named in the past tense.

An operation (build, provision, sweep, roll) is an async stream of these events. The CLI prints
them, the TUI renders them and the operation store persists them, one JSON object a line, so a
second process can replay or follow the same stream. ``to_json``/``from_json`` are that line
format; the ``type`` key tells the events apart and keys are only ever added, never renamed.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from orbit_ops.operations.kinds import MemberState, OperationKind, OperationState

_Enum = TypeVar("_Enum", bound=StrEnum)


@dataclass(frozen=True)
class OperationStarted:
    """The operation's body began to run."""

    op_id: str
    kind: OperationKind
    target: str
    at: str


@dataclass(frozen=True)
class LogLine:
    """One line of the operation's log; ``child`` names the sweep member it belongs to, if any."""

    op_id: str
    at: str
    text: str
    child: str | None = None


@dataclass(frozen=True)
class ProgressChanged:
    """``done`` of ``total`` steps are complete (``total`` 0 means unknown)."""

    op_id: str
    done: int
    total: int


@dataclass(frozen=True)
class ChildChanged:
    """A member of a sweep (one solution) changed state, e.g. ``running`` or ``failed``."""

    op_id: str
    child: str
    state: MemberState
    message: str = ""


@dataclass(frozen=True, repr=False)
class OperationFinished:
    """The operation ended: ``succeeded``, ``failed``, ``cancelled`` or ``interrupted``."""

    op_id: str
    state: OperationState
    at: str
    error: str | None = None
    result: dict[str, Any] | None = None

    def __repr__(self) -> str:
        # A sweep's result lists every solution; asyncio formats the repr of whatever ``asyncio.run``
        # returned (through its SIGINT handler), so a large result is abbreviated.
        return (f"OperationFinished(op_id={self.op_id!r}, state={self.state!r}, at={self.at!r}, "
                f"error={self.error!r}, result={reprlib.repr(self.result)})")


Event = OperationStarted | LogLine | ProgressChanged | ChildChanged | OperationFinished

_TYPES: dict[type[Any], str] = {
    OperationStarted: "started",
    LogLine: "log",
    ProgressChanged: "progress",
    ChildChanged: "child",
    OperationFinished: "finished",
}


def to_json(event: Event) -> dict[str, Any]:
    """The event as a JSON-ready dict with a ``type`` key."""
    data: dict[str, Any] = {"type": _TYPES[type(event)]}
    data.update(vars(event))
    return data


def from_json(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from ``to_json`` output.

    Raises:
        ValueError: the type is unknown or a field is missing or of the wrong type.
    """
    kind = data.get("type")
    try:
        if kind == "started":
            return OperationStarted(
                op_id=_str(data, "op_id"),
                kind=_member(OperationKind, data, "kind"),
                target=_str(data, "target"),
                at=_str(data, "at"),
            )
        if kind == "log":
            return LogLine(
                op_id=_str(data, "op_id"),
                at=_str(data, "at"),
                text=_str(data, "text"),
                child=_opt_str(data, "child"),
            )
        if kind == "progress":
            return ProgressChanged(
                op_id=_str(data, "op_id"), done=_int(data, "done"), total=_int(data, "total")
            )
        if kind == "child":
            return ChildChanged(
                op_id=_str(data, "op_id"),
                child=_str(data, "child"),
                state=_member(MemberState, data, "state"),
                message=_opt_str(data, "message") or "",
            )
        if kind == "finished":
            result = data.get("result")
            if result is not None and not isinstance(result, dict):
                raise ValueError("'result' must be an object or null")
            return OperationFinished(
                op_id=_str(data, "op_id"),
                state=_member(OperationState, data, "state"),
                at=_str(data, "at"),
                error=_opt_str(data, "error"),
                result=result,
            )
    except KeyError as exc:
        raise ValueError(f"{kind} event without {exc.args[0]!r}") from None
    raise ValueError(f"unknown event type {kind!r}")


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string, not {type(value).__name__}")
    return value


def _member(enum: type[_Enum], data: Mapping[str, Any], key: str) -> _Enum:
    value = _str(data, key)
    try:
        return enum(value)
    except ValueError:
        raise ValueError(f"{key!r} must be one of {', '.join(enum)}, not {value!r}") from None


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string or null, not {type(value).__name__}")
    return value


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key!r} must be an integer, not {type(value).__name__}")
    return value
