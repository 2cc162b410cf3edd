"""The ACR Tasks builder over real HTTPS (ACR emulator) and real blob storage (Azurite).

Every build goes through ``orbit_ops.build.pipeline.start_build`` on a workspace with ``backend: azure``: the
real management SDK schedules and follows the run on the emulator, the real blob SDK uploads the
context to and reads the run log from Azurite. The emulated run does real work on what was uploaded
(see ``tests/emulators/acr.py``), so a digest or a log line here was computed, not canned.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from acr_fixtures import DOCKERFILE, LOGIN_SERVER, AcrSetup, acr_environment, azurite_or_fail, on_the_emulated_registry
from emulators.acr import API_VERSION, LogRewrite
from emulators.azurite import Azurite
from emulators.server import Fault, make_certificate
from support import git

from orbit_ops.backends.azure.acr import AcrBuilder
from orbit_ops.backends.azure.acr_log import LogCursor, LogPolling
from orbit_ops.backends.base import BuildRequest
from orbit_ops.build.context import pack_context
from orbit_ops.build.pipeline import plan_build, start_build
from orbit_ops.catalog.releases import load_records
from orbit_ops.errors import BackendError
from orbit_ops.fleet.integrity import verify_records
from orbit_ops.operations.events import Event, LogLine, OperationFinished, to_json
from orbit_ops.operations.runner import OperationRunner

NOTE = re.compile(r"^the log of run \S+ (shrank|was replaced|disappeared) on the service")


@pytest.fixture(scope="module")
def acr_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    azurite = azurite_or_fail(tmp_path_factory.mktemp("azurite"))
    yield azurite
    azurite.stop()


@pytest.fixture(scope="module")
def acr_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("certificate"))


@pytest.fixture
def acr_setup(acr_azurite: Azurite, acr_certificate: tuple[Path, Path], make_workspace: Callable[..., Path],
              monkeypatch: pytest.MonkeyPatch) -> Iterator[AcrSetup]:
    with acr_environment(acr_azurite, acr_certificate, make_workspace, monkeypatch) as setup:
        yield setup


async def collect(runner: OperationRunner, on_event: Any = None, *, timeout: float = 30) -> list[Event]:
    """Run the operation to its end (at most ``timeout`` s), calling ``on_event`` on each event."""
    events: list[Event] = []
    async with asyncio.timeout(timeout), contextlib.aclosing(runner.events()) as stream:
        async for event in stream:
            events.append(event)
            if on_event is not None:
                on_event(event)
    return events


def log_texts(events: list[Event]) -> list[str]:
    return [event.text for event in events if isinstance(event, LogLine)]


def finished(events: list[Event]) -> OperationFinished:
    last = events[-1]
    assert isinstance(last, OperationFinished)
    return last


def assert_streamed_once_in_order(events: list[Event], run_lines: list[str]) -> None:
    """The run's log reached the operation whole: every line once, in order, none in between."""
    texts = [text for text in log_texts(events) if not NOTE.match(text)]
    start = texts.index(run_lines[0])
    assert texts[start:start + len(run_lines)] == run_lines
    for line in run_lines:
        assert texts.count(line) == 1, line


def assert_clean_worktrees(setup: AcrSetup) -> None:
    listed = [line for line in git(setup.root, "worktree", "list", "--porcelain").splitlines()
              if line.startswith("worktree ")]
    assert len(listed) == 1
    tmp = setup.root / ".orbit/tmp"
    assert not tmp.exists() or not any(tmp.iterdir())


def assert_no_secrets(setup: AcrSetup, events: list[Event]) -> None:
    """Neither the SAS tokens handed out nor the bearer token reach the store, the events or a record."""
    secrets = [setup.token, *setup.acr.issued_tokens]
    for sas in setup.acr.issued_sas:
        secrets.append(sas)
        secrets += re.findall(r"(?:^|&)sig=([^&]+)", sas)
    assert len(secrets) >= 3  # the token, and at least the upload SAS with its signature
    haystacks = {"events": json.dumps([to_json(event) for event in events])}
    for folder in (setup.root / ".orbit", setup.workspace.config.releases_dir):
        for path in folder.rglob("*") if folder.exists() else []:
            if path.is_file():
                haystacks[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    for where, text in haystacks.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {where}"
        assert "sig=" not in text, f"a SAS signature leaked into {where}"


async def test_build_runs_on_acr_streams_the_log_and_records_the_release(acr_setup: AcrSetup) -> None:
    ws = acr_setup.workspace
    builder = ws.builder()
    assert isinstance(builder, AcrBuilder) and builder.registry == LOGIN_SERVER

    events = await collect(start_build(ws, plan_build(ws, "agent", "1.0.0")))

    done = finished(events)
    assert done.state == "succeeded", done.error
    run = acr_setup.acr.run("cb1")
    assert run.status == "Succeeded"
    assert_streamed_once_in_order(events, run.log_lines)
    texts = log_texts(events)
    assert "Step 1/7 : FROM python:3.12-slim" in texts and "Step 5/7 : RUN pip install --no-cache-dir -r " \
        "requirements.txt" in texts
    # The context the run downloaded is, byte for byte, the one Orbit packed and uploaded.
    uploaded = next(re.search(r"sha256:[0-9a-f]{64}", t) for t in texts if t.startswith("uploading the build context"))
    assert uploaded is not None and f"context digest: {uploaded.group(0)}" in texts

    digest = acr_setup.acr.registry["agent"]["1.0.0"]
    assert acr_setup.acr.registry["agent"]["latest"] == digest
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    [record] = load_records(ws.config.releases_dir, "agent")
    assert (record.builder, record.image, record.registry, record.digest, record.run_id) == (
        "acr", f"{LOGIN_SERVER}/agent:1.0.0", LOGIN_SERVER, digest, "cb1")
    assert done.result is not None and done.result["digest"] == digest and done.result["status"] == "built"

    request = run.request
    assert request["sourceLocation"].startswith("source/") and request["dockerFilePath"] == "Dockerfile"
    assert request["imageNames"] == ["agent:1.0.0", "agent:latest"]
    assert request["isPushEnabled"] is True and request["timeout"] == 3600
    assert request["platform"] == {"os": "Linux", "architecture": "amd64"}
    calls = [(r.method, r.path.rsplit("/", 1)[-1]) for r in acr_setup.emulator.log]
    assert calls[:3] == [("POST", "listBuildSourceUploadUrl"), ("POST", "scheduleRun"), ("POST", "listLogSasUrl")]
    assert calls[-1] == ("GET", "cb1") and ("POST", "cancel") not in calls
    assert all(f"api-version={API_VERSION}" in r.query for r in acr_setup.emulator.log)
    assert_clean_worktrees(acr_setup)
    assert_no_secrets(acr_setup, events)


async def test_failing_run_fails_the_build_naming_the_run_and_its_last_lines(acr_setup: AcrSetup) -> None:
    acr_setup.release("1.1.0", DOCKERFILE.replace("RUN pip install", "RUN exit 3\nRUN pip install"))
    ws = acr_setup.workspace

    events = await collect(start_build(ws, plan_build(ws, "agent", "1.1.0"), acr_setup.builder()))

    done = finished(events)
    assert done.state == "failed" and done.error is not None
    assert "ACR run cb1" in done.error and "ended Failed" in done.error
    assert "The command '/bin/sh -c exit 3' returned a non-zero code: 3" in done.error
    assert acr_setup.acr.run("cb1").status == "Failed"
    assert_streamed_once_in_order(events, acr_setup.acr.run("cb1").log_lines)
    assert [r.version for r in load_records(ws.config.releases_dir, "agent")] == []
    assert_clean_worktrees(acr_setup)
    assert_no_secrets(acr_setup, events)


async def test_cancelling_the_build_mid_run_cancels_the_remote_run(acr_setup: AcrSetup) -> None:
    hold = acr_setup.acr.hold(step=3)
    ws = acr_setup.workspace
    runner = start_build(ws, plan_build(ws, "agent", "1.0.0"), acr_setup.builder())

    def cancel_once_running(event: Event) -> None:
        if isinstance(event, LogLine) and event.text.startswith("Step 2/7"):
            runner.cancel()

    events = await collect(runner, cancel_once_running)

    assert finished(events).state == "cancelled"
    assert hold.reached.is_set()
    cancels = acr_setup.emulator.requests("POST", r"/runs/cb1/cancel$")
    assert [r.status for r in cancels] == [200]
    assert acr_setup.acr.run("cb1").status == "Canceled"
    assert "cancelled ACR run cb1" in log_texts(events)
    assert load_records(ws.config.releases_dir, "agent") == []
    assert_clean_worktrees(acr_setup)
    assert_no_secrets(acr_setup, events)


@pytest.mark.parametrize("keep_lines", [3, None], ids=["shrunk", "replaced"])
async def test_log_blob_rewritten_mid_run_still_streams_every_line_once(acr_setup: AcrSetup,
                                                                        keep_lines: int | None) -> None:
    rewrite = acr_setup.acr.rewrite = LogRewrite(after_step=2, keep_lines=keep_lines)
    # The run waits before step 2 until the follower has read more than keep_lines lines, so the
    # rewritten blob is shorter than what it read; and before step 4, to give it time to look.
    before_step_2, before_step_4 = acr_setup.acr.hold(step=2), acr_setup.acr.hold(step=4)
    ws = acr_setup.workspace
    runner = start_build(ws, plan_build(ws, "agent", "1.0.0"), acr_setup.builder())
    loop = asyncio.get_running_loop()

    def release_after_the_rewrite_was_seen(event: Event) -> None:
        if not isinstance(event, LogLine):
            return
        if event.text == " ---> Using base image python:3.12-slim":  # 6 lines read
            before_step_2.release.set()
        elif NOTE.match(event.text):  # the follower saw the short blob: let the service restore the rest
            rewrite.resume.set()
        elif event.text.startswith("Step 3/7"):
            # An identical replacement may leave nothing to notice: give the follower a few polls.
            loop.call_later(0.5, before_step_4.release.set)

    events = await collect(runner, release_after_the_rewrite_was_seen)

    assert finished(events).state == "succeeded", finished(events).error
    assert rewrite.done.is_set()
    assert_streamed_once_in_order(events, acr_setup.acr.run("cb1").log_lines)
    if keep_lines is not None:
        assert any(NOTE.match(text) for text in log_texts(events))


async def test_throttled_schedule_run_is_retried_after_retry_after(acr_setup: AcrSetup) -> None:
    acr_setup.emulator.inject(Fault("429", method="POST", path=r"/scheduleRun$", count=1, retry_after=0))
    ws = acr_setup.workspace

    events = await collect(start_build(ws, plan_build(ws, "agent", "1.0.0"), acr_setup.builder()))

    assert finished(events).state == "succeeded", finished(events).error
    scheduled = acr_setup.emulator.requests("POST", r"/scheduleRun$")
    assert [(r.status, r.fault) for r in scheduled] == [(429, "429"), (200, None)]
    assert list(acr_setup.acr.runs) == ["cb1"]


async def test_large_context_goes_up_in_blocks_and_arrives_whole(acr_setup: AcrSetup) -> None:
    acr_setup.release("1.2.0", files={"agent/model.bin": os.urandom(48 * 1024)})
    ws = acr_setup.workspace
    builder = acr_setup.builder(max_single_put_size=16 * 1024, max_block_size=16 * 1024)

    events = await collect(start_build(ws, plan_build(ws, "agent", "1.2.0"), builder))

    assert finished(events).state == "succeeded", finished(events).error
    source = acr_setup.acr.run("cb1").source_blob
    blob = acr_setup.acr.blobs.get_blob_client("source", source)
    committed, _ = blob.get_block_list("committed")
    assert len(committed) >= 3
    texts = log_texts(events)
    uploaded = next(re.search(r"sha256:[0-9a-f]{64}", t) for t in texts if t.startswith("uploading the build context"))
    assert uploaded is not None and f"context digest: {uploaded.group(0)}" in texts


async def test_refused_run_request_is_a_backend_error_naming_the_reason(acr_setup: AcrSetup, tmp_path: Path) -> None:
    context = acr_setup.root / "apps/agent"
    packed = pack_context(context, context / "Dockerfile", tmp_path / "context.tar.gz")
    request = BuildRequest(component="agent", version="1.0.0", tag="agent/v1.0.0", commit="0" * 40,
                           context=dataclasses.replace(packed, dockerfile_in_archive="docker/Dockerfile"),
                           dockerfile=context / "Dockerfile", source="test", run_name="refused")
    lines: list[str] = []

    with pytest.raises(BackendError, match=r"answered 400 \(DockerfileNotFound: dockerFilePath 'docker/Dockerfile'"):
        await acr_setup.builder().build(request, lines.append)

    assert [r.status for r in acr_setup.emulator.requests("POST", r"/scheduleRun$")] == [400]  # not retried
    assert acr_setup.acr.runs == {}


async def test_expired_log_link_is_renewed_and_the_log_goes_on(acr_setup: AcrSetup) -> None:
    acr_setup.acr.log_sas_seconds = 1
    hold = acr_setup.acr.hold(step=3)
    ws = acr_setup.workspace
    loop = asyncio.get_running_loop()

    def outlive_the_link(event: Event) -> None:
        if isinstance(event, LogLine) and event.text.startswith("Step 2/7"):
            loop.call_later(2.2, hold.release.set)

    events = await collect(start_build(ws, plan_build(ws, "agent", "1.0.0"), acr_setup.builder()), outlive_the_link)

    assert finished(events).state == "succeeded", finished(events).error
    assert len(acr_setup.emulator.requests("POST", r"/listLogSasUrl$")) >= 2
    assert_streamed_once_in_order(events, acr_setup.acr.run("cb1").log_lines)
    assert_no_secrets(acr_setup, events)


async def test_run_that_never_marks_its_log_complete_is_not_followed_forever(acr_setup: AcrSetup) -> None:
    acr_setup.acr.mark_complete = False
    ws = acr_setup.workspace
    polling = LogPolling(idle_min=0.02, idle_max=0.05, status_every=0.05, settle=0.3)

    events = await collect(start_build(ws, plan_build(ws, "agent", "1.0.0"), acr_setup.builder(polling)))

    assert finished(events).state == "succeeded", finished(events).error
    assert_streamed_once_in_order(events, acr_setup.acr.run("cb1").log_lines)
    assert any("was not marked complete" in text for text in log_texts(events))


def test_missing_azurite_fails_with_the_command_that_installs_it(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    import emulators.azurite as azurite

    monkeypatch.setattr(azurite, "BINARY", azurite.ROOT / "node_modules/.bin/no-such-azurite")
    with pytest.raises(azurite.AzuriteMissingError, match=r"run `npm ci`"):
        azurite.start_azurite(tmp_path)


# -- the cursor on its own -----------------------------------------------------------------------------


def test_cursor_yields_complete_lines_and_keeps_a_partial_one() -> None:
    cursor = LogCursor()
    assert cursor.feed(b"Step 1/2 : FROM x\r\nStep 2") == ["Step 1/2 : FROM x"]
    assert cursor.feed(b"/2 : RUN y\n") == ["Step 2/2 : RUN y"]
    assert cursor.feed(b"tail without newline") == []
    assert cursor.flush() == ["tail without newline"]
    assert cursor.offset == len(b"Step 1/2 : FROM x\r\nStep 2/2 : RUN y\ntail without newline")


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (b"a\nb\nc\n", b"a\nb\nd\n", ["d"]),  # shrunk to a prefix, then grew differently
        (b"a\nb\nc\n", b"a\nb\nc\nd\n", ["d"]),  # replaced by the same content, grown
        (b"a\nb\n", b"x\na\n", ["x", "a"]),  # a different log: shown, even where lines recur
        (b"a\nb\n", b"", []),
    ],
)
def test_cursor_restart_shows_neither_gap_nor_repeat(before: bytes, after: bytes, expected: list[str]) -> None:
    cursor = LogCursor()
    cursor.feed(before)
    cursor.restart()
    assert cursor.offset == 0
    assert cursor.feed(after) == expected


def test_cursor_continuity_check_spots_a_replaced_blob() -> None:
    cursor = LogCursor(overlap=4)
    cursor.feed(b"line one\nline two\n")
    start = cursor.read_from()
    assert start == cursor.offset - 4
    assert cursor.continues(start, b"two\nline three\n")
    assert not cursor.continues(start, b"TWO\nline three\n")
    assert not cursor.continues(start, b"tw")


def test_cursor_splits_a_runaway_line_to_bound_memory() -> None:
    cursor = LogCursor(max_line=10)
    assert cursor.feed(b"x" * 25) == ["x" * 25]
    assert cursor.feed(b"ok\n") == ["ok"]


# -- what the registry holds: `orbit releases --verify` -------------------------------------------------


async def test_verify_flags_a_moved_and_a_vanished_image_and_passes_an_intact_one(acr_setup: AcrSetup) -> None:
    setup = on_the_emulated_registry(acr_setup)
    setup.release("1.1.0", files={"agent/v11.py": b"x = 11\n"})  # three different images
    setup.release("1.2.0", files={"agent/v12.py": b"x = 12\n"})
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        ws = setup.workspace
        assert finished(await collect(start_build(ws, plan_build(ws, "agent", version), setup.builder()))).state \
            == "succeeded"
    setup.workspace.refresh()
    assert await asyncio.to_thread(verify_records, setup.workspace) == []

    registry = setup.acr.registry["agent"]
    intact = registry["1.0.0"]
    registry["1.1.0"] = registry["1.0.0"]  # the tag was pushed over with another image
    del registry["1.2.0"]  # the tag was deleted (`az acr repository untag`)
    setup.emulator.clear_log()
    problems = {p.record.version: p.problem for p in await asyncio.to_thread(verify_records, setup.workspace)}

    assert set(problems) == {"1.1.0", "1.2.0"}
    assert problems["1.1.0"] == f"registry has {intact[:19]} under :1.1.0, record says " \
        f"{load_records(setup.workspace.config.releases_dir, 'agent')[1].digest[:19]}"
    assert problems["1.2.0"] == f"image {setup.acr.login_server}/agent:1.2.0 is not in the registry any more"
    # One sign-in, one pull token for the repository, one manifest HEAD per record; nothing written.
    calls = [(r.method, r.path, r.status) for r in setup.emulator.log]
    assert calls == [("POST", "/oauth2/exchange", 200), ("POST", "/oauth2/token", 200),
                     ("HEAD", "/v2/agent/manifests/1.0.0", 200), ("HEAD", "/v2/agent/manifests/1.1.0", 200),
                     ("HEAD", "/v2/agent/manifests/1.2.0", 404)]
    assert len(setup.acr.issued_tokens) == 4  # two sign-ins: a refresh and an access token each
    for token in setup.acr.issued_tokens:
        assert token not in json.dumps(problems)


async def test_verify_on_azure_reports_a_rebuild_that_recorded_another_image(acr_setup: AcrSetup) -> None:
    import dataclasses

    from orbit_ops.catalog.releases import append_record

    setup = on_the_emulated_registry(acr_setup)
    ws = setup.workspace
    for force in (False, True):
        assert finished(await collect(start_build(ws, plan_build(ws, "agent", "1.0.0", force=force),
                                                  setup.builder()))).state == "succeeded"
    ws.refresh()
    first, again = load_records(ws.config.releases_dir, "agent")
    assert first.digest == again.digest  # the rebuild reproduced the image: not a problem
    assert await asyncio.to_thread(verify_records, ws) == []

    # A rebuild that was not reproducible: the registry's :1.0.0 now holds another image, and so says the record.
    other = "sha256:" + "e" * 64
    setup.acr.manifests[other] = setup.acr.manifests[first.digest]
    setup.acr.registry["agent"]["1.0.0"] = other
    append_record(ws.config.releases_dir, dataclasses.replace(again, digest=other, run_id="cb99",
                                                              built_at="2030-01-01T00:00:00Z"))
    ws.refresh()
    [problem] = await asyncio.to_thread(verify_records, ws)
    assert problem.record.digest == other and problem.problem == (
        f"2 different digests in 3 records: {first.digest[:19]} (built {again.built_at}), "
        f"{other[:19]} (built 2030-01-01T00:00:00Z, current: the newest record); the registry holds the current one")
    del setup.acr.registry["agent"]["1.0.0"]
    problems = [p.problem for p in await asyncio.to_thread(verify_records, ws)]
    assert problems[1].endswith("; the registry holds none of them (no image under :1.0.0)")


async def test_verify_on_azure_names_the_repository_gone_and_a_refused_sign_in(acr_setup: AcrSetup) -> None:
    setup = on_the_emulated_registry(acr_setup)
    ws = setup.workspace
    assert finished(await collect(start_build(ws, plan_build(ws, "agent", "1.0.0"), setup.builder()))).state \
        == "succeeded"
    ws.refresh()
    del setup.acr.registry["agent"]  # the whole repository was deleted
    [problem] = await asyncio.to_thread(verify_records, ws)
    assert problem.problem.endswith("/agent:1.0.0 is not in the registry any more")

    setup.acr.token = "another-token"  # the registry refuses our Azure AD token
    with pytest.raises(BackendError, match=r"signing in to 127\.0\.0\.1:\d+: authentication failed \(UNAUTHORIZED"):
        await asyncio.to_thread(verify_records, ws)


def test_verify_cli_on_azure_exits_1_naming_the_moved_image(acr_setup: AcrSetup,
                                                             run_cli: Callable[..., tuple[int, str, str]]) -> None:
    setup = on_the_emulated_registry(acr_setup)
    code, out, err = run_cli("-w", str(setup.root), "build", "agent@1.0.0", "--json")
    assert code == 0, err
    built = json.loads(out)
    code, _, err = run_cli("-w", str(setup.root), "releases", "--verify")
    assert (code, err) == (0, "")
    setup.acr.registry["agent"]["1.0.0"] = "sha256:" + "0" * 64
    setup.acr.manifests["sha256:" + "0" * 64] = setup.acr.manifests[built["digest"]]
    code, _, err = run_cli("-w", str(setup.root), "releases", "--verify")
    assert code == 1
    assert f"agent/v1.0.0: registry has sha256:{'0' * 12} under :1.0.0, record says {built['digest'][:19]}" in err


async def test_verify_does_not_guess_the_registry_address_of_another_cloud(acr_setup: AcrSetup) -> None:
    ws = acr_setup.workspace  # arm_endpoint is the emulator, login_server unset: orbitacr.azurecr.io is a guess
    assert finished(await collect(start_build(ws, plan_build(ws, "agent", "1.0.0"), acr_setup.builder()))).state \
        == "succeeded"
    ws.refresh()
    acr_setup.emulator.clear_log()

    [problem] = await asyncio.to_thread(verify_records, ws)

    assert problem.problem == (f"image not checked: with arm_endpoint {acr_setup.server.url}, set "
                               f"azure.login_server to the registry's address (it is not {LOGIN_SERVER})")
    assert acr_setup.emulator.log == []  # no sign-in anywhere: the token goes to no guessed host


# -- a plan's preflight: the image configs' required env -------------------------------------------------

REQUIRING = DOCKERFILE + 'LABEL org.orbit.env.required="SERIAL, REGION"\n'


def _agent_app(registry: str, version: str, **env: str) -> Any:
    from types import MappingProxyType

    from orbit_ops.fleet.resources import App

    return App(name="agent-1a2b3c", image=f"{registry}/agent:{version}", env=MappingProxyType(env),
               registry_server=registry)


async def test_preflight_reads_each_image_config_once_from_the_registry_data_plane(acr_setup: AcrSetup) -> None:
    from orbit_ops.fleet.preflight import check_apps

    setup = on_the_emulated_registry(acr_setup)
    setup.release("1.1.0", dockerfile=REQUIRING)
    for version in ("1.0.0", "1.1.0"):
        ws = setup.workspace
        assert finished(await collect(start_build(ws, plan_build(ws, "agent", version), setup.builder()))).state \
            == "succeeded"
    registry = setup.acr.login_server
    apps = [("acme", "agent", _agent_app(registry, "1.1.0", SERIAL="1")),
            ("globex", "agent", _agent_app(registry, "1.1.0", SERIAL="2", REGION="eu")),
            ("hooli", "agent", _agent_app(registry, "1.1.0")),
            ("initech", "agent", _agent_app(registry, "1.0.0"))]
    setup.emulator.clear_log()

    found = await check_apps(setup.builder(), apps)
    assert {solution: [lack.describe() for lack in lacks] for solution, lacks in found.lacking.items()} == {
        "acme": ["agent 1.1.0 requires REGION, not set"], "hooli": ["agent 1.1.0 requires SERIAL, REGION, not set"]}
    assert found.warnings == ()
    # One sign-in; per distinct image its manifest and its config blob, which ACR serves from its storage behind
    # a SAS link (a redirect followed without the registry's token: the storage end refuses one).
    calls = [(r.method, r.path.split("/blobs/")[0] if "/blobs/" in r.path else r.path.split("/acr-storage/")[0]
              or "storage", r.status) for r in setup.emulator.log]
    assert calls == [("POST", "/oauth2/exchange", 200), ("POST", "/oauth2/token", 200),
                     ("GET", "/v2/agent/manifests/1.1.0", 200), ("GET", "/v2/agent", 307), ("GET", "storage", 200),
                     ("GET", "/v2/agent/manifests/1.0.0", 200), ("GET", "/v2/agent", 307), ("GET", "storage", 200)]


async def test_preflight_on_azure_warns_once_for_a_gone_image_and_a_refused_sign_in(acr_setup: AcrSetup) -> None:
    from orbit_ops.fleet.preflight import check_apps

    setup = on_the_emulated_registry(acr_setup)
    ws = setup.workspace
    assert finished(await collect(start_build(ws, plan_build(ws, "agent", "1.0.0"), setup.builder()))).state \
        == "succeeded"
    registry = setup.acr.login_server
    apps = [("acme", "agent", _agent_app(registry, "1.0.0")), ("globex", "agent", _agent_app(registry, "9.9.9"))]

    found = await check_apps(setup.builder(), apps)
    assert found.lacking == {}
    assert found.warnings == (f"config of 1 image(s) not read, not checked (agent:9.9.9): not in {registry}",)

    setup.acr.token = "another-token"  # the registry refuses our Azure AD token: one warning, the plan goes on
    found = await check_apps(setup.builder(), apps)
    [warning] = found.warnings
    assert warning.startswith(f"image configs not read, nothing checked: signing in to {registry}: authentication "
                              "failed (UNAUTHORIZED")
    for secret in [setup.token, *setup.acr.issued_tokens]:
        assert secret not in warning
