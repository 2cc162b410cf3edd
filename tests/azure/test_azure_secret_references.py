"""Key Vault secret references on the Azure backend: the real SDK over HTTPS against the ARM emulator.

What is sent is what the emulator stores (it keeps the request's writable fields verbatim), so "no value
stored" there is "no value sent"; the emulator refuses what the service refuses (decision 0032).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from orbit_ops.backends.azure.platform import AzurePlatform
from orbit_ops.names import azure_names

if TYPE_CHECKING:
    from conftest import AzureEmulators  # tests/azure/conftest.py

Run = Callable[..., tuple[int, str, str]]
VAULT = "https://orbit-kv.vault.azure.net/secrets"
WRITE_METHODS = ("PUT", "PATCH", "POST", "DELETE")
ORIGINALS: dict[Path, str] = {}


def reader_identity(emulators: AzureEmulators) -> str:
    return emulators.pull_identity.replace("orbit-pull", "orbit-secrets")


def add_secrets(root: Path, solution: str, emulators: AzureEmulators, db_url: str = f"{VAULT}/db-password") -> None:
    """Write the solution file as made by the fixture, plus two secrets of the agent and the env vars taking them."""
    path = root / "solutions" / f"{solution}.yaml"
    original = ORIGINALS.setdefault(path, path.read_text())
    text = original.replace("env:\n", "env:\n  agent:\n    DB_PASSWORD: {secretRef: db-password}\n"
                                       "    API_TOKEN: {secretRef: api-token}\n", 1)
    reader = reader_identity(emulators)
    path.write_text(text + "secrets:\n  agent:\n"
                    f"    db-password: {{keyVaultUrl: \"{db_url}\"}}\n"
                    f"    api-token: {{keyVaultUrl: \"{VAULT}/api-token\", identity: \"{reader}\"}}\n")


def writes(emulators: AzureEmulators) -> list[str]:
    logged = [*emulators.arm_server.log, *emulators.files_server.log]
    return [f"{r.method} {r.path}" for r in logged if r.method in WRITE_METHODS]


def agent_status(run_cli: Run, root: Path, solution: str) -> dict[str, Any]:
    code, out, err = run_cli("-w", str(root), "status", solution, "--json")
    assert code == 0, err
    [row] = json.loads(out)
    name = azure_names(solution).apps["agent"]
    resource: dict[str, Any] = next(r for r in row["resources"] if r["name"] == name)
    return resource


def test_secrets_by_reference_provision_sync_and_drift(
    make_azure_workspace: Callable[..., Path], emulators: AzureEmulators, run_cli: Run
) -> None:
    root = make_azure_workspace(2)
    add_secrets(root, "customer-00", emulators)
    code, out, err = run_cli("-w", str(root), "provision", "--all", "--yes", "--json")
    assert code == 0, err
    agent = azure_names("customer-00").apps["agent"]
    stored = emulators.arm.apps[agent]
    reader = reader_identity(emulators)
    assert stored["properties"]["configuration"]["secrets"] == [
        {"name": "api-token", "keyVaultUrl": f"{VAULT}/api-token", "identity": reader},
        {"name": "db-password", "keyVaultUrl": f"{VAULT}/db-password", "identity": emulators.pull_identity},
    ]  # exactly what was sent: no value
    env = stored["properties"]["template"]["containers"][0]["env"]
    assert {"name": "DB_PASSWORD", "secretRef": "db-password"} in env
    assert {"name": "API_TOKEN", "secretRef": "api-token"} in env
    assert set(stored["identity"]["userAssignedIdentities"]) == {emulators.pull_identity, reader}
    # What a GET returns carries the references, never a value (there is none).
    raw = AzurePlatform(emulators.settings(), emulators.fast)._arm().container_apps.get("orbit-test", agent)
    assert {(s.name, s.value) for s in raw.properties.configuration.secrets} == {("api-token", None),
                                                                                 ("db-password", None)}

    assert agent_status(run_cli, root, "customer-00") == {"kind": "app", "name": agent, "sync": "synced", "diff": []}
    emulators.clear_logs()
    code, out, err = run_cli("-w", str(root), "provision", "--all", "--yes", "--json")
    assert code == 0 and json.loads(out)["writes"] == 0, err
    assert writes(emulators) == []

    # Drift made by hand is found on names, URLs, identities and secretRefs.
    secrets = stored["properties"]["configuration"]["secrets"]
    secrets[1]["keyVaultUrl"] = f"{VAULT}/someone-elses"
    secrets[0]["identity"] = emulators.pull_identity
    next(v for v in stored["properties"]["template"]["containers"][0]["env"]
         if v["name"] == "API_TOKEN")["secretRef"] = "db-password"
    assert agent_status(run_cli, root, "customer-00")["diff"] == [
        "secret api-token identity changed", "secret db-password keyVaultUrl changed",
        "env API_TOKEN secretRef db-password → api-token"]
    emulators.clear_logs()
    code, out, err = run_cli("-w", str(root), "provision", "customer-00", "--yes", "--json")
    assert code == 0, err
    assert json.loads(out)["writes"] == 1
    assert [w.split(" ")[0] for w in writes(emulators)] == ["PATCH"]
    assert agent_status(run_cli, root, "customer-00")["sync"] == "synced"

    # A new version pinned in the file: the plan names the change, provisioning converges it.
    add_secrets(root, "customer-00", emulators, db_url=f"{VAULT}/db-password/ec96f02080254f109c51a1f14cdb1931")
    code, out, err = run_cli("-w", str(root), "plan", "customer-00", "--json")
    assert code == 0, err
    [plan] = json.loads(out)["solutions"]
    assert {a["name"]: a["changes"] for a in plan["actions"] if a["action"] != "none"} == {
        agent: ["secret db-password keyVaultUrl changed"]}
    assert run_cli("-w", str(root), "provision", "customer-00", "--yes")[0] == 0
    assert agent_status(run_cli, root, "customer-00")["sync"] == "synced"
    assert emulators.arm.apps[agent]["properties"]["configuration"]["secrets"][1]["keyVaultUrl"].endswith("1931")


def test_a_secret_with_a_value_on_the_app_blocks_a_change_with_a_clear_reason(
    make_azure_workspace: Callable[..., Path], emulators: AzureEmulators, run_cli: Run
) -> None:
    root = make_azure_workspace(2)
    assert run_cli("-w", str(root), "provision", "--all", "--yes")[0] == 0
    agent = azure_names("customer-00").apps["agent"]
    stored = emulators.arm.apps[agent]["properties"]
    stored["configuration"]["secrets"] = [{"name": "legacy-key", "value": "hunter2-by-hand"}]
    stored["template"]["containers"][0]["env"].append({"name": "LEGACY_KEY", "secretRef": "legacy-key"})
    # Someone else's secret with a value, and the env var taking it, are not drift.
    assert agent_status(run_cli, root, "customer-00")["sync"] == "synced"

    add_secrets(root, "customer-00", emulators)
    emulators.clear_logs()
    code, out, err = run_cli("-w", str(root), "provision", "--all", "--yes", "--json")
    assert code == 1, err
    by_id = {s["id"]: s for s in json.loads(out)["solutions"]}
    assert by_id["customer-01"]["state"] == "succeeded"
    assert by_id["customer-00"]["state"] == "failed"
    reason = by_id["customer-00"]["error"]
    assert "legacy-key" in reason and "never reads secret values" in reason
    assert "hunter2" not in out + err
    assert not [w for w in writes(emulators) if agent in w]  # refused before anything was sent
    assert stored["configuration"]["secrets"] == [{"name": "legacy-key", "value": "hunter2-by-hand"}]


def _raw_app(emulators: AzureEmulators, secret: dict[str, str], env: list[dict[str, str]],
             identities: list[str]) -> Any:
    from azure.mgmt.appcontainers.models import ContainerApp

    return ContainerApp({
        "location": "westeurope",
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {i: {} for i in identities}} if identities
        else {"type": "None"},
        "properties": {
            "managedEnvironmentId": emulators.arm.environment_id,
            "configuration": {"secrets": [secret]},
            "template": {"containers": [{"name": "web", "image": "nginx:1", "env": env}]},
        },
    })


@pytest.mark.parametrize(("secret", "env", "assigned", "code", "says"), [
    ({"name": "db", "keyVaultUrl": f"{VAULT}/db", "identity": "READER"}, [], False,
     "InvalidParameterValueInContainerTemplate", "Unable to get value using Managed identity"),
    ({"name": "db", "keyVaultUrl": f"{VAULT}/db", "identity": "system"}, [], True,
     "InvalidParameterValueInContainerTemplate", "Managed identity system"),
    ({"name": "db", "keyVaultUrl": f"{VAULT}/db"}, [], True, "ContainerAppSecretInvalid",
     "value or keyVaultUrl and identity should be provided"),
    ({"name": "DB", "value": "x"}, [], True, "ContainerAppInvalidSecretName", "lower case alphanumeric"),
    ({"name": "db", "keyVaultUrl": "https://kv.vault.azure.net/keys/db", "identity": "READER"}, [], True,
     "ContainerAppSecretKeyVaultUrlInvalid", "is not a Key Vault secret URL"),
    ({"name": "db", "value": "x"}, [{"name": "DB", "secretRef": "other"}], True,
     "InvalidParameterValueInContainerTemplate", "SecretRef 'other' defined for container 'web' not found"),
])
def test_the_emulator_refuses_secrets_as_the_service_does(
    emulators: AzureEmulators, secret: dict[str, str], env: list[dict[str, str]], assigned: bool, code: str,
    says: str,
) -> None:
    from azure.core.exceptions import HttpResponseError

    reader = reader_identity(emulators)
    secret = {key: (reader if value == "READER" else value) for key, value in secret.items()}
    client = AzurePlatform(emulators.settings(), emulators.fast)._arm()
    model = _raw_app(emulators, secret, env, [reader] if assigned else [])

    def create() -> None:
        client.container_apps.begin_create_or_update("orbit-test", "web-app", model).result()

    with pytest.raises(HttpResponseError) as caught:
        asyncio.run(asyncio.to_thread(create))
    assert caught.value.status_code == 400
    assert caught.value.error is not None and caught.value.error.code == code
    assert says in str(caught.value.message)
    assert "web-app" not in emulators.arm.apps
