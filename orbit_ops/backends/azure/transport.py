"""The HTTP transport of the fleet-sized Azure clients (Container Apps on ARM, Azure Files): azure-core's
transport interface on urllib3 directly, without requests in between (decision 0024).

azure-core's default transport goes through requests, which on every call prepares the request again
(merging session settings, cookie jars and hooks) before handing it to urllib3: in a sweep of thousands of
calls that was a quarter of the client's CPU, on the one core the GIL lets a process use. This transport
keeps what the SDK clients rely on and drops the rest:

- one urllib3 pool per transport, as many keep-alive connections per host as calls in flight
  (``POOL_THREADS``), no retries and no redirects of its own (the pipeline's policies do both);
- TLS verified against the configured CA bundle, else certifi's (what requests uses), loaded once into one
  TLS context per verification setting, not once per connection (decision 0093);
- the proxy for the URL, read from the environment once (``proxies_for``), HTTP CONNECT tunnels
  through urllib3's ``ProxyManager`` (credentials in the proxy URL become ``Proxy-Authorization``);
- connect and read timeouts from the client's connection configuration, overridable per call;
- urllib3's errors turned into the azure-core errors the retry policy knows: connect failures are
  ``ServiceRequestError`` (safe to retry), failures after the request went out ``ServiceResponseError``.

Bodies are read whole unless the call asks for a stream (``stream=True``), which is then read in the
configured block size and the connection given back at its end. Responses are azure-core's own response
type, a private part of azure-core that only :mod:`~orbit_ops.backends.azure.core_private` touches.
"""

from __future__ import annotations

import functools
from typing import Any


def transport_class() -> type[Any]:
    """The ``PooledTransport`` class, made on first use: it subclasses azure-core's, and importing this
    module must not load the SDK (tests/test_architecture.py)."""
    return _classes()


@functools.cache
def _classes() -> type[Any]:
    import os
    import ssl
    import threading
    from collections.abc import Iterator
    from urllib.parse import unquote, urlsplit

    import urllib3
    from azure.core.configuration import ConnectionConfiguration
    from azure.core.exceptions import (
        DecodeError,
        IncompleteReadError,
        ServiceRequestError,
        ServiceRequestTimeoutError,
        ServiceResponseError,
        ServiceResponseTimeoutError,
    )
    from azure.core.pipeline.transport import HttpTransport
    from azure.core.utils import case_insensitive_dict
    from urllib3.util.ssl_ import create_urllib3_context

    from orbit_ops.backends.azure.core_private import block_size, response_class

    # The response type azure-core's own transports build for `azure.core.rest` requests (private: see
    # core_private); first, so that an azure-core without it stops here, before any request.
    response_type = response_class()

    class PooledTransport(HttpTransport[Any, Any]):
        """An azure-core ``HttpTransport`` on a urllib3 connection pool (see the module docstring)."""

        def __init__(self, *, proxies: dict[str, str] | None = None, pool_size: int = 64, **kwargs: Any) -> None:
            self.connection_config = ConnectionConfiguration(**kwargs)
            self._pool_size = pool_size
            self._proxies = dict(proxies or {})
            # Per origin and TLS verification: a connection pool and False (it takes the path), or a proxy
            # manager and True (it takes the whole URL).
            self._openers: dict[tuple[str, bool | str], tuple[Any, bool]] = {}
            self._contexts: dict[bool | str, ssl.SSLContext] = {}  # per TLS verification: its CA bundle loaded
            self._lock = threading.Lock()

        def __enter__(self) -> PooledTransport:
            return self

        def __exit__(self, *args: Any) -> None:
            self.close()

        def open(self) -> None:
            """Nothing to open: pools are made on first use."""

        def close(self) -> None:
            with self._lock:
                openers = list(self._openers.values())
                self._openers.clear()
            for opener, whole in openers:
                if whole:
                    opener.clear()  # a ProxyManager
                else:
                    opener.close()  # a connection pool

        def send(self, request: Any, **kwargs: Any) -> Any:
            """Send ``request`` and return its response, both of ``azure.core.rest``: what the clients this
            transport is made for send (the legacy pipeline request is only used by storage batches)."""
            config = self.connection_config
            verify = kwargs.pop("connection_verify", config.verify)
            timeout = urllib3.Timeout(connect=kwargs.pop("connection_timeout", config.timeout),
                                      read=kwargs.pop("read_timeout", config.read_timeout))
            stream = bool(kwargs.pop("stream", False))
            if not hasattr(request, "content"):  # the legacy pipeline request has no `.content`
                raise TypeError(f"Orbit's transport sends azure.core.rest requests, not {type(request).__name__}")
            if request.files:
                raise ValueError("multipart form uploads are not supported by Orbit's transport")
            try:
                opener, target = self._opener(request.url, verify)
                raw = opener.urlopen(
                    # `data`: the body as requests' transport reads it (set for every kind of content)
                    request.method, target, body=request.data, headers=dict(request.headers), retries=False,
                    redirect=False, timeout=timeout, preload_content=not stream, decode_content=True)
            # NewConnectionError first: in urllib3 2 it is also a ConnectTimeoutError (refused is not slow).
            except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.SSLError,
                    urllib3.exceptions.ProxyError, urllib3.exceptions.LocationParseError) as exc:
                raise ServiceRequestError(exc, error=exc) from exc
            except urllib3.exceptions.ConnectTimeoutError as exc:
                raise ServiceRequestTimeoutError(exc, error=exc) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise _read_error(exc) from exc
            headers = case_insensitive_dict(raw.headers)  # a repeated header's values joined, as requests does
            content = None if stream else raw.data
            return response_type(request=request, internal_response=raw, status_code=raw.status, headers=headers,
                                 reason=raw.reason or "", content_type=headers.get("content-type"),
                                 block_size=config.data_block_size, stream_download_generator=_stream,
                                 content=content)

        def _opener(self, url: str, verify: bool | str) -> tuple[Any, str]:
            """What sends a request to ``url``, and what of the URL it takes. A direct connection goes to the
            origin's own pool (no URL parsing and pool lookup per call, as a ``PoolManager`` would do);
            one through a proxy to urllib3's ``ProxyManager``, which tunnels HTTPS with CONNECT."""
            end = url.find("/", url.find("//") + 2)
            origin, path = (url, "/") if end < 0 else (url[:end], url[end:])
            key = (origin, verify)
            found = self._openers.get(key)
            if found is None:
                with self._lock:  # calls start on many threads at once: one pool each, not one per thread
                    found = self._openers.get(key) or self._openers.setdefault(key, self._make(origin, verify))
            opener, whole = found
            return opener, url if whole else path

        def _make(self, origin: str, verify: bool | str) -> tuple[Any, bool]:
            sizes: dict[str, Any] = {"maxsize": self._pool_size, "block": False}
            scheme = urlsplit(origin).scheme
            proxy = self._proxies.get(scheme) or self._proxies.get("all")
            if not proxy and scheme != "https":
                return urllib3.connection_from_url(origin, **sizes), False
            tls: dict[str, Any] = {"cert_reqs": "CERT_NONE" if verify is False else "CERT_REQUIRED",
                                   "ssl_context": self._tls_context(verify)}
            if not proxy:
                return urllib3.connection_from_url(origin, **sizes, **tls), False
            if "://" not in proxy:
                proxy = f"http://{proxy}"  # as requests reads a bare host:port
            parts = urlsplit(proxy)
            headers = None
            if parts.username:
                headers = urllib3.make_headers(
                    proxy_basic_auth=f"{unquote(parts.username)}:{unquote(parts.password or '')}")
            return urllib3.ProxyManager(proxy, proxy_headers=headers, num_pools=4, **sizes, **tls), True

        def _tls_context(self, verify: bool | str) -> ssl.SSLContext:
            """The TLS context of every connection verified as ``verify`` says (the caller holds the lock): made
            as urllib3 makes its own for each connection, with the CA bundle (or folder of hashed certificates,
            which REQUESTS_CA_BUNDLE may name, as in requests) and the client certificate loaded into it once.
            urllib3 would load them again for every new connection, and OpenSSL 3 takes about 30 ms of CPU to
            load certifi's bundle: three listings, or a sweep's connections, each paying it (requests keeps one
            preloaded context for the same reason)."""
            found = self._contexts.get(verify)
            if found is not None:
                return found
            try:
                if verify is False:
                    context = create_urllib3_context(cert_reqs=ssl.CERT_NONE)
                else:
                    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
                    bundle = verify if isinstance(verify, str) else _default_bundle()
                    if os.path.isdir(bundle):
                        context.load_verify_locations(capath=bundle)
                    else:
                        context.load_verify_locations(cafile=bundle)
                cert = self.connection_config.cert
                if isinstance(cert, tuple):
                    context.load_cert_chain(cert[0], cert[1])
                elif cert:
                    context.load_cert_chain(cert)
            except OSError as exc:  # ssl.SSLError is one: a bundle or certificate missing or not PEM
                error = urllib3.exceptions.SSLError(exc)  # what urllib3 raised when it loaded them itself
                raise ServiceRequestError(error, error=error) from exc
            self._contexts[verify] = context
            return context

    def _default_bundle() -> str:
        import certifi

        return str(certifi.where())

    def _read_error(exc: Exception) -> Exception:
        """The azure-core error for a failure once the request went out (what requests' transport raises)."""
        if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
            return ServiceResponseTimeoutError(exc, error=exc)
        if isinstance(exc, urllib3.exceptions.DecodeError):
            return DecodeError(exc, error=exc)
        if isinstance(exc, urllib3.exceptions.IncompleteRead) or any(
                isinstance(arg, urllib3.exceptions.IncompleteRead) for arg in exc.args):  # a body cut short
            return IncompleteReadError(exc, error=exc)
        return ServiceResponseError(exc, error=exc)

    def _stream(pipeline: Any = None, response: Any = None, **kwargs: Any) -> Iterator[bytes]:
        """The body of a streamed response in blocks. Read to its end, the connection goes back to the pool;
        left early or failed, it is closed (a connection with body still unread cannot serve another call)."""
        raw: urllib3.BaseHTTPResponse = response.internal_response
        block = block_size(response)
        whole = False
        try:
            yield from raw.stream(block, decode_content=kwargs.get("decompress", True))
            whole = True
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _read_error(exc) from exc
        finally:
            if whole:
                raw.release_conn()
            else:
                raw.close()

    return PooledTransport
