"""The Azure-emulated demo: the emulators on 127.0.0.1 and a demo workspace on the azure backend over them.

``orbit demo --backend azure-emulated [DIR]`` (or ``make demo-azure``) runs this from a source checkout
and opens the console inside :func:`azure_emulated_demo`; the emulators are test code and are not
shipped in the package (decision 0018). Everything is what the Azure backend tests use: Azurite from
``node_modules`` (always ``--disableTelemetry``) for the build context and the run logs, and one HTTPS
emulator, with a certificate made at start, serving Microsoft.App and Microsoft.ContainerRegistry on one
ARM endpoint (as Azure does) plus a second one for Azure Files. The workspace is the ordinary demo
(:func:`orbit_ops.demo.create_demo`) with ``backend: azure`` pointing at them, so its releases are
really built by emulated ACR runs and its solutions provisioned through the SDKs; nothing is canned.

The emulated cloud lives in this process and ends with it: the bearer token and the account key are
made up per run, set in this process's environment only and never printed; the state (certificate,
Azurite's data) sits in a temporary folder removed at the end. A workspace left from an earlier run
(marked ``.orbit/azure-emulated-demo``) describes a cloud that is gone, so it is replaced.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from emulators.acr import AcrEmulator
from emulators.arm import ArmEmulator
from emulators.azurite import Azurite, AzuriteMissingError, start_azurite
from emulators.files import FilesEmulator
from emulators.server import Emulator, Running, make_certificate, serve

SUBSCRIPTION = "5d1c0e6a-0000-4000-8000-0000000de300"
RESOURCE_GROUP = "orbit-demo"
LOCATION = "westeurope"
REGISTRY = "orbitacr"
ENVIRONMENT = "orbit-env"
ACCOUNT = "orbitfiles"
PULL_IDENTITY = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
                 "Microsoft.ManagedIdentity/userAssignedIdentities/orbit-pull")
MARKER = Path(".orbit") / "azure-emulated-demo"
# How long an emulated build step takes once the console is open: a real ACR step takes seconds; this is
# long enough to watch the log arrive line by line. The demo's own release builds run without pauses.
STEP_SECONDS = 0.4
# The polling hint of the emulated long-running operations (ARM sends one; without it the SDK waits 30 s).
POLL_HINT_MS = 200
PAGE_SIZE = 100  # container apps per page of a listing


@dataclass
class EmulatedAzure:
    """The running emulators and what a workspace needs to reach them."""

    azurite: Azurite
    arm_server: Running  # Microsoft.App and Microsoft.ContainerRegistry
    files_server: Running  # Azure Files
    arm: ArmEmulator
    acr: AcrEmulator
    files: FilesEmulator
    ca_bundle: Path

    @property
    def login_server(self) -> str:
        """The registry's address: the emulator serves its data plane too (``host:port``)."""
        return self.arm_server.url.removeprefix("https://")

    def settings(self) -> dict[str, str]:
        """The ``azure:`` section of a workspace on these emulators (SPEC §2.0)."""
        return {
            "subscription_id": SUBSCRIPTION,
            "resource_group": RESOURCE_GROUP,
            "location": LOCATION,
            "registry": REGISTRY,
            "environment": ENVIRONMENT,
            "storage_account": ACCOUNT,
            "pull_identity": PULL_IDENTITY,
            "arm_endpoint": self.arm_server.url,
            "files_endpoint": f"{self.files_server.url}/{ACCOUNT}",
            "ca_bundle": str(self.ca_bundle),
            "login_server": self.login_server,
        }

    def stop(self) -> None:
        """Cancel the runs still going, then stop the servers and Azurite."""
        try:
            self.acr.close()
        finally:
            self.arm_server.stop()
            self.files_server.stop()
            self.azurite.stop()


def start_emulated_azure(folder: Path, *, token: str) -> EmulatedAzure:
    """Start Azurite and the HTTPS emulators on 127.0.0.1, their state under ``folder``.

    Raises:
        AzuriteMissingError: Azurite is not installed (``npm ci``).
        RuntimeError: Azurite did not start.
    """
    cert, key = make_certificate(folder / "tls")
    azurite = start_azurite(folder / "azurite")  # always with --disableTelemetry (emulators.azurite)
    started: list[Running] = []
    try:
        arm_server, files_server = Emulator(), Emulator()
        arm = ArmEmulator(arm_server, subscription=SUBSCRIPTION, resource_group=RESOURCE_GROUP,
                          environment=ENVIRONMENT, location=LOCATION, token=token, page_size=PAGE_SIZE)
        arm.retry_after_ms = POLL_HINT_MS
        files = FilesEmulator(files_server, account=ACCOUNT)
        acr = AcrEmulator(arm_server, azurite, subscription_id=SUBSCRIPTION, resource_group=RESOURCE_GROUP,
                          registry=REGISTRY, login_server=f"{REGISTRY}.azurecr.io", token=token)
        started.append(serve(arm_server, cert, key))
        started.append(serve(files_server, cert, key))
        cloud = EmulatedAzure(azurite, started[0], started[1], arm, acr, files, cert)
        acr.login_server = cloud.login_server  # images are pushed to, and read back from, the emulated registry
        return cloud
    except BaseException:
        for server in started:
            server.stop()
        azurite.stop()
        raise


@dataclass
class EmulatedDemo:
    """A demo workspace on the azure backend and the emulated cloud it runs on."""

    root: Path
    cloud: EmulatedAzure


@contextlib.contextmanager
def azure_emulated_demo(target: Path, *, solutions: int = 40,
                        progress: Callable[[str], None] = lambda line: None) -> Iterator[EmulatedDemo]:
    """Start the emulators, create the demo workspace in ``target`` on them, and stop it all on exit.

    The credentials are set in ``os.environ`` for the duration (and restored after), so the engine in
    this process, and the console opened on it, reach the emulators as they would reach Azure.

    Raises:
        InputError: ``target`` holds something other than an earlier Azure-emulated demo, or Azurite is not
            installed (``npm ci``).
        BackendError: the emulators could not start.
        BuildError: a release build of the demo failed.
    """
    from orbit_ops.backends.azure.common import ACCOUNT_KEY_ENV, TOKEN_ENV
    from orbit_ops.demo import create_demo
    from orbit_ops.errors import BackendError, InputError

    target = target.resolve()
    if (target / MARKER).is_file():
        progress(f"replacing the earlier Azure-emulated demo in {target} (its emulated cloud ended with it)")
        shutil.rmtree(target)
    saved = {name: os.environ.get(name) for name in (TOKEN_ENV, ACCOUNT_KEY_ENV)}
    token = "demo-" + secrets.token_urlsafe(24)
    os.environ[TOKEN_ENV] = token
    os.environ[ACCOUNT_KEY_ENV] = base64.b64encode(secrets.token_bytes(48)).decode()
    state = Path(tempfile.mkdtemp(prefix="orbit-azure-demo-"))
    try:
        try:
            cloud = start_emulated_azure(state, token=token)
        except AzuriteMissingError as exc:
            raise InputError(str(exc)) from None
        except RuntimeError as exc:
            raise BackendError(f"the emulators did not start: {exc}") from None
        try:
            progress(f"emulators on 127.0.0.1: ARM and ACR at {cloud.arm_server.url}, Azure Files at "
                     f"{cloud.files_server.url}, Azurite blob at {cloud.azurite.url}")
            cloud.acr.step_seconds = 0  # the demo's own release builds: no pauses between steps
            for line in create_demo(target, solutions=solutions, azure=cloud.settings()):
                progress(line)
            (target / MARKER).write_text("created by `orbit demo --backend azure-emulated`\n")
            cloud.acr.step_seconds = STEP_SECONDS
            progress(f"emulated cloud: {len(cloud.arm.apps)} container apps, {len(cloud.arm.storages)} environment "
                     f"storages, {len(cloud.files.shares)} file shares, {len(cloud.acr.runs)} ACR runs")
            yield EmulatedDemo(target, cloud)
        finally:
            cloud.stop()
    finally:
        shutil.rmtree(state, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
