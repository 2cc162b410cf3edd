"""What an Azure Container Registry holds now, read from its data plane (decision 0021).

For ``orbit releases --verify``: the registry at ``https://<login server>/v2/``, signed in the way
``az acr login`` does (Azure AD token → ``/oauth2/exchange`` → ``/oauth2/token`` per repository), one
manifest HEAD per tag, whose ``Docker-Content-Digest`` is the digest. For a plan's preflight
(``orbit_ops.fleet.preflight``): each image's config labels, its manifest then its config blob. The
calls go through a bare azure-core pipeline without logging policies, so no token in a body or header
reaches a log; every token received (and a redirect's SAS) is registered as a secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urljoin, urlsplit

from orbit_ops.backends.azure.common import AzureEndpoints, call, credential
from orbit_ops.backends.base import ImageLabels
from orbit_ops.errors import BackendError, ThrottledError
from orbit_ops.redact import redact, register_secret

# What a manifest HEAD accepts: single-platform images and indexes, OCI and Docker.
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)

_DIGEST_SAFE = "/:"  # a digest reference goes into a path as ``sha256:<hex>``, as docker sends it


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
    with _Session(registry, endpoints, token_credential, retry) as session:
        found: dict[tuple[str, str], str | None] = {}
        for repository in dict.fromkeys(repository for repository, _ in wanted):
            access = session.pull_token(repository)
            for name, tag in wanted:
                if name != repository:
                    continue
                what = f"reading {registry}/{repository}:{tag}"
                answer = session.send("HEAD", f"/v2/{quote(repository)}/manifests/{quote(tag)}", what, headers={
                    "Authorization": f"Bearer {access}", "Accept": ", ".join(MANIFEST_TYPES)}, missing_ok=True)
                digest = answer.headers.get("Docker-Content-Digest")
                if answer.status_code == 404:
                    found[(repository, tag)] = None
                elif not digest:
                    raise BackendError(f"{what}: the registry answered {answer.status_code} without a digest")
                else:
                    found[(repository, tag)] = digest
        return found


async def registry_labels(registry: str, endpoints: AzureEndpoints, images: Iterable[tuple[str, str]], *,
                          token_credential: Any = None,
                          retry: Mapping[str, Any] | None = None) -> dict[tuple[str, str], ImageLabels]:
    """The config labels of each ``(repository, tag)`` in ``registry`` now, each read once: its manifest (for an
    index, its linux/amd64 image's), then the config blob it names (followed where the registry redirects it
    to its storage, as ACR does). An image it does not hold, or holds damaged, is answered with why.

    Raises:
        BackendError: the registry could not be reached, or refused the sign-in or the read.
    """
    wanted = list(dict.fromkeys(images))
    if not wanted:
        return {}
    return await call(_labels_blocking, registry, endpoints, wanted, token_credential, dict(retry or {}),
                      what=f"reading image configs from {registry}", attempts=1)


def _labels_blocking(registry: str, endpoints: AzureEndpoints, wanted: list[tuple[str, str]], token_credential: Any,
                     retry: dict[str, Any]) -> dict[tuple[str, str], ImageLabels]:
    with _Session(registry, endpoints, token_credential, retry) as session:
        found: dict[tuple[str, str], ImageLabels] = {}
        for repository in dict.fromkeys(repository for repository, _ in wanted):
            access = session.pull_token(repository)
            for name, tag in wanted:
                if name == repository:
                    found[(repository, tag)] = _labels_of(session, repository, tag, access)
        return found


def _labels_of(session: _Session, repository: str, tag: str, access: str) -> ImageLabels:
    """One image's config labels: manifest (an index's linux/amd64 entry), then the config blob."""
    what = f"reading {session.registry}/{repository}:{tag}"
    auth = {"Authorization": f"Bearer {access}"}
    reference = tag
    for _ in range(2):  # the tag's manifest, and once more if it is an index
        answer = session.send("GET", f"/v2/{quote(repository)}/manifests/{quote(reference, safe=_DIGEST_SAFE)}", what,
                              headers={**auth, "Accept": ", ".join(MANIFEST_TYPES)}, missing_ok=True)
        if answer.status_code == 404:
            return ImageLabels(None, f"not in {session.registry}")
        manifest = _json(answer)
        if not isinstance(manifest.get("manifests"), list):
            break
        entry = _platform_digest(manifest["manifests"])
        if entry is None:
            return ImageLabels(None, f"{repository}:{tag} is an index without a linux/amd64 image")
        reference = entry
    config = manifest.get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        return ImageLabels(None, f"{repository}:{tag}: its manifest names no config")
    blob = session.send("GET", f"/v2/{quote(repository)}/blobs/{quote(digest, safe=_DIGEST_SAFE)}", what,
                        headers=auth, missing_ok=True, redirect=True)
    if blob.status_code == 404:
        return ImageLabels(None, f"{repository}:{tag}: the registry has no config blob {digest}")
    if "sha256:" + hashlib.sha256(blob.content).hexdigest() != digest:
        return ImageLabels(None, f"{repository}:{tag}: its config blob does not match its digest {digest}")
    runtime = _json(blob).get("config")
    labels = runtime.get("Labels") if isinstance(runtime, dict) else None
    return ImageLabels({str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {})


def _platform_digest(entries: list[Any]) -> str | None:
    for entry in entries:
        platform = entry.get("platform") if isinstance(entry, dict) else None
        if isinstance(platform, dict) and (platform.get("os"), platform.get("architecture")) == ("linux", "amd64"):
            digest = entry.get("digest")
            return digest if isinstance(digest, str) else None
    return None


def _json(response: Any) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {}


class _Session:
    """The registry's data plane signed in the way ``az acr login`` is: an Azure AD token exchanged for a refresh
    token, then a pull token per repository. A bare pipeline with no logging policies, every token a secret."""

    def __init__(self, registry: str, endpoints: AzureEndpoints, token_credential: Any, retry: dict[str, Any]) -> None:
        from azure.core import PipelineClient
        from azure.core.pipeline import policies

        self.registry = registry
        self.endpoints = endpoints
        self.base = f"https://{registry}"
        transport = endpoints.transport(self.base)
        self.proxies = transport.pop("proxies")  # no ProxyPolicy in this pipeline: given with each request
        # No logging policies: nothing of these requests (tokens in bodies and headers) reaches a log.
        self.client: Any = PipelineClient(self.base, policies=[
            policies.HeadersPolicy(), policies.UserAgentPolicy("orbit"), policies.RetryPolicy(**retry)], **transport)
        self._credential = token_credential
        self._refresh: str | None = None

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def send(self, method: str, path: str, what: str, *, missing_ok: bool = False, redirect: bool = False,
             **kwargs: Any) -> Any:
        """One request; a 404 is an answer where ``missing_ok``, and one redirect (ACR sends a blob's read to its
        storage, with a SAS) is followed without the registry's token where ``redirect``."""
        from azure.core.rest import HttpRequest

        url = path if path.startswith("https://") else self.base + path
        response = self.client.send_request(HttpRequest(method, url, **kwargs), proxies=self.proxies or None)
        location = response.headers.get("Location")
        if redirect and response.status_code in (301, 302, 303, 307, 308) and location:
            target = urljoin(url, location)
            for values in parse_qs(urlsplit(target).query).values():
                for value in values:
                    register_secret(value)
            response = self.client.send_request(HttpRequest("GET", target), proxies=self.proxies or None)
        if response.status_code >= 400 and not (missing_ok and response.status_code == 404):
            raise _registry_error(response, what, self.registry)
        return response

    def pull_token(self, repository: str) -> str:
        """An access token scoped ``repository:<repository>:pull`` (signing in first, once)."""
        if self._refresh is None:
            source = self._credential if self._credential is not None else credential()
            aad = str(source.get_token(f"{self.endpoints.arm}/.default").token)
            register_secret(aad)
            what = f"signing in to {self.registry}"
            self._refresh = self._token(self.send("POST", "/oauth2/exchange", what, data={
                "grant_type": "access_token", "service": self.registry, "access_token": aad}), "refresh_token", what)
        what = f"asking {self.registry} for pull access to {repository}"
        return self._token(self.send("POST", "/oauth2/token", what, data={
            "grant_type": "refresh_token", "service": self.registry, "scope": f"repository:{repository}:pull",
            "refresh_token": self._refresh}), "access_token", what)

    def _token(self, response: Any, key: str, what: str) -> str:
        value = response.json().get(key) if response.content else None
        if not isinstance(value, str) or not value:
            raise BackendError(f"{what}: {self.registry} answered without a {key}")
        register_secret(value)
        return value


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
