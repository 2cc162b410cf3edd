"""What an operation is and where it stands: its kind, its state, the states of its members.

These are ``StrEnum`` types whose values are the strings the index rows, the JSONL log lines and every
``--json`` answer have always held (SPEC §6.1), so a member compares equal to its string, formats as it
and is stored as it: typing them changed no byte on disk or on the wire. A value outside these sets is
not an operation's: decoding a log line or an index row that holds one fails as a malformed line does.
"""

from __future__ import annotations

from enum import StrEnum


class OperationKind(StrEnum):
    """What an operation does; what front ends start (``orbit ops --kind``)."""

    BUILD = "build"
    PROVISION = "provision"
    SWEEP = "sweep"
    ROLL = "roll"


class OperationState(StrEnum):
    """Where an operation stands: queued or running while active, then how it ended."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # its owner process died before it finished


class MemberState(StrEnum):
    """Where one member (a solution) of a provision, sweep or roll stands."""

    QUEUED = "queued"
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # refused before it was touched (an unreleased pin)
    INVALID = "invalid"  # its solution file is invalid; left untouched
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


ACTIVE_STATES = (OperationState.QUEUED, OperationState.RUNNING)
MEMBER_ACTIVE_STATES = (MemberState.QUEUED, MemberState.PENDING, MemberState.RUNNING)
# The kinds whose members are solutions: what a solution's history lists and ``--failed-from`` retries.
SWEEPING_KINDS = (OperationKind.PROVISION, OperationKind.SWEEP, OperationKind.ROLL)
