"""What every Azure client of Orbit shares: credentials, endpoints, CA bundle, error mapping, retries.

Azure SDK modules are imported inside functions only, so importing the engine never loads them
(a test checks ``sys.modules``). Every SDK exception is turned into an ``orbit_ops.errors`` type here,
with a message an operator can act on and nothing secret in it (URLs are cut at ``?``).

Errors:
    401 → BackendError "authentication failed …how to log in"
    403 → BackendError "forbidden …which role is missing"
    404 → MissingOnPlatformError (the platform lacks it: a fault, not the operator's typo)
    409 → ResourceExistsError
    429 → ThrottledError(retry_after)
    connection errors → BackendError "cannot reach <endpoint>"
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from orbit_ops.config.model import AzureSettings
from orbit_ops.errors import BackendError, MissingOnPlatformError, OrbitError, ResourceExistsError, ThrottledError
from orbit_ops.redact import redact, register_secret

T = TypeVar("T")

ARM_ENDPOINT = "https://management.azure.com"
TOKEN_ENV = "ORBIT_AZURE_ACCESS_TOKEN"
ACCOUNT_KEY_ENV = "ORBIT_STORAGE_ACCOUNT_KEY"


@dataclass(frozen=True)
class AzureEndpoints:
    """Where the clients go, and which CA bundle verifies them (None: the system's)."""

    arm: str
    files: str  # host-style https://<account>.file.core.windows.net or path-style https://host:port/<account>
    ca_bundle: str | None

    @classmethod
    def from_settings(cls, settings: AzureSettings) -> AzureEndpoints:
        arm = (settings.arm_endpoint or ARM_ENDPOINT).rstrip("/")
        files = (settings.files_endpoint or f"https://{settings.storage_account}.file.core.windows.net").rstrip("/")
        return cls(arm=arm, files=files, ca_bundle=settings.ca_bundle or None)

    def verify(self) -> bool | str:
        """The ``connection_verify`` value: the configured bundle, else the one ``REQUESTS_CA_BUNDLE`` or
        ``CURL_CA_BUNDLE`` names (as requests would read it), else normal verification."""
        return self.ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True

    def transport(self, url: str) -> dict[str, Any]:
        """Keyword arguments for an SDK client (or pipeline) that talks to ``url``: CA bundle and proxy,
        both read from the environment once, here.

        Left to itself, requests re-reads the whole environment on every request to find proxies
        (``trust_env``): with a few dozen variables that was a fifth of the CPU of a sweep of
        thousands of calls. The transport is told not to (``use_env_settings=False``) and gets what it
        would have found: the ``*_PROXY`` variables unless ``NO_PROXY`` exempts the host.
        """
        return {"connection_verify": self.verify(), "use_env_settings": False, "proxies": proxies_for(url)}

    def pooled_transport(self, url: str, options: Mapping[str, Any], **defaults: Any) -> dict[str, Any]:
        """Keyword arguments for an SDK client that makes fleet-sized numbers of calls to ``url``: the same
        CA bundle and proxy as :meth:`transport`, on urllib3 directly instead of requests (decision 0024),
        and the client's ``options``. Connection options among them (``connection_timeout``,
        ``read_timeout``, …) go to the transport, over ``defaults``; azure-core's own otherwise."""
        from orbit_ops.backends.azure.transport import transport_class

        connection = {**defaults, **{k: v for k, v in options.items() if k in CONNECTION_OPTIONS}}
        rest = {k: v for k, v in options.items() if k not in CONNECTION_OPTIONS}
        connection.setdefault("connection_verify", self.verify())
        return {"transport": transport_class()(proxies=proxies_for(url), pool_size=POOL_THREADS, **connection),
                **rest}


# What azure-core's ConnectionConfiguration reads: given to a client, they configure its transport.
CONNECTION_OPTIONS = ("connection_timeout", "read_timeout", "connection_verify", "connection_cert",
                      "connection_data_block_size")


def proxies_for(url: str) -> dict[str, str]:
    """The proxies requests would use for ``url`` from ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY``."""
    import urllib.request
    from urllib.parse import urlsplit

    found = urllib.request.getproxies()
    host = urlsplit(url).hostname or ""
    if not found or urllib.request.proxy_bypass(host):
        return {}
    return {scheme: address for scheme, address in found.items() if scheme in ("http", "https", "all")}


class StaticTokenCredential:
    """A TokenCredential over a bearer token a pipeline already holds (``ORBIT_AZURE_ACCESS_TOKEN``)."""

    def __init__(self, token: str) -> None:
        self._token = token
        register_secret(token)

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self._token, int(time.time()) + 3600)


def credential() -> Any:
    """``ORBIT_AZURE_ACCESS_TOKEN`` when set, else ``DefaultAzureCredential`` (never printed)."""
    token = os.environ.get(TOKEN_ENV)
    if token:
        return StaticTokenCredential(token)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def account_key() -> str:
    """The storage account key from ``ORBIT_STORAGE_ACCOUNT_KEY`` (registered as a secret).

    Raises:
        BackendError: the variable is not set.
    """
    key = os.environ.get(ACCOUNT_KEY_ENV)
    if not key:
        raise BackendError(f"{ACCOUNT_KEY_ENV} is not set: the Azure Files shares need the storage account key")
    register_secret(key)
    return key


def map_error(exc: BaseException, what: str) -> OrbitError:
    """Turn an Azure SDK exception raised while doing ``what`` into an Orbit error."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )
    from azure.core.exceptions import (
        ResourceExistsError as SdkExists,
    )

    if isinstance(exc, OrbitError):
        return exc
    if isinstance(exc, SdkExists):
        return ResourceExistsError(f"{what}: already exists")
    if isinstance(exc, ResourceNotFoundError):
        return MissingOnPlatformError(f"{what}: not found")
    if isinstance(exc, ClientAuthenticationError) and getattr(exc, "status_code", None) in (None, 401):
        return BackendError(f"{what}: authentication failed ({_reason(exc)}); sign in with 'az login', "
                            f"or set {TOKEN_ENV} to a bearer token for https://management.azure.com")
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        if status == 401:
            return BackendError(f"{what}: authentication failed ({_reason(exc)}); sign in with 'az login', "
                                f"or set {TOKEN_ENV}")
        if status == 403:
            return BackendError(f"{what}: forbidden ({_reason(exc)}); the identity needs the role that allows it "
                                "(Contributor on the resource group, AcrPush/Contributor on the registry, "
                                "Storage File Data SMB Share Contributor on the account)")
        if status == 409:
            return ResourceExistsError(f"{what}: already exists ({_reason(exc)})")
        if status == 429:
            retry_after = _retry_after(exc)
            return ThrottledError(f"{what}: throttled by Azure (asked to retry after {retry_after or 0:.0f} s)",
                                  retry_after)
        return BackendError(f"{what}: Azure answered {status} ({_reason(exc)})")
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return BackendError(f"{what}: cannot reach Azure ({_reason(exc)})")
    return BackendError(f"{what}: {type(exc).__name__}: {redact(str(exc))[:300]}")


def _reason(exc: Any) -> str:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) or getattr(exc, "error_code", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    text = f"{code}: {message}" if code else str(message)
    return redact(" ".join(text.split()))[:300]


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if name in headers:
            try:
                return float(headers[name]) / 1000
            except ValueError:
                pass
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class TokenBucket:
    """Client-side pacing that mirrors ARM's per-subscription token buckets (reads 250/25 s⁻¹,
    writes 200/10 s⁻¹), so a sweep paces itself instead of hammering the API into 429s.

    Tasks take tokens with :meth:`take`, one after another; a worker thread that makes a series of calls by
    itself (a listing following its pages) takes them with :meth:`take_blocking`, from the same tokens."""

    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()
        self._state = threading.Lock()  # the tokens, shared with worker threads

    async def take(self) -> None:
        async with self._lock:
            while (wait := self._take_or_wait()) > 0:
                await asyncio.sleep(wait)

    def take_blocking(self) -> None:
        """:meth:`take` for a worker thread: waits in the thread."""
        while (wait := self._take_or_wait()) > 0:
            time.sleep(wait)

    def _take_or_wait(self) -> float:
        """Takes a token and answers 0, or answers how long until there is one."""
        with self._state:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


# Blocking SDK calls mostly wait on the network. ``asyncio.to_thread``'s default executor has
# min(32, cores + 4) threads, 6 on two cores: fewer than a sweep's concurrency (16 in the benchmark),
# so calls would queue for a thread while their solutions wait. Azure calls get their own pool, sized
# above any sensible sweep concurrency; threads are started only as calls need them.
POOL_THREADS = 64
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


async def in_thread(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``asyncio.to_thread`` on the Azure calls' own thread pool (see ``POOL_THREADS``)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="orbit-azure")
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_pool, functools.partial(context.run, func, *args,
                                                                                      **kwargs))


async def call(func: Callable[..., T], *args: Any, what: str, buckets: tuple[TokenBucket, ...] = (),
               attempts: int = 6, **kwargs: Any) -> T:
    """Run blocking SDK ``func`` in a thread, mapping errors; retries throttling (honouring Retry-After)
    and transient 5xx/connection errors with capped exponential backoff. Each attempt first takes a token
    of each of ``buckets`` (one per kind of call ``func`` makes).

    Raises:
        OrbitError: the mapped error once retries are exhausted (or at once for non-transient errors).
    """
    delay = 0.5
    for attempt in range(1, attempts + 1):
        for bucket in buckets:
            await bucket.take()
        try:
            return await in_thread(func, *args, **kwargs)
        except Exception as exc:  # mapped by retry_wait; nothing SDK-typed escapes this module
            await asyncio.sleep(retry_wait(exc, what, attempt, attempts, delay))
            delay = min(delay * 2, 30)
    raise AssertionError("unreachable")


def call_blocking(func: Callable[..., T], *args: Any, what: str, buckets: tuple[TokenBucket, ...] = (),
                  attempts: int = 6, **kwargs: Any) -> T:
    """:func:`call` in the calling thread, for a worker thread making a series of calls by itself: the same
    tokens, retries and errors, its waits made in the thread.

    Raises:
        OrbitError: the mapped error once retries are exhausted (or at once for non-transient errors).
    """
    delay = 0.5
    for attempt in range(1, attempts + 1):
        for bucket in buckets:
            bucket.take_blocking()
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # mapped by retry_wait
            time.sleep(retry_wait(exc, what, attempt, attempts, delay))
            delay = min(delay * 2, 30)
    raise AssertionError("unreachable")


def retry_wait(exc: Exception, what: str, attempt: int, attempts: int, delay: float) -> float:
    """The seconds to wait before retrying after ``exc`` (a throttle's Retry-After, capped at 60 s, else
    ``delay``, with jitter); raises the mapped error instead when ``exc`` is not transient or this was the last of
    ``attempts``.

    Raises:
        OrbitError: ``exc`` mapped, saying so when retries are exhausted.
    """
    error = map_error(exc, what)
    transient = isinstance(error, ThrottledError) or (
        isinstance(error, BackendError) and ("answered 5" in error.message or "cannot reach" in error.message)
    )
    if transient and attempt == attempts > 1:  # say it is final, not "retrying"
        message = f"{error.message}; gave up after {attempts} attempts"
        error = (ThrottledError(message, error.retry_after) if isinstance(error, ThrottledError)
                 else BackendError(message))
    if not transient or attempt == attempts:
        raise error from None
    wait = error.retry_after if isinstance(error, ThrottledError) and error.retry_after is not None else delay
    return min(wait, 60) + random.uniform(0, delay / 4)
