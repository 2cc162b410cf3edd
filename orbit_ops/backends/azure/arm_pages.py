"""ARM listings read as JSON through the SDK client's own pipeline, not turned into SDK models (decision 0071).

azure-mgmt-appcontainers deserialises every listed app into a ``ContainerApp`` model whose attributes are
deserialised again on each access; over a fleet that was about 2 ms of CPU per solution, for the handful of
fields Orbit reads. A listing page is therefore requested with the client's public ``send_request`` (the same
pipeline: credential, retries, transport, user agent) and read as the JSON the service sent; the projections of
:mod:`~orbit_ops.backends.azure.app_documents` and :mod:`~orbit_ops.backends.azure.revision_documents` read the
managed fields from it under their wire names. Writes keep the SDK models, whose validation matters there.

A page is requested as the SDK's paged operations request it: the first at the operation's path with the
client's ``api-version``, the next at the ``nextLink`` the service gave, its query kept and ``api-version``
set again. The body is parsed once, here (the pipeline is asked not to decode it: decision 0080), with the cyclic
garbage collector paused (``bulk_built``: a page of 100 apps is some 30,000 objects, and collections triggered by
them rescanned the fleet read so far, about 5 ms a page on the listing's sequential path; decision 0086); the app
listing reads a page's ``nextLink`` from the end of its body first (:func:`next_link_ahead`), so that the next page
is asked for before this one is parsed (decision 0091). A failure
raises what the SDK would: the error of its ``error_map`` for 401/404/409/304, else
``HttpResponseError`` in ARM's error format, so :func:`~orbit_ops.backends.azure.common.call` maps it alike.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

from orbit_ops.bulk import bulk_built

# The API version of every Container Apps call, given to the client (so the SDK's reads and writes use it
# too) and to the listings read here; tests/azure/test_arm_pages.py checks it is the SDK's own default.
API_VERSION = "2026-07-01"
JsonObject = dict[str, Any]


def segment(value: str) -> str:
    """A path segment quoted as the SDK's serializer quotes one (nothing is safe)."""
    return urllib.parse.quote(value, safe="")


def fetch_page(client: Any, path: str, next_link: str | None) -> bytes:
    """The body of one page of a paged listing: the first (``next_link`` None) at ``path``, else the page
    ``next_link`` names; not parsed (:func:`page_items` reads it).

    Raises:
        HttpResponseError: (or the SDK's subclass for the status) the service did not answer 200.
    """
    from azure.core.rest import HttpRequest

    if not next_link:
        request = HttpRequest("GET", path, params={"api-version": API_VERSION}, headers={"Accept": "application/json"})
    else:
        parsed = urllib.parse.urlparse(next_link)
        params: dict[str, Any] = {key: [urllib.parse.quote(value) for value in values]
                                  for key, values in urllib.parse.parse_qs(parsed.query).items()}
        params["api-version"] = API_VERSION
        request = HttpRequest("GET", urllib.parse.urljoin(next_link, parsed.path), params=params,
                              headers={"Accept": "application/json"})
    return _body(client, request)


def page_items(body: bytes) -> tuple[list[JsonObject], str | None]:
    """A page's items and the link to the next page (None at the last), from its body.

    Raises:
        ValueError: the body is not JSON.
    """
    with bulk_built():
        parsed = json.loads(body)
    items = parsed.get("value") if isinstance(parsed, dict) else None
    link = parsed.get("nextLink") if isinstance(parsed, dict) else None
    return [item for item in items or [] if isinstance(item, dict)], (link if isinstance(link, str) and link else None)


class Unread:
    """What :func:`next_link_ahead` answers when the body's end does not say (the body is to be parsed first)."""


UNREAD = Unread()
# The end of a page whose last member is its nextLink (as ARM writes a page: the items, then the link): the key,
# the link as a JSON string (or null), the page's closing brace, and nothing after but white space.
_TRAILING_LINK = re.compile(rb'"nextLink"[ \t\r\n]*:[ \t\r\n]*("(?:[^"\\\x00-\x1f]|\\.)*"|null)[ \t\r\n]*\}[ \t\r\n]*')


def next_link_ahead(body: bytes) -> str | Unread | None:
    """The link to the next page, read from the end of a page's body without parsing the rest, so that the next
    page can be asked for while this one is parsed: None when the body names no ``nextLink`` at all, the link when
    the body ends with it as the page's last member, else ``UNREAD``. Whoever parses the page compares what this
    answered with the parsed ``nextLink`` (:func:`page_items`): they differ only for a body that is not JSON or
    spells the key with escapes."""
    at = body.rfind(b'"nextLink"')
    if at < 0:
        return None
    found = _TRAILING_LINK.fullmatch(body, at)
    if found is None:
        return UNREAD
    try:
        link = json.loads(found.group(1))
    except ValueError:
        return UNREAD
    return link if isinstance(link, str) and link else None


def _body(client: Any, request: Any) -> bytes:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ResourceNotModifiedError,
        map_error,
    )
    from azure.mgmt.core.exceptions import ARMErrorFormat

    # stream=True: the pipeline's ContentDecodePolicy would otherwise parse the body into a context this call
    # never sees, and the JSON would be parsed twice (decision 0080). The body is read at once below, as the
    # SDK would have; a read cut short raises the SDK's ServiceResponseError, which ``call`` retries.
    response = client.send_request(request, stream=True)
    body: bytes = response.read()
    if response.status_code != 200:
        error_map = {401: ClientAuthenticationError, 404: ResourceNotFoundError, 409: ResourceExistsError,
                     304: ResourceNotModifiedError}
        map_error(status_code=response.status_code, response=response, error_map=error_map)
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)
    return body
