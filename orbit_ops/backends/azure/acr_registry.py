"""What an Azure Container Registry holds now, read from its data plane (decision 0021).

For ``orbit releases --verify``: the registry at ``https://<login server>/v2/``, signed in the way
``az acr login`` does (Azure AD token → ``/oauth2/exchange`` → ``/oauth2/token`` per repository), one
manifest HEAD per tag, whose ``Docker-Content-Digest`` is the digest. The calls go through a bare
azure-core pipeline without logging policies, so no token in a body or header reaches a log; every
token received is registered as a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from orbit_ops.backends.azure.common import AzureEndpoints, call, credential
from orbit_ops.errors import BackendError, ThrottledError
from orbit_ops.redact import redact, register_secret

# What a manifest HEAD accepts: single-platform images and indexes, OCI and Docker.
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


async def registry_digests(registry: str, endpoints: AzureEndpoints, images: Iterable[tuple[str, str]], *,
                           token_credential: Any = None,
                           retry: Mapping[str, Any] | None = None) -> dict[tuple[str, str], str | None]:
    """The manifest digest each ``(repository, tag)`` has in ``registry`` (a login server) now; None where it
    has none. ``token_credential`` signs in (None: :func:`~orbit_ops.backends.azure.common.credential`);
    ``retry`` are ``retry_*`` options of azure-core's ``RetryPolicy``.

    Raises:
        BackendError: the registry could not be reached, refused the sign-in or the read, or answered
            without a digest.
    """
    wanted = list(dict.fromkeys(images))
    if not wanted:
        return {}
    return await call(_digests_blocking, registry, endpoints, wanted, token_credential, dict(retry or {}),
                      what=f"reading image digests from {registry}",
                      attempts=1)  # the pipeline's RetryPolicy retries 429/5xx (honouring Retry-After)


def _digests_blocking(registry: str, endpoints: AzureEndpoints, wanted: list[tuple[str, str]], token_credential: Any,
                      retry: dict[str, Any]) -> dict[tuple[str, str], str | None]:
    from azure.core import PipelineClient
    from azure.core.pipeline import policies
    from azure.core.rest import HttpRequest, HttpResponse

    base = f"https://{registry}"
    # No logging policies: nothing of these requests (tokens in bodies and headers) reaches a log.
    transport = endpoints.transport(base)
    proxies = transport.pop("proxies")  # no ProxyPolicy in this pipeline: given with each request
    client: PipelineClient[Any, Any] = PipelineClient(base, policies=[
        policies.HeadersPolicy(), policies.UserAgentPolicy("orbit"), policies.RetryPolicy(**retry)], **transport)

    def send(method: str, path: str, what: str, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = client.send_request(HttpRequest(method, base + path, **kwargs),
                                                     proxies=proxies or None)
        if response.status_code >= 400 and not (method == "HEAD" and response.status_code == 404):
            raise _registry_error(response, what, registry)
        return response

    def token(response: HttpResponse, key: str, what: str) -> str:
        value = response.json().get(key) if response.content else None
        if not isinstance(value, str) or not value:
            raise BackendError(f"{what}: {registry} answered without a {key}")
        register_secret(value)
        return value

    try:
        source = token_credential if token_credential is not None else credential()
        aad = str(source.get_token(f"{endpoints.arm}/.default").token)
        register_secret(aad)
        what = f"signing in to {registry}"
        refresh = token(send("POST", "/oauth2/exchange", what, data={
            "grant_type": "access_token", "service": registry, "access_token": aad}), "refresh_token", what)
        found: dict[tuple[str, str], str | None] = {}
        for repository in dict.fromkeys(repository for repository, _ in wanted):
            what = f"asking {registry} for pull access to {repository}"
            access = token(send("POST", "/oauth2/token", what, data={
                "grant_type": "refresh_token", "service": registry, "scope": f"repository:{repository}:pull",
                "refresh_token": refresh}), "access_token", what)
            for name, tag in wanted:
                if name != repository:
                    continue
                what = f"reading {registry}/{repository}:{tag}"
                answer = send("HEAD", f"/v2/{quote(repository)}/manifests/{quote(tag)}", what, headers={
                    "Authorization": f"Bearer {access}", "Accept": ", ".join(MANIFEST_TYPES)})
                digest = answer.headers.get("Docker-Content-Digest")
                if answer.status_code == 404:
                    found[(repository, tag)] = None
                elif not digest:
                    raise BackendError(f"{what}: the registry answered {answer.status_code} without a digest")
                else:
                    found[(repository, tag)] = digest
        return found
    finally:
        client.close()


def _registry_error(response: Any, what: str, registry: str) -> BackendError:
    """A registry data-plane refusal as an Orbit error; its body (``{"errors": [...]}``) redacted and cut."""
    status = response.status_code
    try:
        errors = response.json().get("errors") or []
        reason = "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors if isinstance(e, dict))
    except Exception:  # not JSON: the status says enough
        reason = ""
    detail = f" ({redact(' '.join(reason.split()))[:300]})" if reason else ""
    if status == 401:
        return BackendError(f"{what}: authentication failed{detail}; sign in with 'az login', or set "
                            "ORBIT_AZURE_ACCESS_TOKEN to a bearer token for https://management.azure.com")
    if status == 403:
        return BackendError(f"{what}: forbidden{detail}; the identity needs AcrPull (or Reader) on {registry}")
    if status == 429:
        return ThrottledError(f"{what}: throttled by the registry{detail}", None)
    return BackendError(f"{what}: the registry answered {status}{detail}")
