"""The Azure image builder: ACR Tasks quick builds, the flow of ``az acr build``.

One build is five calls and a log to follow (decision 0012):

1. ``registries.get_build_source_upload_url`` → a SAS URL into the registry's build storage and the
   ``relativePath`` that names the upload in the run request;
2. the packed context is uploaded there with azure-storage-blob (streamed from disk; large files go
   up as staged blocks);
3. ``registries.schedule_run`` with a ``DockerBuildRequest`` (``<component>:<version>`` and
   ``<component>:latest``, push enabled, linux/amd64);
4. the run's log is streamed line by line until it is complete
   (:class:`~orbit_ops.backends.azure.acr_log.RunLog`);
5. ``runs.get`` gives the authoritative final state and the pushed digest; ``runs.cancel`` runs when
   the build is cancelled.

This module submits the run and owns the clients; the log follower and the registry's data plane
(:meth:`AcrBuilder.registry_digests`, :mod:`orbit_ops.backends.azure.acr_registry`) are their own modules.

The SDK is azure-mgmt-containerregistry 14.x at api-version 2025-03-01-preview: 15.x dropped the
Tasks operations. Its modules load lazily, blocking calls run in threads via
:func:`orbit_ops.backends.azure.common.call`, and every SDK error leaves this module as an
``orbit_ops`` error. SAS tokens are registered as secrets the moment they are received, and no URL
with its query string is ever put into a message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from orbit_ops.backends.azure.acr_log import LogPolling, RunLog, run_status
from orbit_ops.backends.azure.acr_registry import registry_digests, registry_labels
from orbit_ops.backends.azure.common import ARM_ENDPOINT, AzureEndpoints, call, credential
from orbit_ops.backends.base import BuildRequest, BuiltImage, HeldImage, ImageLabels, RecordedImage
from orbit_ops.build.context import format_size
from orbit_ops.config.model import AzureSettings
from orbit_ops.errors import BackendError, BuildError, OrbitError, ThrottledError
from orbit_ops.redact import redact, register_secret
from orbit_ops.versions import image_tag

API_VERSION = "2025-03-01-preview"
PLATFORM_OS = "Linux"
PLATFORM_ARCHITECTURE = "amd64"
DEFAULT_RUN_TIMEOUT = 3600  # seconds; ACR accepts 300-28800
UPLOAD_BLOCK_SIZE = 4 * 1024 * 1024  # above this the context goes up as staged blocks
SCHEDULE_ATTEMPTS = 6

# What an AcrBuilder made without explicit options uses (``Workspace.builder()`` passes none); a test
# harness may replace them, as it does ``azure_platform.DEFAULT_OPTIONS``.
DEFAULT_POLLING = LogPolling()
DEFAULT_ARM_OPTIONS: Mapping[str, Any] = {}
DEFAULT_BLOB_OPTIONS: Mapping[str, Any] = {}


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
        unchecked = self._unknown_address()
        if unchecked:
            return dict.fromkeys(images, HeldImage(None, unchecked=unchecked))
        held = {image: HeldImage(None, unchecked=f"built in registry {image.registry}, not the configured "
                                                 f"{self.registry}; its image was not checked")
                for image in images if image.registry != self.registry}
        wanted = [image for image in images if image not in held]
        found = await self.registry_digests((image.repository, image.tag) for image in wanted)
        return {**held, **{image: HeldImage(found.get((image.repository, image.tag))) for image in wanted}}

    async def image_labels(self, images: Iterable[RecordedImage]) -> dict[RecordedImage, ImageLabels]:
        """The config labels of each image, read from the registry's data plane: one sign-in, and per distinct
        image its manifest and config blob. Images of another registry, or every image when the registry's
        address is not known (as for :meth:`held_images`), are answered unread.

        Raises:
            BackendError: the registry could not be reached, refused the sign-in or the read.
        """
        images = list(dict.fromkeys(images))
        unknown = self._unknown_address()
        if unknown:
            return dict.fromkeys(images, ImageLabels(None, unknown))
        answered = {image: ImageLabels(None, f"not in the configured registry {self.registry}")
                    for image in images if image.registry != self.registry}
        wanted = [image for image in images if image not in answered]
        retry = {key: value for key, value in self._arm_options.items() if key.startswith("retry_")}
        found = await registry_labels(self.registry, self.endpoints, ((i.repository, i.tag) for i in wanted),
                                      token_credential=self._credential, retry=retry)
        missing = ImageLabels(None, "not answered")
        return {**answered, **{image: found.get((image.repository, image.tag), missing) for image in wanted}}

    def _unknown_address(self) -> str | None:
        """Why the registry's data plane is not asked: another cloud without ``login_server`` (else None)."""
        if not self.settings.login_server and self.endpoints.arm != ARM_ENDPOINT:
            # Another cloud (sovereign, Azure Stack, an emulator): <registry>.azurecr.io would be a guess, and
            # the sign-in would hand that guessed host an Azure AD token of this cloud.
            return (f"image not checked: with arm_endpoint {self.endpoints.arm}, set azure.login_server "
                    f"to the registry's address (it is not {self.registry})")
        return None

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
        """Stream the run's log until it is complete (see :class:`RunLog`); the final run and the log's tail."""
        rg, registry = self.settings.resource_group, self.settings.registry

        async def read_run() -> Any:
            return await call(client.runs.get, rg, registry, run_id, what=f"reading run {run_id}")

        return await RunLog(run_id, self.polling, log_link=lambda: self._log_link(client, run_id),
                            open_blob=self._blob_client, read_run=read_run, log=log).follow()

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
        status = run_status(run)
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
        retry = {key: value for key, value in self._arm_options.items() if key.startswith("retry_")}
        return await registry_digests(self.registry, self.endpoints, images, token_credential=self._credential,
                                      retry=retry)

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


def _register_sas(url: str) -> None:
    """Mask the SAS in ``url`` (the whole query and its signature) wherever it might show up later."""
    query = urlsplit(url).query
    register_secret(query)
    for signature in parse_qs(query).get("sig", []):
        register_secret(signature)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _describe(image: Any) -> str:
    return f"{getattr(image, 'repository', '?')}:{getattr(image, 'tag', '?')}"
