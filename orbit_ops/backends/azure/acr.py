"""The Azure image builder: ACR Tasks quick builds, the flow of ``az acr build``.

One build is five calls and a log to follow (decision 0012):

1. ``registries.get_build_source_upload_url`` → a SAS URL into the registry's build storage and the
   ``relativePath`` that names the upload in the run request;
2. the packed context is uploaded there with azure-storage-blob (streamed from disk; large files go
   up as staged blocks);
3. ``registries.schedule_run`` with a ``DockerBuildRequest`` (``<component>:<version>`` and
   ``<component>:latest``, push enabled, linux/amd64);
4. the run's log, an append blob behind ``runs.get_log_sas_url``, is read incrementally with ranged
   reads and streamed line by line until the blob's ``Complete`` metadata appears (:class:`LogCursor`
   holds the byte cursor and survives the service replacing or shrinking the blob);
5. ``runs.get`` gives the authoritative final state and the pushed digest; ``runs.cancel`` runs when
   the build is cancelled.

:meth:`AcrBuilder.registry_digests` reads what the registry holds now, for ``orbit releases --verify``
(decision 0021): the registry's data plane at ``https://<login server>/v2/``, signed in the way
``az acr login`` does (Azure AD token → ``/oauth2/exchange`` → ``/oauth2/token`` per repository), one
manifest HEAD per tag, whose ``Docker-Content-Digest`` is the digest.

The SDK is azure-mgmt-containerregistry 14.x at api-version 2025-03-01-preview: 15.x dropped the
Tasks operations. Its modules load lazily, blocking calls run in threads via
:func:`orbit_ops.backends.azure.common.call`, and every SDK error leaves this module as an
``orbit_ops`` error. SAS tokens are registered as secrets the moment they are received, and no URL
with its query string is ever put into a message.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from orbit_ops.backends.azure.common import ARM_ENDPOINT, AzureEndpoints, call, credential
from orbit_ops.backends.base import BuildRequest, BuiltImage, HeldImage, RecordedImage
from orbit_ops.build.context import format_size
from orbit_ops.config.load import AzureSettings
from orbit_ops.errors import BackendError, BuildError, OrbitError, ThrottledError
from orbit_ops.redact import redact, register_secret
from orbit_ops.versions import image_tag

API_VERSION = "2025-03-01-preview"
PLATFORM_OS = "Linux"
PLATFORM_ARCHITECTURE = "amd64"
DEFAULT_RUN_TIMEOUT = 3600  # seconds; ACR accepts 300-28800
ALIVE_STATES = frozenset({"Queued", "Started", "Running"})
TAIL_LINES = 12  # log lines quoted in a BuildError
UPLOAD_BLOCK_SIZE = 4 * 1024 * 1024  # above this the context goes up as staged blocks
SCHEDULE_ATTEMPTS = 6
LINK_RENEWALS = 5  # log links refused in a row before the follower gives up
# What a manifest HEAD accepts: single-platform images and indexes, OCI and Docker.
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


@dataclass(frozen=True)
class LogPolling:
    """How the run log is followed; tests shorten the waits.

    ``idle_min``/``idle_max``: the back-off between polls while nothing new arrives (doubling).
    ``status_every``: while idle, ask ``runs.get`` at most this often whether the run still lives.
    ``settle``: once the run has ended, how long to wait for the log's ``Complete`` marker.
    ``chunk``: bytes per ranged read; ``overlap``: bytes re-read before the cursor to prove the
    blob is still the one read so far.
    """

    idle_min: float = 0.2
    idle_max: float = 2.0
    status_every: float = 5.0
    settle: float = 30.0
    chunk: int = 4 * 1024 * 1024
    overlap: int = 64


# What an AcrBuilder made without explicit options uses (``Workspace.builder()`` passes none); a test
# harness may replace them, as it does ``azure_platform.DEFAULT_OPTIONS``.
DEFAULT_POLLING = LogPolling()
DEFAULT_ARM_OPTIONS: Mapping[str, Any] = {}
DEFAULT_BLOB_OPTIONS: Mapping[str, Any] = {}


class LogCursor:
    """A byte cursor over a growing log blob that yields complete lines, each once.

    ``feed`` takes the bytes that follow the cursor and returns the complete lines among them; a
    line without its newline waits for the next read (or :meth:`flush` at the end). :meth:`restart`
    rewinds to byte 0 when the blob was replaced or shrank; the lines read again are then compared
    with those already shown (by digest, 8 bytes a line) and skipped while they agree, so the
    operator sees neither a gap nor a repeat.
    """

    def __init__(self, *, max_line: int = 64 * 1024, overlap: int = 64) -> None:
        self.offset = 0  # bytes of the current blob consumed
        self.created: object | None = None  # the blob's creation time: a new one means a new blob
        self.etag: str | None = None
        self.max_line = max_line
        self.overlap = overlap
        self._tail = b""  # the last ``overlap`` bytes before ``offset``
        self._partial = b""
        self._shown = bytearray()  # 8-byte digests of the lines shown, in order
        self._replay: int | None = None  # after a restart: index into _shown of the next expected line
        self.restarts = 0

    @property
    def shown(self) -> int:
        return len(self._shown) // 8

    def read_from(self) -> int:
        """Where the next ranged read starts: a little before the cursor, to check continuity."""
        return max(0, self.offset - min(self.overlap, len(self._tail)))

    def continues(self, start: int, data: bytes) -> bool:
        """Whether ``data`` (read from ``start``) agrees with the bytes already consumed before the cursor."""
        known = self.offset - start
        return len(data) >= known and data[:known] == self._tail[len(self._tail) - known:]

    def feed(self, data: bytes) -> list[str]:
        """Consume ``data`` (the bytes right after the cursor); return the complete lines in it."""
        self.offset += len(data)
        self._tail = (self._tail + data)[-self.overlap:]
        buffer = self._partial + data
        lines = buffer.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > self.max_line:  # a runaway line is shown in pieces, memory stays bounded
            lines.append(self._partial)
            self._partial = b""
        return self._show(lines)

    def flush(self) -> list[str]:
        """The last line if the log did not end with a newline."""
        rest, self._partial = self._partial, b""
        return self._show([rest]) if rest.strip() else []

    def restart(self) -> None:
        """Rewind to the start of a new blob; lines already shown will not be shown again."""
        self.offset = 0
        self.created = self.etag = None
        self._tail = self._partial = b""
        self._replay = 0
        self.restarts += 1

    def _show(self, raw_lines: list[bytes]) -> list[str]:
        out = []
        for raw in raw_lines:
            line = raw.rstrip(b"\r")
            digest = hashlib.blake2b(line, digest_size=8).digest()
            if self._replay is not None:
                index = self._replay * 8
                if index < len(self._shown) and self._shown[index:index + 8] == digest:
                    self._replay += 1
                    continue
                self._replay = None
            self._shown += digest
            out.append(line.decode("utf-8", errors="replace"))
        return out


class AcrBuilder:
    """Builds on ACR Tasks and pushes ``<login server>/<component>:<version>`` and ``:latest``.

    ``arm_options`` go to the management client (e.g. ``retry_backoff_factor``, ``polling_interval``),
    ``blob_options`` to every blob client (e.g. ``retry_total``, ``initial_backoff``,
    ``increment_base``, ``random_jitter_range``, ``max_single_put_size``); ``connection_verify`` is
    set from the configured CA bundle for both.
    """

    name = "acr"

    def __init__(
        self,
        settings: AzureSettings,
        *,
        token_credential: Any = None,
        polling: LogPolling | None = None,
        run_timeout: int = DEFAULT_RUN_TIMEOUT,
        arm_options: Mapping[str, Any] | None = None,
        blob_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = settings.registry_login_server
        self.endpoints = AzureEndpoints.from_settings(settings)
        self.polling = polling or DEFAULT_POLLING
        self.run_timeout = run_timeout
        self._credential = token_credential
        self._arm_options = dict(DEFAULT_ARM_OPTIONS if arm_options is None else arm_options)
        self._blob_options = dict(DEFAULT_BLOB_OPTIONS if blob_options is None else blob_options)

    async def held_images(self, images: Iterable[RecordedImage]) -> dict[RecordedImage, HeldImage]:
        """What the registry holds under each image's tag: one sign-in and one manifest HEAD each (decision 0021).

        Images built in another registry than the configured one are not read; nor is any when the
        registry's address is not known (a custom ``arm_endpoint`` without ``login_server``).

        Raises:
            BackendError: the registry could not be reached, refused the sign-in or the read.
        """
        images = list(images)
        if not self.settings.login_server and self.endpoints.arm != ARM_ENDPOINT:
            # Another cloud (sovereign, Azure Stack, an emulator): <registry>.azurecr.io would be a guess, and
            # the sign-in would hand that guessed host an Azure AD token of this cloud.
            unchecked = (f"image not checked: with arm_endpoint {self.endpoints.arm}, set azure.login_server "
                         f"to the registry's address (it is not {self.registry})")
            return dict.fromkeys(images, HeldImage(None, unchecked=unchecked))
        held = {image: HeldImage(None, unchecked=f"built in registry {image.registry}, not the configured "
                                                 f"{self.registry}; its image was not checked")
                for image in images if image.registry != self.registry}
        wanted = [image for image in images if image not in held]
        found = await self.registry_digests((image.repository, image.tag) for image in wanted)
        return {**held, **{image: HeldImage(found.get((image.repository, image.tag))) for image in wanted}}

    async def build(self, request: BuildRequest, log: Callable[[str], None]) -> BuiltImage:
        """Upload the context, schedule the run, stream its log and return what it pushed.

        Raises:
            BuildError: the run failed, errored, timed out or was cancelled on the service (its id and
                the last lines of its log are in the message), or reported no digest.
            BackendError: Azure could not be reached or refused a call.
            asyncio.CancelledError: the build was cancelled; the run was asked to cancel first.
        """
        client = await call(self._client, what="connecting to Azure Resource Manager", attempts=1)
        try:
            source = await self._upload(client, request, log)
            run_id = await self._schedule(client, request, source, log)
            try:
                run, tail = await self._follow(client, run_id, log)
            except asyncio.CancelledError:
                await self._cancel(client, run_id, log)
                raise
            except OrbitError:
                # Left alone, the run would push images that no release record describes.
                log(f"lost track of ACR run {run_id}; cancelling it so that it pushes nothing unrecorded")
                await self._cancel(client, run_id, log)
                raise
            return self._result(run, run_id, request, tail, log)
        finally:
            await asyncio.shield(asyncio.to_thread(client.close))

    # -- the five steps -------------------------------------------------------------------------------

    async def _upload(self, client: Any, request: BuildRequest, log: Callable[[str], None]) -> str:
        registry = self.settings.registry
        where = await call(client.registries.get_build_source_upload_url, self.settings.resource_group, registry,
                           what=f"asking {registry} for a build source upload URL")
        url, relative = getattr(where, "upload_url", None), getattr(where, "relative_path", None)
        if not url or not relative:
            raise BackendError(f"{self.settings.registry} returned no build source upload URL")
        _register_sas(url)
        packed = request.context
        log(f"uploading the build context ({format_size(packed.size)}, {packed.digest}) to "
            f"{self.settings.registry}'s build storage at {_host(url)}")
        await call(self._upload_blocking, url, packed.path, packed.size,
                   what=f"uploading the build context to {self.settings.registry}")
        return str(relative)

    def _upload_blocking(self, url: str, path: Any, size: int) -> None:
        from azure.storage.blob import BlobClient

        options = {"max_single_put_size": UPLOAD_BLOCK_SIZE, "max_block_size": UPLOAD_BLOCK_SIZE,
                   **self._blob_kwargs(url)}
        with BlobClient.from_blob_url(url, **options) as blob, open(path, "rb") as data:
            # Reopened on every attempt, so a retried upload starts from the first byte again.
            blob.upload_blob(data, blob_type="BlockBlob", length=size, overwrite=True, max_concurrency=2)

    async def _schedule(self, client: Any, request: BuildRequest, source: str, log: Callable[[str], None]) -> str:
        from azure.mgmt.containerregistry.v2025_03_01_preview.models import DockerBuildRequest, PlatformProperties

        tag = image_tag(request.version)
        names = [f"{request.component}:{tag}", f"{request.component}:latest"]
        body = DockerBuildRequest(
            source_location=source,
            docker_file_path=request.context.dockerfile_in_archive,
            image_names=names,
            is_push_enabled=True,
            platform=PlatformProperties(os=PLATFORM_OS, architecture=PLATFORM_ARCHITECTURE),
            timeout=self.run_timeout,
        )
        # The request may reach the service even if we are cancelled meanwhile: let it finish, so
        # the run it created can be cancelled too.
        task = asyncio.ensure_future(self._schedule_once(client, body))
        try:
            run = await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                late = await asyncio.wait_for(task, timeout=30)
                await self._cancel(client, str(late.run_id), log)
            raise
        run_id = str(run.run_id)
        log(f"scheduled ACR run {run_id} on {self.registry}: build {request.context.dockerfile_in_archive}, "
            f"push {', '.join(f'{self.registry}/{name}' for name in names)} "
            f"({PLATFORM_OS.lower()}/{PLATFORM_ARCHITECTURE}, timeout {self.run_timeout} s)")
        return run_id

    async def _schedule_once(self, client: Any, body: Any) -> Any:
        """scheduleRun is not idempotent (a retried request can start a second run), so only a
        throttled request, which the service did not take, is retried; the SDK's own status retries
        are off for it (``retry_status=0``)."""
        delay = 0.5
        for attempt in range(1, SCHEDULE_ATTEMPTS + 1):
            try:
                registry = self.settings.registry
                return await call(client.registries.schedule_run, self.settings.resource_group, registry, body,
                                  what=f"scheduling the build on {registry}", attempts=1, retry_status=0)
            except ThrottledError as throttled:
                if attempt == SCHEDULE_ATTEMPTS:
                    raise
                wait = throttled.retry_after if throttled.retry_after is not None else delay
                await asyncio.sleep(min(wait, 60))
                delay = min(delay * 2, 30)
        raise AssertionError("unreachable")

    async def _follow(self, client: Any, run_id: str, log: Callable[[str], None]) -> tuple[Any, list[str]]:
        """Stream the run's log until it is complete; then return the final run and the log's tail.

        There is no wall-clock limit while ``runs.get`` says the run is alive: a build may queue for
        a long time. Once the run has ended, the log gets ``settle`` seconds to be marked complete.
        """
        rg, registry, polling = self.settings.resource_group, self.settings.registry, self.polling
        link = await self._log_link(client, run_id)
        blob = await call(self._blob_client, link, what=f"opening the log of run {run_id}", attempts=1)
        cursor = LogCursor(overlap=polling.overlap)
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

        def show(lines: list[str]) -> None:
            for line in lines:
                text = redact(line)
                tail.append(text)
                log(text)

        delay = polling.idle_min
        next_status = time.monotonic() + polling.status_every
        ended_at: float | None = None
        refused = 0  # log links refused in a row
        try:
            while True:
                try:
                    complete, progressed = await self._read_new(blob, cursor, show, log, run_id)
                    refused = 0
                except _LinkExpired:
                    # The SAS expired during a long run: ask for a new link (a fresh one that is refused
                    # too means something else is wrong).
                    refused += 1
                    if refused > LINK_RENEWALS:
                        raise BackendError(f"the log link of run {run_id} was refused {refused} times in a row "
                                           "by the registry's storage") from None
                    if refused > 1:
                        await asyncio.sleep(delay)
                    await asyncio.to_thread(blob.close)
                    link = await self._log_link(client, run_id)
                    blob = await call(self._blob_client, link, what=f"opening the log of run {run_id}", attempts=1)
                    continue
                if complete:
                    show(cursor.flush())
                    break
                if progressed:
                    delay = polling.idle_min
                    continue
                now = time.monotonic()
                if now >= next_status:
                    next_status = now + polling.status_every
                    run = await call(client.runs.get, rg, registry, run_id, what=f"reading run {run_id}")
                    if _status(run) not in ALIVE_STATES:
                        ended_at = ended_at or now
                        if now - ended_at >= polling.settle:
                            show(cursor.flush())
                            log(f"run {run_id} ended ({_status(run)}) but its log was not marked complete "
                                f"within {polling.settle:.0f} s; it may be cut short")
                            break
                await asyncio.sleep(delay)
                delay = min(delay * 2, polling.idle_max)
        finally:
            await asyncio.shield(asyncio.to_thread(blob.close))
        run = await call(client.runs.get, rg, registry, run_id, what=f"reading run {run_id}")
        delay = polling.idle_min
        while _status(run) in ALIVE_STATES:  # the log can be complete a moment before the run is
            await asyncio.sleep(delay)
            delay = min(delay * 2, polling.idle_max)
            run = await call(client.runs.get, rg, registry, run_id, what=f"reading run {run_id}")
        return run, list(tail)

    async def _read_new(self, blob: Any, cursor: LogCursor, show: Callable[[list[str]], None],
                        log: Callable[[str], None], run_id: str) -> tuple[bool, bool]:
        """One poll: read whatever was appended; returns (log complete and fully read, anything read)."""
        what = f"reading the log of run {run_id}"
        props = await call(_properties, blob, what=what)
        if props is None:  # not written yet, or deleted while being replaced
            if cursor.offset:
                self._restarted(cursor, log, run_id, "disappeared")
            return False, False
        size = int(props.size or 0)
        created = getattr(props, "creation_time", None)
        if size < cursor.offset:
            self._restarted(cursor, log, run_id, "shrank")
        elif cursor.created is not None and created is not None and created != cursor.created:
            self._restarted(cursor, log, run_id, "was replaced")
        elif props.etag != cursor.etag and size == cursor.offset and cursor.offset:
            # Same size but a new etag: new metadata (the Complete marker), or a new blob of the same
            # length. Re-reading the bytes before the cursor tells them apart.
            start = cursor.read_from()
            data = await call(_read_range, blob, start, cursor.offset - start, what=what)
            if data is None or not cursor.continues(start, data):
                self._restarted(cursor, log, run_id, "was replaced")
                return False, True  # look again at once, at the new blob
        cursor.created, cursor.etag = created, props.etag
        progressed = False
        while cursor.offset < size:
            start = cursor.read_from()
            data = await call(_read_range, blob, start, min(size, cursor.offset + self.polling.chunk) - start,
                              what=what)
            if data is None or not cursor.continues(start, data):
                self._restarted(cursor, log, run_id, "was replaced")
                return False, True
            fresh = data[cursor.offset - start:]
            if not fresh:
                break
            show(cursor.feed(fresh))
            progressed = True
        complete = _is_complete(props.metadata) and cursor.offset >= size
        return complete, progressed

    def _restarted(self, cursor: LogCursor, log: Callable[[str], None], run_id: str, how: str) -> None:
        if cursor.offset:  # nothing read yet: nothing to say
            log(f"the log of run {run_id} {how} on the service; reading it again from the start "
                f"(the {cursor.shown} lines already shown are not repeated)")
        cursor.restart()

    async def _cancel(self, client: Any, run_id: str, log: Callable[[str], None]) -> None:
        """Best effort, and shielded: the caller is being cancelled and will re-raise."""
        try:
            await asyncio.wait_for(asyncio.shield(call(
                client.runs.cancel, self.settings.resource_group, self.settings.registry, run_id,
                what=f"cancelling run {run_id}", attempts=3)), timeout=30)
            log(f"cancelled ACR run {run_id}")
        except (OrbitError, TimeoutError) as exc:
            log(f"could not cancel ACR run {run_id} ({exc}); cancel it with 'az acr task cancel-run "
                f"-r {self.settings.registry} --run-id {run_id}'")

    def _result(self, run: Any, run_id: str, request: BuildRequest, tail: list[str],
                log: Callable[[str], None]) -> BuiltImage:
        status = _status(run)
        if status != "Succeeded":
            reason = getattr(run, "run_error_message", None)
            detail = f" ({redact(str(reason))})" if reason else ""
            lines = "\n".join(f"    {line}" for line in tail) or "    (the run wrote no log)"
            raise BuildError(f"ACR run {run_id} on {self.registry} ended {status}{detail}; "
                             f"the last lines of its log:\n{lines}")
        tag = image_tag(request.version)
        images = list(getattr(run, "output_images", None) or [])
        ours = [image for image in images if getattr(image, "repository", None) == request.component]
        chosen = next((image for image in ours if getattr(image, "tag", None) == tag), ours[0] if ours else None)
        digest = getattr(chosen, "digest", None)
        if not digest:
            raise BuildError(f"ACR run {run_id} succeeded but reported no digest for {request.component}:{tag} "
                             f"(output images: {', '.join(_describe(image) for image in images) or 'none'})")
        image = f"{self.registry}/{request.component}:{tag}"
        log(f"run {run_id} succeeded: pushed {image} and :latest ({digest})")
        return BuiltImage(image=image, registry=self.registry, digest=str(digest), run_id=run_id)

    # -- what the registry holds ------------------------------------------------------------------------

    async def registry_digests(self, images: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """The manifest digest each ``(repository, tag)`` has in the registry now; None where it has none.

        Raises:
            BackendError: the registry could not be reached, refused the sign-in or the read, or answered
                without a digest.
        """
        wanted = list(dict.fromkeys(images))
        if not wanted:
            return {}
        return await call(self._digests_blocking, wanted, what=f"reading image digests from {self.registry}",
                          attempts=1)  # the pipeline's RetryPolicy retries 429/5xx (honouring Retry-After)

    def _digests_blocking(self, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        from azure.core import PipelineClient
        from azure.core.pipeline import policies
        from azure.core.rest import HttpRequest, HttpResponse

        base = f"https://{self.registry}"
        retry = {key: value for key, value in self._arm_options.items() if key.startswith("retry_")}
        # No logging policies: nothing of these requests (tokens in bodies and headers) reaches a log.
        transport = self.endpoints.transport(base)
        proxies = transport.pop("proxies")  # no ProxyPolicy in this pipeline: given with each request
        client: PipelineClient[Any, Any] = PipelineClient(base, policies=[
            policies.HeadersPolicy(), policies.UserAgentPolicy("orbit"), policies.RetryPolicy(**retry)], **transport)

        def send(method: str, path: str, what: str, **kwargs: Any) -> HttpResponse:
            response: HttpResponse = client.send_request(HttpRequest(method, base + path, **kwargs),
                                                         proxies=proxies or None)
            if response.status_code >= 400 and not (method == "HEAD" and response.status_code == 404):
                raise _registry_error(response, what, self.registry)
            return response

        def token(response: HttpResponse, key: str, what: str) -> str:
            value = response.json().get(key) if response.content else None
            if not isinstance(value, str) or not value:
                raise BackendError(f"{what}: {self.registry} answered without a {key}")
            register_secret(value)
            return value

        try:
            source = self._credential if self._credential is not None else credential()
            aad = str(source.get_token(f"{self.endpoints.arm}/.default").token)
            register_secret(aad)
            what = f"signing in to {self.registry}"
            refresh = token(send("POST", "/oauth2/exchange", what, data={
                "grant_type": "access_token", "service": self.registry, "access_token": aad}), "refresh_token", what)
            found: dict[tuple[str, str], str | None] = {}
            for repository in dict.fromkeys(repository for repository, _ in wanted):
                what = f"asking {self.registry} for pull access to {repository}"
                access = token(send("POST", "/oauth2/token", what, data={
                    "grant_type": "refresh_token", "service": self.registry, "scope": f"repository:{repository}:pull",
                    "refresh_token": refresh}), "access_token", what)
                for name, tag in wanted:
                    if name != repository:
                        continue
                    what = f"reading {self.registry}/{repository}:{tag}"
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

    # -- clients ----------------------------------------------------------------------------------------

    def _client(self) -> Any:
        from azure.mgmt.containerregistry import ContainerRegistryManagementClient

        arm = self.endpoints.arm
        # api_version pins every operation group to 2025-03-01-preview (the client's default profile
        # would send registries.* calls to 2025-04-01, which has no scheduleRun).
        return ContainerRegistryManagementClient(
            self._credential if self._credential is not None else credential(),
            self.settings.subscription_id,
            api_version=API_VERSION,
            base_url=arm,
            credential_scopes=[f"{arm}/.default"],
            **self.endpoints.transport(arm),
            **self._arm_options,
        )

    async def _log_link(self, client: Any, run_id: str) -> str:
        result = await call(client.runs.get_log_sas_url, self.settings.resource_group, self.settings.registry,
                            run_id, what=f"asking for the log of run {run_id}")
        link = getattr(result, "log_link", None)
        if not link:
            raise BackendError(f"run {run_id} has no log link")
        _register_sas(str(link))
        return str(link)

    def _blob_client(self, url: str) -> Any:
        from azure.storage.blob import BlobClient

        return BlobClient.from_blob_url(url, **self._blob_kwargs(url))

    def _blob_kwargs(self, url: str) -> dict[str, Any]:
        return {**self.endpoints.transport(url), **self._blob_options}


class _LinkExpired(BackendError):
    """The log's SAS link was refused (it expired during a long run): ask for a new one."""


def _properties(blob: Any) -> Any:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    try:
        return blob.get_blob_properties()
    except ResourceNotFoundError:
        return None
    except HttpResponseError as exc:
        if exc.status_code == 403:
            raise _LinkExpired("the log link was refused") from None
        raise


def _read_range(blob: Any, offset: int, length: int) -> bytes | None:
    """``length`` bytes from ``offset``; None when the blob vanished or shrank meanwhile."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    if length <= 0:
        return b""
    try:
        data: bytes = blob.download_blob(offset=offset, length=length).readall()
        return data
    except ResourceNotFoundError:
        return None
    except HttpResponseError as exc:
        if exc.status_code == 416:
            return None
        if exc.status_code == 403:
            raise _LinkExpired("the log link was refused") from None
        raise


def _is_complete(metadata: Mapping[str, str] | None) -> bool:
    """ACR marks a finished log with a ``Complete`` metadata entry (key case varies, value = outcome)."""
    return any(key.lower() == "complete" for key in (metadata or {}))


def _status(run: Any) -> str:
    status = getattr(run, "status", None)
    return str(getattr(status, "value", status) or "Unknown")


def _register_sas(url: str) -> None:
    """Mask the SAS in ``url`` (the whole query and its signature) wherever it might show up later."""
    query = urlsplit(url).query
    register_secret(query)
    for signature in parse_qs(query).get("sig", []):
        register_secret(signature)


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


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _describe(image: Any) -> str:
    return f"{getattr(image, 'repository', '?')}:{getattr(image, 'tag', '?')}"
