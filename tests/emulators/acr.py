"""ACR Tasks on the HTTPS emulator: quick builds whose runs do real work against real Azurite.

Routes of ``Microsoft.ContainerRegistry`` api-version 2025-03-01-preview, the ones ``az acr build``
uses: ``listBuildSourceUploadUrl`` (a SAS URL into Azurite and its ``relativePath``), ``scheduleRun``
(a ``DockerBuildRequest``, validated as the service does: the source is an uploaded blob, the
Dockerfile is inside its tar.gz, images, push, platform, timeout), ``runs/{id}``,
``runs/{id}/listLogSasUrl`` and ``runs/{id}/cancel``.

A scheduled run is a background thread that goes Queued → Running → Succeeded/Failed/Canceled
(or Timeout). It downloads the uploaded context from Azurite, opens the tar.gz, parses the Dockerfile
with ``orbit_ops.backends.local.dockerfile``, walks its steps (``COPY``/``ADD`` sources must exist in the context;
``RUN exit N`` fails the step with code N) and writes its log line by line into an append blob in
Azurite, as ACR does. It then computes the image: an OCI config over the context's diff_id and the
steps, a manifest over the config and the context layer, and "pushes" the manifest's sha256 under
every image name (``registry`` below). Last, as ACR does, the log blob gets the metadata
``Complete=true`` and the run its final state with ``outputImages``.

The registry's data plane is served too, at the emulator's address (so a workspace whose
``login_server`` is ``127.0.0.1:<port>`` reaches it), the part ``docker pull`` and ``az acr`` use to
read a tag: ``POST /oauth2/exchange`` (an Azure AD token → a refresh token), ``POST /oauth2/token``
(→ an access token scoped ``repository:<name>:pull``) and ``HEAD``/``GET /v2/<name>/manifests/<ref>``
(``Docker-Content-Digest``; 404 ``MANIFEST_UNKNOWN``/``NAME_UNKNOWN`` with the registry's
``{"errors": [...]}`` body), and ``GET /v2/<name>/blobs/<digest>`` for an image's config (its ``Labels``
those of the Dockerfile's LABELs), answered as ACR does with a 307 to the blob in storage behind a SAS
link that takes no registry token. A test moves or deletes a tag by editing :attr:`AcrEmulator.registry`.

Test hooks: :meth:`AcrEmulator.hold` stops runs before a step until released (to cancel mid-run
deterministically); :attr:`AcrEmulator.rewrite` replaces or shrinks the log blob after a step (the
ACR behaviour that makes a naive follower lose or repeat lines); ``step_seconds`` paces the steps;
``log_extra`` lines are written into every run's log after its first step and ``fail_reason`` fails
every run at its first step with that reason (both for secret scans: whatever the service says).
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import gzip
import hashlib
import io
import itertools
import json
import posixpath
import re
import secrets
import shlex
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote

from emulators.azurite import ACCOUNT, ACCOUNT_KEY, Azurite
from emulators.server import Emulator, Request, Response, error
from orbit_ops.backends.local.dockerfile.evaluate import image_settings
from orbit_ops.backends.local.dockerfile.model import Dockerfile, DockerfileError, Instruction
from orbit_ops.backends.local.dockerfile.read import parse_dockerfile

API_VERSION = "2025-03-01-preview"
SOURCE_CONTAINER = "source"
LOG_CONTAINER = "logs"
TERMINAL = frozenset({"Succeeded", "Failed", "Canceled", "Error", "Timeout"})
_PREFIX = (r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
           r"Microsoft\.ContainerRegistry/registries/(?P<reg>[^/]+)")
_IMAGE_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
                         r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_EXIT = re.compile(r"^\s*exit\s+(\d+)\s*$")


class _Stopped(Exception):
    """The run was canceled or timed out while it waited."""


@dataclass
class Hold:
    """Runs stop before step ``step`` until ``release`` is set; ``reached`` is set when one got there."""

    step: int
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@dataclass
class LogRewrite:
    """After step ``after_step`` the log blob is deleted and recreated, as ACR's agent sometimes does.

    ``keep_lines=None``: the new blob holds the same lines (an identical replacement). A number: the
    new blob first holds only that many lines (shorter than what a reader has read), the run waits
    until ``resume`` is set, then the rest is appended again and the run goes on.
    """

    after_step: int
    keep_lines: int | None = None
    done: threading.Event = field(default_factory=threading.Event)
    resume: threading.Event = field(default_factory=threading.Event)


@dataclass
class EmulatedRun:
    run_id: str
    request: dict[str, Any]
    source_blob: str
    log_blob: str
    status: str = "Queued"
    create_time: str = ""
    start_time: str | None = None
    finish_time: str | None = None
    output_images: list[dict[str, str]] = field(default_factory=list)
    error_message: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    log_lines: list[str] = field(default_factory=list)  # every line the run wrote, in order


class AcrEmulator:
    """One registry's ACR Tasks, served by ``emulator`` (see :mod:`emulators.server`)."""

    def __init__(self, emulator: Emulator, azurite: Azurite, *, subscription_id: str, resource_group: str,
                 registry: str, login_server: str, token: str | None = None) -> None:
        self.emulator = emulator
        self.azurite = azurite
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.registry_name = registry
        self.login_server = login_server
        self.token = token
        self.blobs = azurite.service_client()
        for name in (SOURCE_CONTAINER, LOG_CONTAINER):
            container = self.blobs.get_container_client(name)
            if not container.exists():
                container.create_container()
        self.lock = threading.RLock()
        self.uploads: set[str] = set()  # relativePaths handed out
        self.runs: dict[str, EmulatedRun] = {}
        self.registry: dict[str, dict[str, str]] = {}  # repository → tag → manifest digest
        self.manifests: dict[str, bytes] = {}
        self.configs: dict[str, bytes] = {}  # config digest → the image config document
        self._blob_links: set[str] = set()  # the signatures of the storage links handed out for blob reads
        self.issued_sas: list[str] = []  # every SAS query string handed out (for secret scans)
        self.queue_seconds = 0.02
        self.step_seconds = 0.02
        self.holds: list[Hold] = []
        self.rewrite: LogRewrite | None = None
        self.mark_complete = True  # False: the run ends without the log's Complete marker
        self.log_sas_seconds = 3600  # lifetime of the log links handed out
        self.log_extra: list[str] = []  # written into every run's log after its first step
        self.fail_reason: str | None = None  # every run fails at its first step with this reason
        self.issued_tokens: list[str] = []  # registry refresh and access tokens handed out
        self._refresh_tokens: set[str] = set()
        self._access_tokens: dict[str, set[str]] = {}  # token → repositories it may pull
        self._ids = itertools.count(1)
        self._instance = uuid.uuid4().hex[:12]  # Azurite outlives an emulator: keep each one's logs apart
        self._routes: list[Any] = []
        self._register()

    # -- test hooks ---------------------------------------------------------------------------------

    def hold(self, step: int) -> Hold:
        """Make runs wait before ``step`` (1-based) until the returned hold is released."""
        held = Hold(step)
        with self.lock:
            self.holds.append(held)
        return held

    def run(self, run_id: str) -> EmulatedRun:
        with self.lock:
            return self.runs[run_id]

    def wait_idle(self, timeout: float = 10) -> None:
        """Wait until every run's thread has ended."""
        for run in list(self.runs.values()):
            if run.thread is not None:
                run.thread.join(timeout)

    def close(self) -> None:
        """Cancel what still runs, release every hold and take the routes off the server (test teardown)."""
        with self.lock:
            for held in self.holds:
                held.release.set()
            for run in self.runs.values():
                run.cancel.set()
        self.wait_idle()
        self.emulator.routes = [route for route in self.emulator.routes if route not in self._routes]

    # -- routes --------------------------------------------------------------------------------------

    def _register(self) -> None:
        # This instance's routes go first: an ARM emulator shared by several tests may still hold an
        # earlier instance's (``close`` removes them).
        known = len(self.emulator.routes)
        route = self.emulator.route
        route("POST", _PREFIX + r"/listBuildSourceUploadUrl")(self._guarded(self._upload_url))
        route("POST", _PREFIX + r"/scheduleRun")(self._guarded(self._schedule))
        route("GET", _PREFIX + r"/runs/(?P<run>[^/]+)")(self._guarded(self._get_run))
        route("POST", _PREFIX + r"/runs/(?P<run>[^/]+)/listLogSasUrl")(self._guarded(self._log_link))
        route("POST", _PREFIX + r"/runs/(?P<run>[^/]+)/cancel")(self._guarded(self._cancel))
        route("POST", r"/oauth2/exchange")(self._exchange)
        route("POST", r"/oauth2/token")(self._access_token)
        for method in ("HEAD", "GET"):
            route(method, r"/v2/(?P<repo>[a-z0-9._/-]+)/manifests/(?P<ref>[^/]+)")(self._manifest)
        route("GET", r"/v2/(?P<repo>[a-z0-9._/-]+)/blobs/(?P<digest>sha256:[0-9a-f]{64})")(self._blob)
        route("GET", r"/acr-storage/(?P<digest>sha256:[0-9a-f]{64})")(self._blob_storage)
        self._routes = self.emulator.routes[known:]
        self.emulator.routes = self._routes + self.emulator.routes[:known]

    # -- the registry's data plane ---------------------------------------------------------------------

    def _exchange(self, request: Request) -> Response:
        form = _form(request)
        if form.get("grant_type") != "access_token" or form.get("service") != self.login_server:
            return _registry_error(400, "UNSUPPORTED", "grant_type must be access_token and service the login server")
        if not form.get("access_token") or (self.token is not None and form["access_token"] != self.token):
            return _registry_error(401, "UNAUTHORIZED", "the Azure AD access token is invalid")
        token = self._issue("refresh")
        with self.lock:
            self._refresh_tokens.add(token)
        return Response(200, {"refresh_token": token})

    def _access_token(self, request: Request) -> Response:
        form = _form(request)
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") not in self._refresh_tokens:
            return _registry_error(401, "UNAUTHORIZED", "the refresh token is invalid or expired")
        scope = re.fullmatch(r"repository:([a-z0-9._/-]+):(?:pull|pull,push|push,pull)", form.get("scope", ""))
        if scope is None:
            return _registry_error(400, "UNSUPPORTED", f"scope {form.get('scope')!r} is not repository:<name>:pull")
        token = self._issue("access")
        with self.lock:
            self._access_tokens[token] = {scope.group(1)}
        return Response(200, {"access_token": token})

    def _unauthorized(self, request: Request, repository: str) -> Response | None:
        """The registry's 401 with its challenge, unless the request bears a pull token for ``repository``."""
        authorization = request.headers.get("authorization", "")
        allowed = self._access_tokens.get(authorization.removeprefix("Bearer "), set())
        if authorization.startswith("Bearer ") and repository in allowed:
            return None
        challenge = (f'Bearer realm="https://{self.login_server}/oauth2/token",service="{self.login_server}",'
                     f'scope="repository:{repository}:pull"')
        return _registry_error(401, "UNAUTHORIZED", "authentication required", {"Www-Authenticate": challenge})

    def _manifest(self, request: Request) -> Response:
        assert request.match is not None
        repository, reference = request.match.group("repo"), request.match.group("ref")
        refused = self._unauthorized(request, repository)
        if refused is not None:
            return refused
        with self.lock:
            tags = self.registry.get(repository)
            digest = reference if reference.startswith("sha256:") else (tags or {}).get(reference)
            manifest = self.manifests.get(digest or "")
        if tags is None:
            return _registry_error(404, "NAME_UNKNOWN", f"repository {repository} is not known to registry")
        if digest is None or manifest is None or digest not in tags.values():
            return _registry_error(404, "MANIFEST_UNKNOWN", f"manifest tagged by \"{reference}\" is not found")
        media_type = json.loads(manifest)["mediaType"]
        headers = {"Docker-Content-Digest": digest, "Content-Type": media_type}
        return Response(200, manifest if request.method == "GET" else None, headers)

    def _blob(self, request: Request) -> Response:
        """A blob read: as ACR does, a 307 to the blob in the registry's storage, signed (a SAS) for a while."""
        assert request.match is not None
        repository, digest = request.match.group("repo"), request.match.group("digest")
        refused = self._unauthorized(request, repository)
        if refused is not None:
            return refused
        with self.lock:
            held = digest in self.configs and any(
                digest == json.loads(self.manifests[manifest])["config"]["digest"]
                for manifest in (self.registry.get(repository) or {}).values() if manifest in self.manifests)
        if not held:
            return _registry_error(404, "BLOB_UNKNOWN", f"blob {digest} is not known to registry")
        signature = secrets.token_urlsafe(24)
        with self.lock:
            self._blob_links.add(signature)
        location = f"/acr-storage/{digest}?sv=2024-08-04&se=2099-01-01T00%3A00%3A00Z&sp=r&sig={quote(signature)}"
        return Response(307, None, {"Location": location})

    def _blob_storage(self, request: Request) -> Response:
        """The storage end of a blob read: the signed link alone authorizes it (no registry token is sent)."""
        assert request.match is not None
        signature = request.param("sig") or ""
        if signature not in self._blob_links or request.headers.get("authorization"):
            return Response(403, {"error": "AuthenticationFailed: the signature is not valid, or a header is "
                                           "not allowed on a SAS request"})
        with self.lock:
            config = self.configs.get(request.match.group("digest"))
        if config is None:
            return Response(404, {"error": "BlobNotFound"})
        return Response(200, config, {"Content-Type": "application/octet-stream"})

    def _issue(self, kind: str) -> str:
        """A JWT-shaped registry token (what ACR hands out), remembered for secret scans."""
        def part(value: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

        token = ".".join((part({"typ": "JWT", "alg": "RS256"}),
                          part({"iss": self.login_server, "grant": kind, "jti": secrets.token_hex(8)}),
                          secrets.token_urlsafe(32)))
        with self.lock:
            self.issued_tokens.append(token)
        return token

    def _guarded(self, handler: Any) -> Any:
        def guarded(request: Request) -> Response:
            if request.param("api-version") != API_VERSION:
                return error(400, "InvalidApiVersionParameter",
                             f"api-version '{request.param('api-version')}' is not {API_VERSION}")
            authorization = request.headers.get("authorization", "")
            if not authorization.startswith("Bearer ") or (
                    self.token is not None and authorization != f"Bearer {self.token}"):
                return error(401, "InvalidAuthenticationToken", "the access token is missing or invalid")
            assert request.match is not None
            names = request.match.group("sub"), request.match.group("rg").lower(), request.match.group("reg").lower()
            if names != (self.subscription_id, self.resource_group.lower(), self.registry_name.lower()):
                return error(404, "ResourceNotFound", f"registry {request.match.group('reg')} was not found")
            return handler(request)  # type: ignore[no-any-return]

        return guarded

    def _upload_url(self, request: Request) -> Response:
        folder = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M")
        relative = f"{SOURCE_CONTAINER}/{folder}/{uuid.uuid4().hex}.tar.gz"
        with self.lock:
            self.uploads.add(relative)
        url = self._sas_url(SOURCE_CONTAINER, relative.split("/", 1)[1], "cw")
        return Response(200, {"uploadUrl": url, "relativePath": relative})

    def _schedule(self, request: Request) -> Response:
        body = request.json() or {}
        problem = self._invalid(body)
        if problem is not None:
            return error(400, *problem)
        run_id = f"cb{next(self._ids)}"
        relative = body["sourceLocation"]
        run = EmulatedRun(run_id=run_id, request=body, source_blob=relative.split("/", 1)[1],
                          log_blob=f"{self._instance}/{run_id}/rawtext.log", create_time=_now())
        with self.lock:
            self.runs[run_id] = run
        run.thread = threading.Thread(target=self._execute, args=(run,), name=f"acr-run-{run_id}", daemon=True)
        run.thread.start()
        return Response(200, self._run_json(run))

    def _invalid(self, body: dict[str, Any]) -> tuple[str, str] | None:
        """What is wrong with a scheduleRun body, as (code, message), or None."""
        malformed = run_request_problem(body)
        if malformed is not None:
            return "InvalidRequestContent", f"The request content was invalid and could not be deserialized: " \
                                            f"{malformed}"
        if body.get("type") != "DockerBuildRequest":
            return "InvalidRunRequest", f"type '{body.get('type')}' is not DockerBuildRequest"
        relative = body.get("sourceLocation")
        if not isinstance(relative, str) or relative not in self.uploads:
            return "InvalidSourceLocation", "sourceLocation is not a relativePath from listBuildSourceUploadUrl"
        names = body.get("imageNames")
        if not isinstance(names, list) or not names or not all(
                isinstance(name, str) and _IMAGE_NAME.match(name) for name in names):
            return "InvalidImageNames", f"imageNames must be repository:tag names, got {names!r}"
        if body.get("isPushEnabled") is not True:
            return "InvalidRunRequest", "this registry only accepts builds with isPushEnabled: true"
        platform = body.get("platform") or {}
        if str(platform.get("os", "")).lower() != "linux" or platform.get("architecture") != "amd64":
            return "InvalidPlatform", f"platform {platform!r} is not linux/amd64"
        timeout = body.get("timeout")
        if not isinstance(timeout, int) or not 300 <= timeout <= 28800:
            return "InvalidTimeout", f"timeout {timeout!r} is not between 300 and 28800 seconds"
        dockerfile = body.get("dockerFilePath")
        if not isinstance(dockerfile, str) or not dockerfile:
            return "InvalidDockerFilePath", "dockerFilePath is required"
        try:
            context = self._download(relative.split("/", 1)[1])
        except Exception as exc:
            return "SourceNotUploaded", f"nothing was uploaded to {relative}: {type(exc).__name__}"
        try:
            members = _members(context)
        except (tarfile.TarError, OSError, EOFError) as exc:
            return "InvalidSourceLocation", f"the source is not a tar.gz: {exc}"
        if members.get(_normal(dockerfile)) != "file":
            return "DockerfileNotFound", f"dockerFilePath '{dockerfile}' is not a file in the source archive"
        return None

    def _get_run(self, request: Request) -> Response:
        run = self.runs.get(request.match.group("run")) if request.match else None
        if run is None:
            return error(404, "RunNotFound", "no such run")
        with self.lock:
            return Response(200, self._run_json(run))

    def _log_link(self, request: Request) -> Response:
        run = self.runs.get(request.match.group("run")) if request.match else None
        if run is None:
            return error(404, "RunNotFound", "no such run")
        link = self._sas_url(LOG_CONTAINER, run.log_blob, "r", seconds=self.log_sas_seconds)
        return Response(200, {"logLink": link})

    def _cancel(self, request: Request) -> Response:
        run = self.runs.get(request.match.group("run")) if request.match else None
        if run is None:
            return error(404, "RunNotFound", "no such run")
        with self.lock:
            if run.status not in TERMINAL:
                run.status = "Canceled"
                run.finish_time = _now()
            run.cancel.set()
        return Response(200, None)

    def _run_json(self, run: EmulatedRun) -> dict[str, Any]:
        base = (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.ContainerRegistry/registries/{self.registry_name}")
        return {
            "id": f"{base}/runs/{run.run_id}",
            "name": run.run_id,
            "type": "Microsoft.ContainerRegistry/registries/runs",
            "properties": {
                "runId": run.run_id,
                "status": run.status,
                "runType": "QuickBuild",
                "createTime": run.create_time,
                "startTime": run.start_time,
                "finishTime": run.finish_time,
                "lastUpdatedTime": _now(),
                "outputImages": list(run.output_images),
                "platform": run.request.get("platform"),
                "runErrorMessage": run.error_message,
                "provisioningState": "Succeeded",
                "isArchiveEnabled": False,
            },
        }

    # -- the run ---------------------------------------------------------------------------------------

    def _execute(self, run: EmulatedRun) -> None:
        started = time.monotonic()
        log = _LogBlob(self.blobs.get_blob_client(LOG_CONTAINER, run.log_blob), run.log_lines)
        try:
            self._pause(run, self.queue_seconds, started)
            with self.lock:
                if run.status in TERMINAL:
                    raise _Stopped
                run.status, run.start_time = "Running", _now()
            log.create()
            self._build(run, log, started)
            self._finish(run, log, "Succeeded", f"Run ID: {run.run_id} was successful after {_took(started)}")
        except _Stopped:
            state = "Timeout" if not run.cancel.is_set() else "Canceled"
            text = "Run canceled" if state == "Canceled" else f"Run ID: {run.run_id} timed out"
            self._finish(run, log, state, text, error=text)
        except _StepFailed as failed:
            log.line(failed.detail)
            self._finish(run, log, "Failed", f"Run ID: {run.run_id} failed after {_took(started)}. "
                         f"Error: {failed.summary}", error=failed.summary)
        except Exception as exc:  # an emulator fault surfaces as an Error run, with a reason
            self._finish(run, log, "Error", f"Run ID: {run.run_id} errored: {type(exc).__name__}: {exc}",
                         error=f"{type(exc).__name__}: {exc}")

    def _build(self, run: EmulatedRun, log: _LogBlob, started: float) -> None:
        log.line(f"Queued a run with ID: {run.run_id}")
        log.line("Waiting for an agent...")
        log.line(f"{_stamp()} Downloading source code...")
        context = self._download(run.source_blob)
        layer_digest = "sha256:" + hashlib.sha256(context).hexdigest()
        log.line(f"{_stamp()} Finished downloading source code ({len(context)} bytes, {layer_digest})")
        members = _members(context)
        path = _normal(run.request["dockerFilePath"])
        with tarfile.open(fileobj=io.BytesIO(context), mode="r:gz") as archive:
            handle = archive.extractfile(path)
            assert handle is not None
            text = handle.read().decode("utf-8")
        try:
            dockerfile = parse_dockerfile(text, path)
        except DockerfileError as exc:
            raise _StepFailed(f"failed to parse {path}: {exc}", "failed to parse the Dockerfile") from None
        steps = dockerfile.instructions
        for number, instruction in enumerate(steps, 1):
            self._before_step(run, number, started)
            log.line(f"Step {number}/{len(steps)} : {instruction.text}")
            if self.fail_reason is not None:
                raise _StepFailed(self.fail_reason, self.fail_reason)
            self._step(instruction, dockerfile, members, log)
            if number == 1:
                for line in self.log_extra:
                    log.line(line)
            self._after_step(run, number, log, started)
        diff_id = "sha256:" + hashlib.sha256(gzip.decompress(context)).hexdigest()
        config = _canonical({
            "architecture": "amd64", "os": "linux",
            "config": {"Labels": dict(image_settings(dockerfile).labels)},  # what the Dockerfile's LABELs say
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": instruction.text} for instruction in steps],
        })
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        log.line(f"Successfully built {config_digest[7:19]}")
        manifest = _canonical({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest,
                        "size": len(context)}],
        })
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        log.line(f"context digest: {layer_digest}")
        images = []
        for name in run.request["imageNames"]:
            self._pause(run, 0, started)
            repository, tag = name.rsplit(":", 1)
            log.line(f"Pushing image: {self.login_server}/{name}, attempt 1")
            with self.lock:
                self.manifests[digest] = manifest
                self.configs[config_digest] = config
                self.registry.setdefault(repository, {})[tag] = digest
            log.line(f"pushed {self.login_server}/{name} digest: {digest} size: {len(manifest)}")
            images.append({"registry": self.login_server, "repository": repository, "tag": tag, "digest": digest})
        with self.lock:
            run.output_images = images

    def _step(self, instruction: Instruction, dockerfile: Dockerfile, members: dict[str, str], log: _LogBlob) -> None:
        keyword = instruction.keyword
        if keyword == "FROM":
            log.line(f" ---> Using base image {instruction.body.split()[0]}")
        elif keyword in ("COPY", "ADD") and not any(flag.startswith("--from") for flag in instruction.flags):
            words = instruction.json_args or shlex.split(instruction.body)
            for source in words[:-1]:
                if keyword == "ADD" and re.match(r"^[a-z]+://", source):
                    continue
                if not _present(_normal(source), members):
                    raise _StepFailed(
                        f"{keyword} failed: file not found in build context or excluded by .dockerignore: "
                        f"stat {source}: file does not exist", f"{keyword} {source}: not in the build context")
            log.line(f" ---> {hashlib.sha256(instruction.text.encode()).hexdigest()[:12]}")
        elif keyword == "RUN":
            command = " ".join(instruction.json_args) if instruction.json_args else instruction.body
            code = 1 if command.strip() == "false" else int(m.group(1)) if (m := _EXIT.match(command)) else 0
            log.line(f" ---> Running in {uuid.uuid4().hex[:12]}")
            if code:
                raise _StepFailed(f"The command '/bin/sh -c {command}' returned a non-zero code: {code}",
                                  f"failed during run, err: exit status {code}")
        else:
            log.line(f" ---> {hashlib.sha256(instruction.text.encode()).hexdigest()[:12]}")

    def _before_step(self, run: EmulatedRun, number: int, started: float) -> None:
        for held in [held for held in self.holds if held.step == number]:
            held.reached.set()
            while not held.release.wait(0.01):
                self._pause(run, 0, started)
        self._pause(run, self.step_seconds, started)

    def _after_step(self, run: EmulatedRun, number: int, log: _LogBlob, started: float) -> None:
        rewrite = self.rewrite
        if rewrite is None or rewrite.after_step != number or rewrite.done.is_set():
            return
        log.rewrite(rewrite.keep_lines)
        rewrite.done.set()
        if rewrite.keep_lines is not None:
            while not rewrite.resume.wait(0.01):
                self._pause(run, 0, started)
            log.restore(rewrite.keep_lines)

    def _pause(self, run: EmulatedRun, seconds: float, started: float) -> None:
        timeout = int(run.request.get("timeout") or 3600)
        if run.cancel.wait(seconds) or time.monotonic() - started > timeout:
            raise _Stopped

    def _finish(self, run: EmulatedRun, log: _LogBlob, state: str, text: str, *, error: str | None = None) -> None:
        try:
            log.line(text)
            if self.mark_complete:
                log.complete()
        finally:
            with self.lock:
                if run.status not in TERMINAL:
                    run.status = state
                    run.finish_time = _now()
                if error is not None and run.error_message is None:
                    run.error_message = error

    # -- storage -----------------------------------------------------------------------------------------

    def _download(self, blob: str) -> bytes:
        data: bytes = self.blobs.get_blob_client(SOURCE_CONTAINER, blob).download_blob().readall()
        return data

    def _sas_url(self, container: str, blob: str, permission: str, *, seconds: float = 3600) -> str:
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        now = dt.datetime.now(dt.UTC)
        sas = generate_blob_sas(ACCOUNT, container, blob, account_key=ACCOUNT_KEY,
                                permission=BlobSasPermissions.from_string(permission),
                                start=now - dt.timedelta(minutes=5), expiry=now + dt.timedelta(seconds=seconds))
        with self.lock:
            self.issued_sas.append(sas)
        return f"{self.azurite.blob_endpoint}/{container}/{quote(blob)}?{sas}"


def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (first value of each key)."""
    return {key: values[0] for key, values in parse_qs(request.body.decode("utf-8", "replace")).items()}


def _registry_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """The registry API's error shape: ``{"errors": [{"code", "message", "detail"}]}``."""
    return Response(status, {"errors": [{"code": code, "message": message, "detail": None}]}, headers or {})


class _StepFailed(Exception):
    def __init__(self, detail: str, summary: str) -> None:
        super().__init__(summary)
        self.detail = detail
        self.summary = summary


class _LogBlob:
    """The run's append-blob log: one append per line, as the agent streams it."""

    def __init__(self, client: Any, lines: list[str]) -> None:
        self.client = client
        self.lines = lines
        self.created = False

    def create(self) -> None:
        self.client.create_append_blob()
        self.created = True

    def line(self, text: str) -> None:
        if not self.created:
            self.create()
        self.client.append_block((text + "\n").encode("utf-8"))
        self.lines.append(text)

    def rewrite(self, keep: int | None) -> None:
        """Delete the blob and write a new one holding the first ``keep`` lines (all if None)."""
        kept = self.lines if keep is None else self.lines[:keep]
        self.client.delete_blob()
        self.client.create_append_blob()
        if kept:
            self.client.append_block("".join(line + "\n" for line in kept).encode("utf-8"))

    def restore(self, kept: int) -> None:
        """Append again the lines after the first ``kept`` (the rest of a shrunk log)."""
        rest = self.lines[kept:]
        if rest:
            self.client.append_block("".join(line + "\n" for line in rest).encode("utf-8"))

    def complete(self) -> None:
        if not self.created:
            self.create()
        self.client.set_blob_metadata({"Complete": "true"})


def _members(context: bytes) -> dict[str, str]:
    """Paths in the tar.gz → "file", "dir" or "link"."""
    found: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(context), mode="r:gz") as archive:
        for member in archive:
            kind = "file" if member.isfile() else "dir" if member.isdir() else "link"
            found[_normal(member.name)] = kind
    return found


def _normal(path: str) -> str:
    cleaned = posixpath.normpath("/" + path.replace("\\", "/")).lstrip("/")
    return cleaned or "."


def _present(source: str, members: dict[str, str]) -> bool:
    if source == ".":
        return True
    if any(ch in source for ch in "*?["):
        return any(fnmatch.fnmatchcase(name, source) for name in members)
    return source in members or any(name.startswith(source + "/") for name in members)


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y/%m/%d %H:%M:%S")


def _took(started: float) -> str:
    seconds = time.monotonic() - started
    return f"{int(seconds // 60)}m{seconds % 60:.0f}s" if seconds >= 60 else f"{seconds:.1f}s"


_JSON_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "bool": (bool,), "int": (int,), "float": (int, float)}


def run_request_problem(body: Any) -> str | None:
    """What keeps ``body`` from being a ``RunRequest`` of the SDK (14.x, api-version 2025-03-01-preview), or None.

    The SDK's deserializer picks the subtype by ``type`` and refuses values it cannot convert; members it
    does not know, JSON types that do not fit, missing required members and out-of-range values are
    checked against the model's own ``_attribute_map`` and ``_validation`` tables.
    """
    from azure.core.exceptions import DeserializationError
    from azure.mgmt.containerregistry.v2025_03_01_preview import models

    if not isinstance(body, dict):
        return "the body is not a JSON object"
    cls = getattr(models, str(body.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, models.RunRequest)) or cls is models.RunRequest:
        return f"'{body.get('type')}' is not a run request type"
    problem = _model_problem(body, cls, models, "")
    if problem is not None:
        return problem
    try:
        models.RunRequest.deserialize(body)
    except DeserializationError as exc:
        return str(exc).split(". Data:")[0]
    return None


def _model_problem(value: Any, cls: Any, models: Any, where: str) -> str | None:
    if not isinstance(value, dict):
        return f"{where or 'the body'} must be an object ({cls.__name__})"
    attributes = {spec["key"]: (name, spec["type"]) for name, spec in cls._attribute_map.items()}
    for key, member in value.items():
        if key not in attributes:
            return f"{where}{key}: not a member of {cls.__name__}"
        problem = _value_problem(member, attributes[key][1], models, f"{where}{key}")
        if problem is not None:
            return problem
    for name, rules in getattr(cls, "_validation", {}).items():
        key = cls._attribute_map[name]["key"]
        if rules.get("required") and value.get(key) is None:
            return f"{where}{key}: required"
        number = value.get(key)
        if isinstance(number, int) and not rules.get("minimum", number) <= number <= rules.get("maximum", number):
            return f"{where}{key}: {number} is outside {rules.get('minimum')}..{rules.get('maximum')}"
    return None


def _value_problem(value: Any, kind: str, models: Any, where: str) -> str | None:
    if value is None:
        return None
    if kind.startswith("[") and kind.endswith("]"):
        if not isinstance(value, list):
            return f"{where}: must be an array"
        for index, item in enumerate(value):
            problem = _value_problem(item, kind[1:-1], models, f"{where}[{index}]")
            if problem is not None:
                return problem
        return None
    if kind in _JSON_TYPES:
        fits = isinstance(value, _JSON_TYPES[kind]) and not (kind != "bool" and isinstance(value, bool))
        return None if fits else f"{where}: must be {kind}, got {type(value).__name__}"
    model = getattr(models, kind, None)
    if isinstance(model, type):
        return _model_problem(value, model, models, f"{where}.")
    return None
