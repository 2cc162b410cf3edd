"""The one place Orbit touches a private part of azure-core: the response type its own transports build.

Orbit's urllib3 transport (decision 0024) answers with the response class azure-core's transports use for
``azure.core.rest`` requests, ``HttpResponseImpl``: it is what makes a response behave exactly as the SDK
clients expect (``read``, ``iter_bytes``, ``json``, streaming, closing). It lives in a private module,
and Orbit also sets two of its private attributes (the body read whole, the block size a stream is read
in). No other Orbit module names any of them; pyproject.toml pins azure-core to the range they are known
in (``AZURE_CORE_PIN``), and tests/azure/test_core_private.py fails, saying which name went missing, on an
azure-core without them. On such an install Orbit stops at its first Azure client with a message naming
the module and the range, instead of an ImportError from deep inside a command.
"""

from __future__ import annotations

import functools
from typing import Any

from orbit_ops.errors import BackendError

PRIVATE_MODULE = "azure.core.rest._http_response_impl"
PRIVATE_NAME = "HttpResponseImpl"
# The requirement in pyproject.toml's dependencies, word for word (a test compares them).
AZURE_CORE_PIN = "azure-core>=1.30,<2"


def response_class() -> type[Any]:
    """``HttpResponseImpl`` extended with a body read ahead: made with ``content`` (None while the body is
    still to stream) and the keyword arguments of ``HttpResponseImpl`` itself.

    Raises:
        BackendError: the installed azure-core has no ``HttpResponseImpl`` in ``PRIVATE_MODULE``.
    """
    return _response_class()


def block_size(response: Any) -> int:
    """The block size a response of :func:`response_class` streams its body in (from the connection
    configuration, set by ``HttpResponseImpl``)."""
    size: int = response._block_size
    return size


@functools.cache
def _response_class() -> type[Any]:
    try:
        from azure.core.rest._http_response_impl import HttpResponseImpl
    except ImportError:
        raise BackendError(_missing()) from None

    class BufferedResponse(HttpResponseImpl):
        """An ``azure.core.rest.HttpResponse`` whose body was read whole (or is still to stream)."""

        def __init__(self, *, content: bytes | None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._content = content

    return BufferedResponse


def _missing() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = f"azure-core {version('azure-core')}"
    except PackageNotFoundError:
        installed = "the installed azure-core"
    return (f"{installed} has no {PRIVATE_MODULE}.{PRIVATE_NAME}, the private azure-core type Orbit's Azure "
            f"transport builds its responses with; install a release of {AZURE_CORE_PIN}, the range Orbit pins "
            "and is tested with")
