"""Azure backend fixtures: the HTTPS emulators (ARM Microsoft.App, Azure Files) and workspaces on them.

The emulators start once per session on 127.0.0.1 with a certificate made for the session; the
clients verify it through ``ca_bundle`` (nothing is turned off). Each test gets them reset (state,
request log, faults), a fake bearer token in ``ORBIT_AZURE_ACCESS_TOKEN``, a base64 account key in
``ORBIT_STORAGE_ACCOUNT_KEY``, and SDK clients with their retry and polling waits zeroed.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from emulators.arm import ArmEmulator
from emulators.azurite import Azurite, AzuriteMissingError, start_azurite
from emulators.files import FilesEmulator
from emulators.server import Emulator, Running, make_certificate, serve
from support import git

from orbit_ops.backends.azure import platform as azure_platform
from orbit_ops.backends.azure.platform import ClientOptions
from orbit_ops.config.model import AzureSettings
from orbit_ops.config.state import StateSettings

TOKEN = "orbit-test-bearer-7c1e5a90d2f34b6e9a01"
ACCOUNT_KEY = base64.b64encode(b"orbit-test-storage-account-key/" + bytes(range(33))).decode()
SUBSCRIPTION = "0a1b2c3d-0000-4000-8000-00000000cafe"
RESOURCE_GROUP = "orbit-test"
ENVIRONMENT = "orbit-env"
LOCATION = "westeurope"
ACCOUNT = "orbitfiles"
REGISTRY = "orbitacr"
PULL_IDENTITY = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
                 "Microsoft.ManagedIdentity/userAssignedIdentities/orbit-pull")
VERSIONS = ("1.0.0", "1.1.0")
FAST = ClientOptions(
    arm={"polling_interval": 0, "retry_backoff_factor": 0},
    files={"initial_backoff": 0, "increment_base": 0, "random_jitter_range": 0},
)


@dataclass
class AzureEmulators:
    """The two emulators: their state (``arm``, ``files``), servers (request log, faults) and URLs.

    The class attributes are the test credentials and names, for tests to use (a test module cannot
    import this conftest by name: ``tests/conftest.py`` is also ``conftest``).
    """

    token: ClassVar[str] = TOKEN
    account_key: ClassVar[str] = ACCOUNT_KEY
    account: ClassVar[str] = ACCOUNT
    login_server: ClassVar[str] = f"{REGISTRY}.azurecr.io"
    pull_identity: ClassVar[str] = PULL_IDENTITY
    fast: ClassVar[ClientOptions] = FAST

    arm: ArmEmulator
    files: FilesEmulator
    arm_server: Emulator
    files_server: Emulator
    arm_url: str
    files_url: str
    ca_bundle: Path

    def reset(self) -> None:
        self.arm.reset()
        self.files.reset()
        self.arm.token = TOKEN
        for server in (self.arm_server, self.files_server):
            with server.lock:
                server.faults.clear()
                server.fault_rate = 0.0
            server.clear_log()

    def clear_logs(self) -> None:
        self.arm_server.clear_log()
        self.files_server.clear_log()

    def settings(self) -> AzureSettings:
        return AzureSettings(
            subscription_id=SUBSCRIPTION,
            resource_group=RESOURCE_GROUP,
            location=LOCATION,
            registry=REGISTRY,
            environment=ENVIRONMENT,
            storage_account=ACCOUNT,
            pull_identity=PULL_IDENTITY,
            arm_endpoint=self.arm_url,
            files_endpoint=self.files_url,
            ca_bundle=str(self.ca_bundle),
        )


@pytest.fixture(scope="session")
def emulator_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fresh self-signed certificate for 127.0.0.1 (cert.pem, key.pem), made for this session."""
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def azure_emulators_session(emulator_certificate: tuple[Path, Path]) -> Iterator[AzureEmulators]:
    cert, key = emulator_certificate
    arm_server, files_server = Emulator(), Emulator()
    arm = ArmEmulator(arm_server, subscription=SUBSCRIPTION, resource_group=RESOURCE_GROUP, environment=ENVIRONMENT,
                      location=LOCATION, token=TOKEN)
    files = FilesEmulator(files_server, account=ACCOUNT)
    running: list[Running] = [serve(arm_server, cert, key), serve(files_server, cert, key)]
    try:
        yield AzureEmulators(arm, files, arm_server, files_server, running[0].url, f"{running[1].url}/{ACCOUNT}", cert)
    finally:
        for server in running:
            server.stop()


@pytest.fixture
def emulators(azure_emulators_session: AzureEmulators, monkeypatch: pytest.MonkeyPatch) -> AzureEmulators:
    """The emulators, reset, with the credentials in the environment and fast SDK clients."""
    azure_emulators_session.reset()
    monkeypatch.setenv("ORBIT_AZURE_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("ORBIT_STORAGE_ACCOUNT_KEY", ACCOUNT_KEY)
    monkeypatch.setattr(azure_platform, "DEFAULT_OPTIONS", FAST)
    return azure_emulators_session


@pytest.fixture
def client(emulators: AzureEmulators) -> Iterator[Any]:
    """An SDK ``ContainerAppsAPIClient`` as the Azure backend builds it, on the ARM emulator, for tests of the
    emulator itself; the emulated clock moves only when the test says (``per_request`` 0)."""
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    from orbit_ops.backends.azure.common import StaticTokenCredential

    emulators.arm.clock.per_request = 0
    arm = ContainerAppsAPIClient(StaticTokenCredential(emulators.token), emulators.settings().subscription_id,
                                 base_url=emulators.arm_url, credential_scopes=[emulators.arm_url + "/.default"],
                                 connection_verify=str(emulators.ca_bundle), **emulators.fast.arm)
    with arm:
        yield arm


@pytest.fixture
def make_azure_workspace(tmp_path: Path, emulators: AzureEmulators) -> Callable[..., Path]:
    """A workspace with ``backend: azure`` on the emulators, ``count`` solutions and released 1.0.0/1.1.0."""

    def make(count: int = 12, name: str = "ws") -> Path:
        root = tmp_path / name
        (root / "solutions").mkdir(parents=True)
        git(root, "init", "-q", "-b", "main")
        settings = emulators.settings()
        (root / "orbit.yaml").write_text(
            "platform_repo: .\n"
            "backend: azure\n"
            "components:\n  orbit: {context: apps/orbit}\n  agent: {context: apps/agent}\n  mc: {context: apps/mc}\n"
            'defaults:\n  images: {orbit_tag: "1.0.0", agent_tag: "1.0.0", mc_tag: "1.0.0"}\n'
            "  share_quota_gib: 100\n"
            "azure:\n"
            + "".join(f"  {key}: {value}\n" for key, value in {
                "subscription_id": settings.subscription_id,
                "resource_group": settings.resource_group,
                "location": settings.location,
                "registry": settings.registry,
                "environment": settings.environment,
                "storage_account": settings.storage_account,
                "pull_identity": settings.pull_identity,
                "arm_endpoint": settings.arm_endpoint,
                "files_endpoint": settings.files_endpoint,
                "ca_bundle": settings.ca_bundle,
            }.items())
        )
        for index in range(count):
            solution = f"customer-{index:02d}"
            (root / "solutions" / f"{solution}.yaml").write_text(
                f"id: {solution}\ndisplay_name: Customer {index}\n"
                f"env:\n  orbit: {{PUBLIC_BASE_URL: \"https://{solution}.example.com\"}}\n"
            )
        records = root / "releases" / "containers"
        records.mkdir(parents=True)
        for component in ("orbit", "agent", "mc"):
            (records / f"{component}.yaml").write_text("".join(
                f"- component: {component}\n  version: {version}\n  tag: {component}/v{version}\n"
                f"  commit: {(component + version).encode().hex()[:40].ljust(40, '0')}\n"
                f"  image: {REGISTRY}.azurecr.io/{component}:{version}\n"
                f"  digest: sha256:{'ab' * 32}\n  registry: {REGISTRY}.azurecr.io\n  run_id: ca{index}\n"
                f"  built_at: '2026-01-0{index + 1}T10:00:00Z'\n  builder: acr\n"
                for index, version in enumerate(VERSIONS)
            ))
        return root

    return make


@pytest.fixture(scope="session")
def state_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite for the shared state store (``state: azure-blob``); each test takes its own container."""
    try:
        azurite = start_azurite(tmp_path_factory.mktemp("state-azurite"))
    except AzuriteMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield azurite
    azurite.stop()


@pytest.fixture
def state_store(state_azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> StateStoreFixture:
    """A fresh container on Azurite, its settings, and the connection string in ``ORBIT_STATE_CONNECTION_STRING``."""
    from state_fixtures import connection_string, fresh_container, state_settings

    monkeypatch.setenv("ORBIT_STATE_CONNECTION_STRING", connection_string(state_azurite))
    container = fresh_container()
    return StateStoreFixture(state_azurite, container, state_settings(state_azurite, container))


@dataclass
class StateStoreFixture:
    azurite: Azurite
    container: str
    settings: StateSettings
