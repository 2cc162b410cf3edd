"""One secrets scan over every output path: CLI, console, store, records, files, logs and errors.

Secrets go in through every input path:

- the environment: ``ORBIT_AZURE_ACCESS_TOKEN`` (a bearer token) and ``ORBIT_STORAGE_ACCOUNT_KEY``;
- the config: ``defaults.env`` in ``orbit.yaml`` holds a SAS URL, a connection string with the account
  key and a ``Bearer`` header value (they go into the apps' environment, which is what they are for);
  every solution's env holds secrets known only by their variable's *name*: ``DB_PASSWORD``,
  ``API_TOKEN`` and ``STRIPE_LIVE`` (named in ``secret_env_names``), with values of no secret shape;
- the services' answers: the ACR run's log (a SAS URL, an ``Authorization`` header, an ``AccountKey=``
  pair), the run's error message, an ARM error body, an Azure Files XML error body and a registry
  sign-in refusal, each quoting SAS query strings, account keys and bearer tokens (known ones, and
  ones the process never saw, which only the shape rules can catch); the SAS links the emulated
  registry hands out for the upload and the log, and its registry tokens.

Then ``build`` (succeeding and failing), ``provision``, ``status``, ``roll``, ``logs`` and
``releases --verify`` run against the emulators, each with and without ``--json``, and the console
(``OrbitApp.run_test``) shows the components, tags, solutions, a solution's detail, the operations and
the log view of every operation. None of the secrets (raw, URL-encoded or JSON-escaped) may appear in
stdout/stderr, warnings logged, exception text, any file under ``.orbit/`` (operation logs and the
SQLite store), the release records, the solution files, or the text on the screens; and every URL in
any of them is cut at ``?``.

It takes about 15 s (the console part about 5 s).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import secrets
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote

import pytest
from acr_fixtures import azurite_or_fail
from emulators.acr import AcrEmulator
from emulators.server import Request, Response, error
from support import git, report, screen_text

from orbit_ops.backends.azure import acr as azure_acr
from orbit_ops.backends.azure.acr_log import LogPolling
from orbit_ops.errors import OrbitError
from orbit_ops.fleet.integrity import verify_records
from orbit_ops.names import solution_hash
from orbit_ops.operations.store import OperationStore
from orbit_ops.redact import MASK, clear_registered_secrets
from orbit_ops.workspace import Workspace

pytestmark = pytest.mark.resilience

Run = Callable[..., tuple[int, str, str]]
SOLUTIONS = 4


def _b64(size: int) -> str:
    return base64.b64encode(secrets.token_bytes(size)).decode()


def _sas() -> str:
    return ("sv=2024-08-04&ss=bf&srt=sco&sp=rwdlacup&se=2030-01-01T00:00:00Z&st=2026-01-01T00:00:00Z&spr=https"
            f"&sig={quote(_b64(32), safe='')}")


# Known to the process (environment) and unknown to it (only in what the services say).
BEARER = "orbit-bearer-" + secrets.token_urlsafe(24)
ACCOUNT_KEY = _b64(64)  # 88 characters, as Azure's
SAS = _sas()
OTHER_BEARER = "svc-bearer-" + secrets.token_urlsafe(24)
OTHER_KEY = _b64(64)
OTHER_SAS = _sas()
# Values with no secret shape: only the variable's name says they are secrets (one set per solution).
NAMED = [(f"hunter3-rotated-{index}", f"tok-SEKRIT-777-{index}", f"plain-stripe-{index}x")
         for index in range(SOLUTIONS)]
LEAKY = (f"see https://orbitfiles.blob.core.windows.net/ctx/src.tar.gz?{OTHER_SAS} with AccountKey={OTHER_KEY}; "
         f"Authorization: Bearer {OTHER_BEARER}; caller token Bearer {BEARER}; key {ACCOUNT_KEY}; "
         f"sas https://orbitfiles.file.core.windows.net/share?{SAS}; template env DB_PASSWORD={NAMED[1][0]} "
         f"API_TOKEN={NAMED[1][1]} STRIPE_LIVE={NAMED[1][2]} (echoed as {NAMED[0][0]}, {NAMED[0][1]})")


def forms(secret: str) -> set[str]:
    """The ways a secret could be written down: raw, URL-encoded, URL-decoded, JSON-escaped."""
    return {form for form in (secret, quote(secret, safe=""), quote_plus(secret, safe=""), unquote(secret),
                              json.dumps(secret)[1:-1]) if len(form) >= 8}


def sas_parts(query: str) -> set[str]:
    """A SAS query string and its signature, in every form."""
    signature = re.search(r"(?:^|&)sig=([^&]+)", query)
    assert signature is not None
    return forms(query) | forms(signature.group(1))


_URL_WITH_QUERY = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s?#\"'<>`]*\?(?!<redacted>)[^\s\"'<>`]")


def leaks(text: str, secret_forms: set[str], *, urls: bool = True) -> list[str]:
    found = sorted(form[:16] + "…" for form in secret_forms if form in text)
    if urls:
        found += [f"URL not cut at '?': {m.group(0)[:60]}" for m in _URL_WITH_QUERY.finditer(text)]
    return found


@contextlib.contextmanager
def front_route(server: Any, method: str, pattern: str, handler: Callable[[Request], Response]) -> Iterator[None]:
    """Answer matching requests with ``handler`` before the emulator's own routes (the service says X)."""
    entry = (method, re.compile(pattern + r"$", re.IGNORECASE), handler)
    server.routes.insert(0, entry)
    try:
        yield
    finally:
        server.routes.remove(entry)


def arm_refusal(request: Request) -> Response:
    return error(400, "ContainerAppInvalidRequest", f"the template was refused: {LEAKY}")


def files_refusal(request: Request) -> Response:
    body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationFailure</Code>'
            f"<Message>This request is not authorized. {LEAKY}</Message></Error>").encode()
    return Response(403, body, {"Content-Type": "application/xml", "x-ms-error-code": "AuthorizationFailure"})


def registry_refusal(request: Request) -> Response:
    return Response(401, {"errors": [{"code": "UNAUTHORIZED", "message": f"token rejected: {LEAKY}"}]})


@pytest.fixture
def workspace(make_azure_workspace: Callable[..., Path], emulators: Any, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, AcrEmulator]]:
    """An azure workspace on the emulators with secrets in its environment and config, agent/v1.2.0 tagged."""
    monkeypatch.setenv("ORBIT_AZURE_ACCESS_TOKEN", BEARER)
    monkeypatch.setenv("ORBIT_STORAGE_ACCOUNT_KEY", ACCOUNT_KEY)
    emulators.arm.token = BEARER
    monkeypatch.setattr(azure_acr, "DEFAULT_POLLING",
                        LogPolling(idle_min=0.02, idle_max=0.1, status_every=0.2, settle=2.0))
    monkeypatch.setattr(azure_acr, "DEFAULT_ARM_OPTIONS", {"retry_backoff_factor": 0, "polling_interval": 0})
    monkeypatch.setattr(azure_acr, "DEFAULT_BLOB_OPTIONS",
                        {"initial_backoff": 0, "increment_base": 0, "random_jitter_range": 0})
    azurite = azurite_or_fail(tmp_path / "azurite")
    address = emulators.arm_url.removeprefix("https://")
    settings = emulators.settings()
    acr = AcrEmulator(emulators.arm_server, azurite, subscription_id=settings.subscription_id,
                      resource_group=settings.resource_group, registry=settings.registry, login_server=address,
                      token=BEARER)
    try:
        root = make_azure_workspace(SOLUTIONS)
        config = (root / "orbit.yaml").read_text().replace("  share_quota_gib: 100\n", (
            "  share_quota_gib: 100\n  env:\n    orbit:\n"
            f"      BLOB_URL: 'https://orbitfiles.blob.core.windows.net/data?{SAS}'\n"
            f"      STORAGE: 'DefaultEndpointsProtocol=https;AccountName=orbitfiles;AccountKey={ACCOUNT_KEY}'\n"
            f"      UPSTREAM_AUTH: 'Bearer {BEARER}'\n"))
        (root / "orbit.yaml").write_text(config + f"  login_server: '{address}'\nsecret_env_names: ['stripe_*']\n")
        for index, (password, token, stripe) in enumerate(NAMED):
            path = root / "solutions" / f"customer-{index:02d}.yaml"
            path.write_text(path.read_text() + f"  agent: {{DB_PASSWORD: {password}, API_TOKEN: {token}, "
                                               f"STRIPE_LIVE: {stripe}, LOG_LEVEL: debug}}\n")
        context = root / "apps" / "agent"
        (context / "agent").mkdir(parents=True)
        (context / "agent" / "__main__.py").write_text("print('agent')\n")
        (context / "Dockerfile").write_text('FROM python:3.12-slim\nCOPY agent/ /srv/agent/\nCMD ["python", "-m", '
                                            '"agent"]\n')
        (root / ".gitignore").write_text(".orbit/\n")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "agent")
        for version in ("1.2.0", "1.3.0"):
            git(root, "tag", "-a", f"agent/v{version}", "-m", f"agent {version}")
        yield root, acr
    finally:
        acr.close()
        azurite.stop()
        clear_registered_secrets()


def test_no_secret_reaches_any_output(workspace: tuple[Path, AcrEmulator], emulators: Any, run_cli: Run,
                                            caplog: pytest.LogCaptureFixture) -> None:
    root, acr = workspace
    caplog.set_level(logging.WARNING)
    outputs: dict[str, str] = {}

    def cli(*args: str) -> tuple[int, str, str]:
        clear_registered_secrets()  # each command as in a fresh process: nothing masked from an earlier one
        code, out, err = run_cli("-w", str(root), *args)
        number = sum(1 for name in outputs if name.startswith("orbit ")) // 2 + 1
        outputs[f"orbit {' '.join(args)} #{number} (stdout)"] = out
        outputs[f"orbit {' '.join(args)} #{number} (stderr)"] = err
        return code, out, err

    acr.log_extra = [f"fetching https://orbitfiles.blob.core.windows.net/ctx/src.tar.gz?{OTHER_SAS}",
                     f"Authorization: Bearer {OTHER_BEARER}", f"AccountKey={OTHER_KEY}", f"echo {LEAKY}"]
    for json_flag in ((), ("--json",)):
        code, _, err = cli("build", "agent@1.2.0", "--force", *json_flag)
        assert code == 0, err
    acr.fail_reason = f"failed to push: {LEAKY}"
    for json_flag in ((), ("--json",)):
        code, out, err = cli("build", "agent@1.3.0", *json_flag)
        assert code != 0 and "ACR run" in out + err, out + err
    acr.fail_reason = None

    # One solution's apps are refused by ARM, another's share by Azure Files, with secrets in the bodies.
    refused_apps = rf".*/containerApps/[a-z]+-{solution_hash('customer-01')}"
    with front_route(emulators.arm_server, "PUT", refused_apps, arm_refusal), \
            front_route(emulators.files_server, "PUT", r"/[^/]+/[^/]*customer-02[^/]*", files_refusal):
        for json_flag in ((), ("--json",)):
            code, out, err = cli("provision", "--all", "--yes", *json_flag)
            assert code != 0, out + err
        for json_flag in ((), ("--json",)):
            cli("status", *json_flag)
        for json_flag in ((), ("--json",)):
            cli("roll", "agent", "1.2.0", "--all", "--yes", *json_flag)
    for json_flag in ((), ("--json",)):
        code, _, err = cli("status", *json_flag)
    for json_flag in ((), ("--json",)):
        code, out, err = cli("releases", "--verify", *json_flag)  # the fixture's records have no tags: exit 1
        assert "agent/v1.2.0" not in err, out + err  # the build's record matches the registry
    with front_route(emulators.arm_server, "POST", r"/oauth2/exchange", registry_refusal):
        code, out, err = cli("releases", "--verify")
        assert code != 0 and "authentication failed" in out + err, out + err

    with OperationStore(root / ".orbit") as store:
        operations = store.list()
    for operation in operations:
        for json_flag in ((), ("--json",)):
            cli("logs", operation.id, *json_flag)
    assert {o.kind for o in operations} >= {"build", "sweep"}
    assert sum(1 for o in operations if o.state == "failed") >= 2, [(o.kind, o.state) for o in operations]

    # The errors themselves, as raised to a caller of the engine (message and formatted traceback).
    clear_registered_secrets()
    with front_route(emulators.arm_server, "POST", r"/oauth2/exchange", registry_refusal), \
            pytest.raises(OrbitError) as raised:
        verify_records(Workspace.open(root))
    outputs["exception: releases --verify refused"] = "".join(traceback.format_exception(raised.value))

    # The console over the same workspace: every screen's text.
    outputs.update(asyncio.run(console_screens(root, [o.id for o in operations])))

    for index, record in enumerate(caplog.records):
        outputs[f"log record {index} {record.name}"] = record.getMessage()
    for folder in (root / ".orbit", root / "releases", root / "solutions"):
        for path in folder.rglob("*"):
            if path.is_file() and "worktrees" not in path.parts:
                outputs[str(path.relative_to(root))] = path.read_bytes().decode("utf-8", errors="replace")

    secret_forms = forms(BEARER) | forms(ACCOUNT_KEY) | forms(OTHER_BEARER) | forms(OTHER_KEY)
    secret_forms |= {form for named in NAMED for value in named for form in forms(value)}
    secret_forms |= sas_parts(SAS) | sas_parts(OTHER_SAS)
    for issued in acr.issued_sas:
        secret_forms |= sas_parts(issued)
    for token in acr.issued_tokens:
        secret_forms |= forms(token)
    assert len(acr.issued_sas) >= 8 and len(acr.issued_tokens) >= 4  # uploads, log links, registry tokens

    # The scan looks where the secrets were: the services did say them, and the outputs are not empty.
    assert any(f"AccountKey={OTHER_KEY}" in line for run in acr.runs.values() for line in run.log_lines)
    assert any("ACR run" in text and "failed to push" in text for text in outputs.values())
    assert any("ContainerAppInvalidRequest" in text for text in outputs.values())
    assert any("AuthorizationFailure" in text for text in outputs.values())
    assert sum(1 for name in outputs if name.startswith("screen ")) >= 6
    assert any(name.endswith(".jsonl") for name in outputs)
    assert any(name.endswith("operations.sqlite") for name in outputs)

    # The solution files hold the name-matched values: that is where an operator wrote them.
    named_forms = {form for named in NAMED for value in named for form in forms(value)}
    found = {where: problems for where, text in outputs.items()
             if (problems := leaks(text, secret_forms - named_forms if where.startswith("solutions/") else secret_forms,
                                   urls=not where.startswith("rows joined")))}
    # And the scan looks where those were: the console showed each solution's env (masked), ARM echoed them.
    assert all(f"DB_PASSWORD={MASK}" in outputs[f"screen solution {index} (SolutionScreen)"]
               for index in range(SOLUTIONS))
    assert any("template env DB_PASSWORD=" in text for text in outputs.values())
    kinds = {"command outputs": "orbit ", "screens": "screen ", "files under .orbit": ".orbit/",
             "records": "releases/", "solution files": "solutions/", "log records": "log record ",
             "exceptions": "exception: "}
    report("secrets scan", secret_forms=len(secret_forms), issued_sas=len(acr.issued_sas),
           issued_tokens=len(acr.issued_tokens), leaks=len(found),
           **{kind: sum(1 for name in outputs if name.startswith(prefix)) for kind, prefix in kinds.items()})
    assert found == {}, json.dumps(found, indent=1) + "\n" + "\n".join(sorted(found))



async def console_screens(root: Path, op_ids: list[str]) -> dict[str, str]:
    """The text of the console's screens over ``root``: components, tags, solutions, each solution's
    detail, operations, and every operation's log."""
    from textual.pilot import Pilot

    from orbit_tui.app import OrbitApp

    texts: dict[str, str] = {}
    clear_registered_secrets()
    app = OrbitApp(Workspace.open(root), refresh_seconds=3600)

    async def settle(pilot: Pilot[None]) -> None:
        await pilot.pause()
        for _ in range(3):
            await asyncio.gather(*(w.wait() for w in list(pilot.app.workers)), return_exceptions=True)
            await pilot.pause()

    def capture(name: str) -> None:
        screen = app.screen
        strips = screen._compositor.render_strips()
        whole = "\n".join(strip.text for strip in strips)
        # A secret wrapped over two rows of a widget would escape a search of the rows: also read each
        # leaf widget's rows run together, its padding dropped.
        runs = []
        for widget, (region, _) in screen._compositor.visible_widgets.items():
            if widget.children:
                continue
            rows = [strips[y].crop(region.x, region.right).text.rstrip()
                    for y in range(region.y, min(region.bottom, len(strips)))]
            runs.append("".join(row.strip() for row in rows))
        texts[f"screen {name} ({type(screen).__name__})"] = whole + "\n" + screen_text(app)
        # Rows run together make false "URLs with a query" where a cell was cut at '?': secrets only.
        texts[f"rows joined: screen {name}"] = "\n".join(runs)

    async with app.run_test(size=(200, 60)) as pilot:
        await settle(pilot)
        capture("components")
        await pilot.press("enter")
        await settle(pilot)
        capture("tags")
        await pilot.press("2")
        await settle(pilot)
        capture("solutions")
        for index in range(SOLUTIONS):
            await pilot.press("2")
            await settle(pilot)
            await pilot.press(*(["down"] * index), "enter")
            await settle(pilot)
            capture(f"solution {index}")
        await pilot.press("3")
        await settle(pilot)
        capture("operations")
        for index in range(len(op_ids)):  # the operations table, newest first: open each one's log
            await pilot.press("3")
            await settle(pilot)
            await pilot.press(*(["down"] * index), "enter")
            await settle(pilot)
            capture(f"log {index}")
    return texts
