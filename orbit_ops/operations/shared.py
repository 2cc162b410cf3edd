"""Operations shared through the state store: what the runner hands over, and what other machines read back.

With ``state: azure-blob`` every operation this machine runs is also written to the shared container (its
record, and its events as one log), so the team's ``orbit ops`` lists it and ``orbit logs ID --follow`` on
another machine follows it live. The local index and logs under ``.orbit/`` stay exactly as they are, and
are the cache a machine reads when the store is out of reach. The runner only sees :class:`OperationMirror`;
``orbit_ops.backends.azure.state_operations`` implements both sides. See
``docs/decisions/0066-operations-and-logs-in-the-shared-store.md``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Protocol

from orbit_ops.operations.events import Event
from orbit_ops.operations.records import OperationRecord


class OperationMirror(Protocol):
    """The writer's side, called by ``OperationRunner`` from the event loop's thread; never blocks on the network
    except in :meth:`finish`."""

    def started(self, record: OperationRecord) -> None:
        """The operation starts: publish its record and open its shared log.

        Raises:
            StateStoreUnreachableError: the store cannot be reached (the operation must not start unshared).
        """

    def publish(self, op_id: str, events: list[Event]) -> None:
        """Queue a batch of events (already stored locally) for the shared log and record, in order."""

    def finish(self, op_id: str, events: list[Event], *, timeout: float) -> None:
        """Queue the last batch and wait up to ``timeout`` seconds for everything queued to reach the store."""

    def cancel_requested(self, op_id: str) -> bool:
        """Whether someone on another machine asked (``orbit cancel``) for ``op_id`` to stop (as last seen: the
        store is asked every ``CANCEL_CHECK_SECONDS`` at most)."""


class SharedOperations(Protocol):
    """The reader's side: the team's operations as the shared store holds them."""

    async def list_records(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` operations (``OperationRecord.to_json`` keys plus ``user``), newest first; one whose
        owner's lease expired while it was active is recorded ``interrupted`` first.

        Raises:
            StateStoreUnreachableError: the store cannot be reached.
        """

    async def record(self, ref: str) -> dict[str, Any] | None:
        """The operation whose id is ``ref`` (None when the store has no such operation).

        Raises:
            StateStoreUnreachableError: the store cannot be reached.
        """

    def follow(self, op_id: str, *, poll: float = 0.5) -> AsyncGenerator[Event, None]:
        """Replay the operation's shared log and tail it until its ``OperationFinished``, by ranged reads from the
        last offset; a dropped connection is retried from that offset, without a deadline."""

    async def read_events(self, op_id: str) -> list[Event]:
        """Every complete event the shared log holds now."""

    async def request_cancel(self, ref: str, *, by: str) -> dict[str, Any]:
        """Ask the machine running operation ``ref`` to cancel it (it does within a few seconds); returns its record.

        Raises:
            NotFoundError: the store has no such operation.
            RefusedError: it has already finished.
            StateStoreUnreachableError: the store cannot be reached.
        """
