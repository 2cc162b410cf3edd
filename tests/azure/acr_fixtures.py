"""Fixtures of the ACR builder tests: real Azurite, the HTTPS ACR emulator and an azure workspace.

``test_acr.py`` declares the fixtures themselves over these helpers (``tests/azure/conftest.py``
belongs to the platform tests). Azurite runs
once per module; the ARM emulator, its state and the workspace are made per test.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from emulators.acr import AcrEmulator
from emulators.azurite import Azurite, AzuriteMissingError, start_azurite
from emulators.server import Emulator, Running, serve
from support import git

from orbit_ops.backends.azure.acr import AcrBuilder
from orbit_ops.backends.azure.acr_log import LogPolling
from orbit_ops.redact import clear_registered_secrets
from orbit_ops.workspace import Workspace

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000ac"
RESOURCE_GROUP = "orbit-test"
REGISTRY = "orbitacr"
LOGIN_SERVER = "orbitacr.azurecr.io"
FAST_POLLING = LogPolling(idle_min=0.02, idle_max=0.1, status_every=0.2, settle=2.0)
ARM_OPTIONS = {"retry_backoff_factor": 0, "polling_interval": 0}
BLOB_OPTIONS = {"initial_backoff": 0, "increment_base": 0, "random_jitter_range": 0}

DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM python:3.12-slim
WORKDIR /app
COPY requirements.txt .
COPY agent/ ./agent/
RUN pip install --no-cache-dir -r requirements.txt
ENV PORT=8080
CMD ["python", "-m", "agent"]
"""

CONFIG = """\
platform_repo: .
backend: azure
components:
  orbit: {{context: apps/orbit}}
  agent: {{context: apps/agent}}
  mc: {{context: apps/mc}}
defaults:
  images: {{orbit_tag: "1.0.0", agent_tag: "1.0.0", mc_tag: "1.0.0"}}
azure:
  subscription_id: {subscription}
  resource_group: {group}
  location: westeurope
  registry: {registry}
  environment: orbit-env
  storage_account: orbitfiles
  pull_identity: /subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ManagedIdentity/x/pull
  arm_endpoint: {arm}
  ca_bundle: {ca}
"""


@dataclass
class AcrSetup:
    """Everything a test talks to: the emulators, the workspace, the fake bearer token."""

    azurite: Azurite
    server: Running
    acr: AcrEmulator
    workspace: Workspace
    token: str

    @property
    def root(self) -> Path:
        return self.workspace.config.root

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    def builder(self, polling: LogPolling = FAST_POLLING, **blob_options: object) -> AcrBuilder:
        """An AcrBuilder with the tests' fast polling and zero retry waits."""
        settings = self.workspace.config.azure
        assert settings is not None
        return AcrBuilder(settings, polling=polling, arm_options=ARM_OPTIONS,
                          blob_options={**BLOB_OPTIONS, **blob_options})

    def release(self, version: str, dockerfile: str = DOCKERFILE, files: dict[str, bytes] | None = None) -> None:
        """Commit the agent's tree (with ``dockerfile`` and ``files``) and tag it ``agent/v<version>``."""
        context = self.root / "apps/agent"
        (context / "Dockerfile").write_text(dockerfile)
        for name, data in (files or {}).items():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            (context / name).write_bytes(data)
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "--allow-empty", "-m", f"agent {version}")
        git(self.root, "tag", "-a", f"agent/v{version}", "-m", f"agent {version}")
        self.workspace.refresh()


def azurite_or_fail(folder: Path) -> Azurite:
    """Start Azurite; a missing install fails the test (with the command to fix it), never skips it."""
    try:
        return start_azurite(folder)
    except AzuriteMissingError as exc:
        pytest.fail(str(exc), pytrace=False)


@contextlib.contextmanager
def acr_environment(azurite: Azurite, certificate: tuple[Path, Path], make_workspace: Callable[..., Path],
                    monkeypatch: pytest.MonkeyPatch) -> Iterator[AcrSetup]:
    """The ACR emulator on HTTPS, a fake bearer token, and a workspace with ``agent/v1.0.0`` tagged."""
    token = "fake-arm-token-" + secrets.token_hex(16)
    monkeypatch.setenv("ORBIT_AZURE_ACCESS_TOKEN", token)
    emulator = Emulator()
    acr = AcrEmulator(emulator, azurite, subscription_id=SUBSCRIPTION, resource_group=RESOURCE_GROUP,
                      registry=REGISTRY, login_server=LOGIN_SERVER, token=token)
    server = serve(emulator, *certificate)
    try:
        root = make_workspace(CONFIG.format(subscription=SUBSCRIPTION, group=RESOURCE_GROUP, registry=REGISTRY,
                                            arm=server.url, ca=certificate[0]))
        (root / ".gitignore").write_text(".orbit/\n")
        context = root / "apps/agent"
        (context / "agent").mkdir(parents=True)
        (context / "agent/__main__.py").write_text("print('agent')\n")
        (context / "requirements.txt").write_text("httpx==0.28.1\n")
        (context / "README.md").write_text("left out by .dockerignore\n")
        (context / ".dockerignore").write_text("*.md\n")
        setup = AcrSetup(azurite, server, acr, Workspace.open(root), token)
        setup.release("1.0.0")
        yield setup
    finally:
        acr.close()
        server.stop()
        clear_registered_secrets()


def on_the_emulated_registry(setup: AcrSetup) -> AcrSetup:
    """Point the workspace's ``login_server`` at the emulator, which serves the registry's data plane."""
    address = setup.server.url.removeprefix("https://")
    with (setup.root / "orbit.yaml").open("a") as config:
        config.write(f"  login_server: '{address}'\n")
    setup.acr.login_server = address
    setup.workspace = Workspace.open(setup.root)
    return setup
