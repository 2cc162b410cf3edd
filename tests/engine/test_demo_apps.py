"""The demo's apps really run, and its one env-requiring release says so in its image (SPEC §3.6).

Each program is started as its image would start it: the image's own content (the build-context layer the
local builder packed from the checked-out tag), its config's ENTRYPOINT + CMD and Env, and the env the demo's
solution gives the app on the platform, on a free loopback port. It must answer ``/healthz`` with its version,
serve its role, and stop cleanly on SIGTERM, as a container runtime asks it to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orbit_ops.backends.local.blobs import blob_path, read_json_blob
from orbit_ops.backends.local.oci import read_image_config, read_index, resolve_tag
from orbit_ops.demo import lacks_mc_url
from orbit_ops.demo_apps import ENV_REQUIRED_LABEL, ENV_REQUIRING_RELEASE, MC_URL
from orbit_ops.names import azure_names
from orbit_ops.versions import image_tag
from orbit_ops.workspace import Workspace

Run = Callable[..., tuple[int, str, str]]
# The interpreters the images' commands name; the local ones stand in for the base images' (the programs use
# nothing beyond the standard library of Python and Node).
INTERPRETERS = {"python": sys.executable, "node": shutil.which("node")}
READY_SECONDS = 10.0
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, whatever the env says


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with NO_PROXY.open(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def unpack_image(layout: Path, tag: str, into: Path) -> dict[str, Any]:
    """Extract the image's one layer into ``into``; return the image's runtime config."""
    digest = resolve_tag(layout, tag)
    assert digest is not None, f"{layout.name}:{tag} is not in the registry"
    [layer] = read_json_blob(layout, digest)["layers"]
    with tarfile.open(blob_path(layout, layer["digest"]), "r:gz") as archive:
        archive.extractall(into, filter="data")
    runtime: dict[str, Any] = read_image_config(layout, tag)["config"]
    return runtime


def live_env(workspace: Workspace, solution_id: str, component: str) -> dict[str, str]:
    """The env the platform gives ``component``'s app of the solution, as the demo provisioned it."""
    apps = asyncio.run(workspace.platform().list_apps())
    return dict(apps[azure_names(solution_id).apps[component]].env)


def mc_url_lacking(workspace: Workspace, provisioned: bool = True) -> list[str]:
    """The solutions whose reader is not given MC_URL (only those the demo provisioned, by default)."""
    apps = asyncio.run(workspace.platform().list_apps())
    return [spec.id for spec in workspace.solutions()
            if MC_URL not in spec.env.get("orbit", {})
            and (not provisioned or azure_names(spec.id).apps["orbit"] in apps)]


@contextlib.contextmanager
def started(runtime: dict[str, Any], root: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """The image's command run in its unpacked content, with ``env`` over the image's Env; killed at the end."""
    command = [*(runtime.get("Entrypoint") or []), *(runtime.get("Cmd") or [])]
    interpreter = INTERPRETERS[command[0]]
    assert interpreter is not None, f"{command[0]} is not installed (the mc image's program runs on Node)"
    image_env = dict(entry.split("=", 1) for entry in runtime.get("Env", []))
    process = subprocess.Popen([interpreter, *command[1:]], cwd=root, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={"PATH": os.environ["PATH"], **image_env, **env})
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def wait_healthy(process: subprocess.Popen[str], port: int) -> dict[str, Any]:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"exited with {process.returncode} before serving: {err}")
        with contextlib.suppress(OSError):
            status, body = get(port, "/healthz")
            assert status == 200
            health: dict[str, Any] = json.loads(body)
            return health
        time.sleep(0.05)
    pytest.fail(f"no answer on 127.0.0.1:{port}/healthz within {READY_SECONDS} s")


def stops_cleanly(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=5)


@pytest.fixture
def ws(demo_workspace: Path) -> Workspace:
    return Workspace.open(demo_workspace)  # read only: the programs run from copies under tmp_path


@pytest.mark.parametrize(("component", "version"), [("orbit", "1.2.1"), ("agent", "2.1.0"), ("mc", "1.2.0"),
                                                    ENV_REQUIRING_RELEASE])
def test_each_demo_image_serves_its_port_and_answers_its_health_path(
    ws: Workspace, tmp_path: Path, component: str, version: str
) -> None:
    runtime = unpack_image(ws.config.state_dir / "registry" / component, image_tag(version), tmp_path / "image")
    image_port = dict(entry.split("=", 1) for entry in runtime["Env"])["PORT"]
    assert f"{image_port}/tcp" in runtime["ExposedPorts"]  # the port the program serves is the one exposed
    solution = "acme-corp"  # provisioned, and given MC_URL
    env = live_env(ws, solution, component)
    mount = tmp_path / "repo"  # stands in for the customer share the platform mounts at /repo
    mount.mkdir()
    (mount / "README.md").write_text("customer repo\n")
    port = free_port()
    overrides = {"PORT": str(port), "HOST": "127.0.0.1", "REPO_PATH": str(mount), "SCAN_SECONDS": "0.2"}
    with started(runtime, tmp_path / "image", env | overrides) as process:
        health = wait_healthy(process, port)
        assert health.get("version") == version
        status, page = get(port, "/")
        if component == "orbit":
            assert status == 200 and f'href="{env["PUBLIC_BASE_URL"]}/README.md"' in page
            assert (f"href='{env[MC_URL]}'" in page) is (version == ENV_REQUIRING_RELEASE[1])
        elif component == "agent":
            assert health["methodology"] == env["METHODOLOGY_PATH"] == "/repo/trajectory-methodology"
            assert health["methodology_files"] is None  # not mounted here: waited for, not a crash
            assert status == 404
        else:
            assert status == 200 and f"Mission control {version}" in page
        assert get(port, "/no/such/page")[0] == 404
        assert stops_cleanly(process) == 0


def test_the_env_requiring_release_refuses_to_start_without_its_variable(ws: Workspace, tmp_path: Path) -> None:
    component, version = ENV_REQUIRING_RELEASE
    runtime = unpack_image(ws.config.state_dir / "registry" / component, image_tag(version), tmp_path / "image")
    lacking = mc_url_lacking(ws)
    assert lacking, "the demo has provisioned solutions without MC_URL"
    env = live_env(ws, lacking[0], component)
    assert MC_URL not in env
    with started(runtime, tmp_path / "image", env | {"PORT": str(free_port()), "HOST": "127.0.0.1"}) as process:
        _, err = process.communicate(timeout=READY_SECONDS)
    assert process.returncode == 1 and "MC_URL is not set" in err  # a real container would crash-loop too


def test_orbit_demo_ships_the_env_requiring_release_with_its_label_and_does_not_roll_it(
    tmp_path: Path, run_cli: Run
) -> None:
    root = tmp_path / "demo"
    code, out, err = run_cli("demo", "--no-tui", "--solutions", "8", str(root))
    assert code == 0, err
    assert out.strip() == str(root) and "demo workspace ready" in err
    registry = root / ".orbit" / "registry"
    component, version = ENV_REQUIRING_RELEASE
    labelled = {
        (layout.name, tag)
        for layout in registry.iterdir()
        for tag in read_index(layout)
        if tag != "latest"  # the registry's :latest is whatever was built last, as on a real registry
        and ENV_REQUIRED_LABEL in read_image_config(layout, tag)["config"].get("Labels", {})
    }
    assert labelled == {(component, image_tag(version))}  # the only image with required variables
    labels = read_image_config(registry / component, image_tag(version))["config"]["Labels"]
    assert labels[ENV_REQUIRED_LABEL] == MC_URL

    workspace = Workspace.open(root)
    specs = workspace.solutions()
    # Every fourth solution (the 4th and 8th written: Umbrella Health, Tyrell Systems) lacks it; the rest set it.
    assert [index for index in range(len(specs)) if lacks_mc_url(index)] == [3, 7]
    assert set(mc_url_lacking(workspace, provisioned=False)) == {"umbrella-health", "tyrell-systems"}
    apps = asyncio.run(workspace.platform().list_apps())
    assert not [app.name for app in apps.values() if app.image.endswith(f"/{component}:{image_tag(version)}")]
    assert not [spec.id for spec in specs if spec.pin(component) == version]  # the operator rolls it, not the demo
