"""The shared state store's container (``state: azure-blob``): its client, its credential, and its retries.

Credentials: ``ORBIT_STATE_CONNECTION_STRING`` when set (its ``AccountKey`` or ``SharedAccessSignature`` only:
the endpoint is always ``state.account_url`` from ``orbit.yaml``), else ``DefaultAzureCredential``. Neither is
ever printed: the key is registered with :mod:`orbit_ops.redact` before any request is made.

The storage SDK's own retry waits 12-18 s before its first attempt again and never retries 429 (SPEC §5), so
it is turned off here and :func:`StateContainer.call` retries 408/429/5xx and dropped connections itself, with
capped exponential backoff that honours ``Retry-After``. What the service refuses for good comes back as
:class:`StateStoreRefusedError` carrying the storage error code (``LeaseAlreadyPresent``, ``BlobNotFound``…), for the
lease and record code to decide on; what cannot be reached becomes
:class:`~orbit_ops.errors.StateStoreUnreachableError`. Nothing SDK-typed leaves this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from orbit_ops.backends.azure.common import in_thread
from orbit_ops.config.state import StateSettings
from orbit_ops.errors import BackendError, StateStoreUnreachableError
from orbit_ops.redact import redact, register_secret

T = TypeVar("T")
CONNECTION_STRING_ENV = "ORBIT_STATE_CONNECTION_STRING"
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
ATTEMPTS = 8
FIRST_BACKOFF = 0.2  # seconds; doubled per attempt up to MAX_BACKOFF (tests may lower both)
MAX_BACKOFF = 5.0
MAX_RETRY_AFTER = 30.0


class StateStoreRefusedError(BackendError):
    """The state store answered, and refused: ``code`` is its ``x-ms-error-code``, ``status`` the HTTP status."""

    def __init__(self, message: str, code: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class StateContainer:
    """The container of the shared state: one SDK client, made on first use, shared by every call."""

    def __init__(self, settings: StateSettings, *, client_options: dict[str, Any] | None = None) -> None:
        assert settings.account_url is not None and settings.container is not None
        self.settings = settings
        self.where = settings.describe()
        self._options = dict(client_options or {})
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        """The ``ContainerClient`` (blocking; call it through :meth:`call`)."""
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        from azure.storage.blob import ContainerClient

        options: dict[str, Any] = {"retry_total": 0, "connection_timeout": 10, "read_timeout": 30}
        if self.settings.ca_bundle:
            options["connection_verify"] = self.settings.ca_bundle
        options.update(self._options)
        assert self.settings.account_url is not None and self.settings.container is not None
        return ContainerClient(self.settings.account_url, self.settings.container, credential=_credential(),
                               **options)

    def blob(self, name: str) -> Any:
        return self.client().get_blob_client(name)

    async def call(self, func: Callable[..., T], *args: Any, what: str, attempts: int = ATTEMPTS,
                   **kwargs: Any) -> T:
        """Run blocking SDK ``func`` in a thread; retry what is transient; map what is not.

        Raises:
            StateStoreRefusedError: the service refused the request (its error code says why).
            StateStoreUnreachableError: it could not be reached, or kept failing, after ``attempts`` tries; or it
                refused our credential.
        """
        delay = FIRST_BACKOFF
        for attempt in range(1, attempts + 1):
            try:
                return await in_thread(func, *args, **kwargs)
            except Exception as exc:  # mapped by _wait_before_retry; nothing SDK-typed escapes this module
                await asyncio.sleep(self._wait_before_retry(exc, what, attempt, attempts, delay))
                delay = min(delay * 2, MAX_BACKOFF)
        raise AssertionError("unreachable")

    async def append_at_end(self, blob: Any, data: bytes, *, what: str) -> None:
        """Append ``data`` (whole lines) to the append blob ``blob`` once, at its end as it is now.

        Each attempt states the offset it expects (``appendpos``); when that condition fails, the bytes at that
        offset are compared with ``data``: equal, it was this very append, retried after its answer was lost.
        The blob is created when missing. Starts a fresh line when the last writer stopped mid-line.

        Raises:
            StateStoreRefusedError / StateStoreUnreachableError: as :meth:`call`.
        """
        for _ in range(5):
            try:
                size = (await self.call(blob.get_blob_properties, what=what)).size
            except StateStoreRefusedError as exc:
                if exc.code != "BlobNotFound":
                    raise
                with contextlib.suppress(StateStoreRefusedError):  # another writer made it first
                    await self.call(blob.create_append_blob, if_none_match="*", what=what)
                continue
            lead = b""
            if size and await self.call(_read_range, blob, size - 1, 1, what=what) != b"\n":
                lead = b"\n"
            try:
                await self.call(blob.append_block, lead + data, appendpos_condition=size, what=what)
                return
            except StateStoreRefusedError as exc:
                if exc.code != "AppendPositionConditionNotMet":
                    raise
                if await self.call(_read_range, blob, size, len(lead + data), what=what) == lead + data:
                    return  # this very append, retried after its answer was lost
        raise StateStoreUnreachableError(f"{what}: the log in {self.where} kept moving under five appends")

    def call_sync(self, func: Callable[..., T], *args: Any, what: str, attempts: int = ATTEMPTS, **kwargs: Any) -> T:
        """:meth:`call` for a worker thread of its own (blocking; same retries and mapping).

        Raises:
            StateStoreRefusedError / StateStoreUnreachableError: as :meth:`call`.
        """
        delay = FIRST_BACKOFF
        for attempt in range(1, attempts + 1):
            try:
                return func(*args, **kwargs)
            except Exception as exc:  # mapped by _wait_before_retry
                time.sleep(self._wait_before_retry(exc, what, attempt, attempts, delay))
                delay = min(delay * 2, MAX_BACKOFF)
        raise AssertionError("unreachable")

    def _wait_before_retry(self, exc: Exception, what: str, attempt: int, attempts: int, delay: float) -> float:
        """The seconds to wait before retrying after ``exc`` (its Retry-After, else ``delay``, with jitter); raises
        the mapped error when ``exc`` is not transient or this was the last of ``attempts``."""
        error, retry_after = self._map(exc, what)
        if not isinstance(error, _Transient):
            raise error from None
        if attempt == attempts:
            raise StateStoreUnreachableError(
                f"{what}: the state store ({self.where}) {error.message} (gave up after {attempts} "
                "attempts)") from None
        wait = min(retry_after, MAX_RETRY_AFTER) if retry_after is not None else delay
        return wait + random.uniform(0, delay / 4)

    def _map(self, exc: BaseException, what: str) -> tuple[BackendError, float | None]:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )

        if isinstance(exc, BackendError):
            return exc, None
        if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
            return _Transient(f"cannot be reached ({_reason(exc)})"), None
        if isinstance(exc, HttpResponseError):
            status = exc.status_code or 0
            raw = _header(exc, "x-ms-error-code") or getattr(exc, "error_code", None) or ""
            code = str(getattr(raw, "value", raw))  # the SDK's StorageErrorCode is an enum: its value is the code
            if status in TRANSIENT_STATUS:
                return _Transient(f"answered {status}{' ' + code if code else ''}"), _retry_after(exc)
            if status in (401, 403) or isinstance(exc, ClientAuthenticationError):
                return StateStoreUnreachableError(
                    f"{what}: the state store ({self.where}) refused our credential ({status} {code or _reason(exc)});"
                    f" set {CONNECTION_STRING_ENV}, or give the signed-in identity the 'Storage Blob Data "
                    "Contributor' role on the container"), None
            return StateStoreRefusedError(f"{what}: the state store answered {status} ({code or _reason(exc)})", code,
                                status), None
        if isinstance(exc, ClientAuthenticationError):
            return StateStoreUnreachableError(
                f"{what}: no credential for the state store ({_reason(exc)}); set {CONNECTION_STRING_ENV} or sign "
                "in with 'az login'"), None
        return BackendError(f"{what}: {type(exc).__name__}: {redact(str(exc))[:300]}"), None


def probe(container: StateContainer) -> None:
    """Check the store answers (creating the container when it is missing), trying a few times only.

    Raises:
        StateStoreUnreachableError: it cannot be reached, or refused our credential.
    """
    client = container.client()
    try:
        container.call_sync(client.get_container_properties, attempts=3, what="reaching the state store")
    except StateStoreRefusedError as exc:
        if exc.code != "ContainerNotFound":
            raise StateStoreUnreachableError(f"reaching the state store: {exc.message}") from None
        try:
            container.call_sync(client.create_container, attempts=3, what="creating the state container")
        except StateStoreRefusedError as again:
            if again.code != "ContainerAlreadyExists":
                raise StateStoreUnreachableError(f"creating the state container: {again.message}") from None


def _read_range(blob: Any, offset: int, length: int) -> bytes:
    data: bytes = blob.download_blob(offset=offset, length=length).readall()
    return data


class _Transient(BackendError):
    """A failure worth another attempt (429, 5xx, a dropped connection)."""


def _credential() -> Any:
    """The account key or SAS of ``ORBIT_STATE_CONNECTION_STRING``, else ``DefaultAzureCredential``.

    Raises:
        StateStoreUnreachableError: the connection string holds neither an AccountKey nor a SharedAccessSignature.
    """
    text = os.environ.get(CONNECTION_STRING_ENV, "").strip()
    if not text:
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()
    register_secret(text)
    fields: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    if fields.get("accountkey"):
        register_secret(fields["accountkey"])
        return {"account_name": fields.get("accountname", ""), "account_key": fields["accountkey"]}
    if fields.get("sharedaccesssignature"):
        register_secret(fields["sharedaccesssignature"])
        return fields["sharedaccesssignature"]
    raise StateStoreUnreachableError(f"{CONNECTION_STRING_ENV} holds no AccountKey and no SharedAccessSignature "
                                     "(its value is not shown)")


def _header(exc: Any, name: str) -> str | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get(name)
    return str(value) if value is not None else None


def _retry_after(exc: Any) -> float | None:
    for name in ("x-ms-retry-after-ms", "retry-after-ms"):
        value = _header(exc, name)
        if value is not None:
            try:
                return float(value) / 1000
            except ValueError:
                pass
    value = _header(exc, "Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _reason(exc: Any) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return redact(" ".join(str(message).split()))[:200]
