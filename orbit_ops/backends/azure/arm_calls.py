"""How the Container Apps platform's ARM calls are made: paced, read if found, created once, waited for.

The pieces :class:`~orbit_ops.backends.azure.platform.AzurePlatform` wraps around each blocking SDK call
before handing it to :func:`~orbit_ops.backends.azure.common.call`: the read and write token buckets of one
platform (kept across event loops), a GET that answers None for "does not exist", a create that refuses to
replace what exists without reading again on a retry, and long-running operations polled to their end in
the thread that started them, with a failed operation's own error as the message.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from orbit_ops.backends.azure.common import TokenBucket
from orbit_ops.errors import BackendError, ResourceExistsError
from orbit_ops.redact import redact


class Pacing:
    """The read and write buckets of one platform.

    ``asyncio`` primitives belong to one event loop and a CLI command may run several
    (``asyncio.run`` per step), so the buckets are re-made for a new loop, keeping their tokens.
    """

    def __init__(self, reads: tuple[float, float], writes: tuple[float, float]) -> None:
        self._rates = {"reads": reads, "writes": writes}
        self._buckets: dict[str, TokenBucket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def bucket(self, kind: str) -> TokenBucket:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            old, self._buckets, self._loop = self._buckets, {}, loop
            for name, (capacity, rate) in self._rates.items():
                bucket = TokenBucket(capacity, rate)
                if name in old:
                    bucket.tokens, bucket.updated = old[name].tokens, old[name].updated
                self._buckets[name] = bucket
        return self._buckets[kind]


def found(get: Callable[..., Any], *args: Any) -> Any:
    """``get(*args)`` (a blocking SDK read), or None where ARM answers that it does not exist."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return get(*args)
    except ResourceNotFoundError:
        return None


def create_once(existing: Callable[[], Any], write: Callable[[], None], conflict: str) -> Callable[[], None]:
    """One create as a blocking function for ``call``: read ``existing``, ResourceExistsError(``conflict``)
    if there is something (ARM's PUT is an upsert and would replace it), else ``write``.

    The read comes first only until the write has gone out: a retry after that (a status poll that kept
    failing, a timeout) only writes again, since what it would find then is this create's own resource.
    """
    sent = False

    def attempt() -> None:
        nonlocal sent
        if not sent and existing() is not None:
            raise ResourceExistsError(conflict)
        sent = True
        write()

    return attempt


@functools.cache
def inline_polling() -> type:
    """``ARMPolling`` that polls to the end inside ``initialize``, in the caller's thread.

    ``LROPoller`` starts a thread of its own for every operation not finished at once, while the thread
    that began it waits on that thread: in a sweep, one more thread started and handed over to per app
    written. Finished before ``LROPoller`` looks, the operation needs none; the polling itself (status
    URL, Retry-After, final GET, failures as ``HttpResponseError``) is ARMPolling's, unchanged. The
    operation's result is not made into a model: :func:`wait` has no use for it.
    """
    from azure.mgmt.core.polling.arm_polling import ARMPolling

    class _InlinePolling(ARMPolling):
        def initialize(self, client: Any, initial_response: Any, deserialization_callback: Any) -> None:
            super().initialize(client, initial_response, deserialization_callback)
            if not self.finished():
                self.run()

        def resource(self) -> None:
            # The app as the final GET returned it, as an SDK model: Orbit does not use it (it reads apps
            # back by listing), and building a ContainerApp model costs more CPU than the GET itself.
            return None

    return _InlinePolling


def wait(begin: Callable[[], Any], what: str) -> None:
    """Start a long-running operation with ``begin`` and wait for its end; one that ends Failed/Canceled
    is a plain BackendError.

    azure-core reports such an end as an HttpResponseError carrying the (successful) status of the
    last poll, which would read as "Azure answered 200"; the operation's own error says what went wrong.

    Raises:
        BackendError: the operation ended Failed or Canceled.
        azure.core.exceptions.HttpResponseError: the start or a poll was refused (``call`` maps it).
    """
    from azure.core.exceptions import HttpResponseError

    try:
        begin().result()
    except HttpResponseError as exc:
        if exc.status_code is None or exc.status_code >= 300:
            raise
        error = getattr(exc, "error", None)
        reason = f"{getattr(error, 'code', None) or 'Failed'}: {getattr(error, 'message', None) or exc.message}"
        raise BackendError(f"{what}: the operation failed ({redact(' '.join(reason.split()))[:300]})") from None
