"""Key Vault secret references end to end on the local platform: desired state, drift, plan, provision.

The local platform keeps them the way Container Apps does (``configuration.secrets`` entries with
``keyVaultUrl`` and ``identity``, env entries with ``secretRef``) and never a value.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest

from orbit_ops.backends.local.platform import LocalPlatform
from orbit_ops.config.model import SolutionSpec
from orbit_ops.config.secrets import KeyVaultSecret
from orbit_ops.errors import BackendError
from orbit_ops.fleet.drift import LiveSnapshot
from orbit_ops.fleet.provision import plan_solution
from orbit_ops.fleet.resources import App, AppSecret, PlatformTarget, desired_state, differences
from orbit_ops.names import azure_names

Run = Callable[..., tuple[int, str, str]]
PULL = ("/subscriptions/0000/resourceGroups/orbit-prod/providers/Microsoft.ManagedIdentity/"
        "userAssignedIdentities/orbit-pull")
READER = PULL.replace("orbit-pull", "orbit-secrets")
TARGET = PlatformTarget(registry="orbitacr.azurecr.io", storage_account="orbitfiles", pull_identity=PULL)
VERSIONS = {"orbit": "1.4.0", "agent": "2.1.0", "mc": "1.0.0"}
VAULT = "https://orbit-kv.vault.azure.net/secrets"


def make_spec(**secrets: KeyVaultSecret) -> SolutionSpec:
    return SolutionSpec(
        id="acme-corp",
        display_name="Acme",
        images={"orbit_tag": "1.4.0", "agent_tag": "2.1.0", "mc_tag": "1.0.0"},
        env={"agent": {"LOG_LEVEL": "info"}},
        share_quota_gib=100,
        path=Path("solutions/acme-corp.yaml"),
        secrets={"agent": {name.replace("_", "-"): ref for name, ref in secrets.items()}},
        secret_env={"agent": {"DB_PASSWORD": "db-password"}},
    )


def agent_of(spec: SolutionSpec) -> App:
    return desired_state(spec, TARGET, VERSIONS).app("agent")


TWO_SECRETS = make_spec(db_password=KeyVaultSecret(f"{VAULT}/db"), api_token=KeyVaultSecret(f"{VAULT}/t", READER))


def test_desired_app_reads_secrets_with_the_pull_identity_unless_told() -> None:
    agent = agent_of(TWO_SECRETS)
    assert dict(agent.secrets) == {"api-token": AppSecret(f"{VAULT}/t", READER),
                                   "db-password": AppSecret(f"{VAULT}/db", PULL)}
    assert dict(agent.secret_env) == {"DB_PASSWORD": "db-password"}
    assert "DB_PASSWORD" not in agent.env
    assert agent.identities == (PULL, READER)  # both must be assigned to the app


def _app(secrets: dict[str, AppSecret] | None = None, secret_env: dict[str, str] | None = None) -> App:
    return App("a", "r/x:1", secrets=MappingProxyType(secrets or {}), secret_env=MappingProxyType(secret_env or {}))


DIFF_CASES = [
    ("added", _app({"db": AppSecret("u1", PULL)}), _app(), ["secret db added"]),
    ("removed", _app(), _app({"db": AppSecret("u1", PULL)}), ["secret db removed"]),
    ("url", _app({"db": AppSecret("u2", PULL)}), _app({"db": AppSecret("u1", PULL)}),
     ["secret db keyVaultUrl changed"]),
    ("identity", _app({"db": AppSecret("u1", READER)}), _app({"db": AppSecret("u1", PULL)}),
     ["secret db identity changed"]),
    ("identity case only", _app({"db": AppSecret("u1", PULL)}), _app({"db": AppSecret("u1", PULL.lower())}), []),
    ("ref added", _app(secret_env={"DB": "db"}), _app(), ["env DB secretRef db added"]),
    ("ref removed", _app(), _app(secret_env={"DB": "db"}), ["env DB secretRef db removed"]),
    ("ref changed", _app(secret_env={"DB": "b"}), _app(secret_env={"DB": "a"}), ["env DB secretRef a → b"]),
]


@pytest.mark.parametrize(("desired", "live", "expected"), [case[1:] for case in DIFF_CASES],
                         ids=[case[0] for case in DIFF_CASES])
def test_secret_differences_name_the_reference_never_a_value(desired: App, live: App, expected: list[str]) -> None:
    assert differences(desired, live) == expected


def test_local_platform_keeps_references_only_and_reads_them_back(tmp_path: Path) -> None:
    agent = agent_of(TWO_SECRETS)

    async def scenario(platform: LocalPlatform) -> tuple[App | None, dict[str, App]]:
        await platform.create_app(agent)
        return await platform.get_app(agent.name), await platform.list_apps()

    with LocalPlatform(tmp_path / ".orbit") as platform:
        got, listed = asyncio.run(scenario(platform))
        document = platform.stored_document("app", agent.name)
    assert got == agent and listed[agent.name] == agent
    assert document is not None
    assert document["properties"]["configuration"]["secrets"] == [
        {"name": "api-token", "keyVaultUrl": f"{VAULT}/t", "identity": READER},
        {"name": "db-password", "keyVaultUrl": f"{VAULT}/db", "identity": PULL},
    ]
    env = document["properties"]["template"]["containers"][0]["env"]
    assert {"name": "DB_PASSWORD", "secretRef": "db-password"} in env
    assert set(document["identity"]["userAssignedIdentities"]) == {PULL, READER}


@pytest.mark.parametrize(("change", "message"), [
    ({"secret_env": MappingProxyType({"DB_PASSWORD": "nosuch"})}, "refers to secret 'nosuch'"),
    ({"secrets": MappingProxyType({"Bad_Name": AppSecret(f"{VAULT}/x", PULL)})}, "invalid secret name"),
    ({"secrets": MappingProxyType({"db-password": AppSecret(f"{VAULT}/x", "")})},
     "needs a keyVaultUrl and an identity"),
])
def test_what_the_service_refuses_of_secrets_is_refused(tmp_path: Path, change: dict[str, object],
                                                       message: str) -> None:
    agent = replace(agent_of(make_spec(db_password=KeyVaultSecret(f"{VAULT}/db"))), **change)  # type: ignore[arg-type]
    with LocalPlatform(tmp_path / ".orbit") as platform:
        with pytest.raises(BackendError, match=message):
            asyncio.run(platform.create_app(agent))
        assert platform.stored_document("app", agent.name) is None


# -- through the CLI, on a copy of the demo workspace ----------------------------------------------------


@pytest.fixture
def root(demo_workspace: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(demo_workspace, copy, symlinks=True)
    return copy


def _with_secrets(root: Path, original: str, url: str) -> None:
    reference = "    DB_PASSWORD: {secretRef: db-password}\n"
    text = original.replace("    LOG_LEVEL: debug\n", "    LOG_LEVEL: debug\n" + reference)
    text += f"secrets:\n  agent:\n    db-password: {{keyVaultUrl: \"{url}\"}}\n"
    (root / "solutions" / "acme-corp.yaml").write_text(text)


def _agent_diff(run_cli: Run, root: Path) -> tuple[str, list[str]]:
    code, out, err = run_cli("-w", str(root), "status", "acme-corp", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    agent = next(r for r in row["resources"] if r["name"] == azure_names("acme-corp").apps["agent"])
    return agent["sync"], agent["diff"]


def test_secret_references_provision_drift_and_converge_on_the_local_platform(run_cli: Run, root: Path) -> None:
    code, _, err = run_cli("-w", str(root), "provision", "acme-corp", "--yes", "--json")
    assert code == 0, err
    original = (root / "solutions" / "acme-corp.yaml").read_text()
    _with_secrets(root, original, f"{VAULT}/db-password")
    assert _agent_diff(run_cli, root) == ("drifted", ["secret db-password added",
                                                      "env DB_PASSWORD secretRef db-password added"])
    code, out, err = run_cli("-w", str(root), "provision", "acme-corp", "--yes", "--json")
    assert code == 0, err
    assert json.loads(out)["writes"] == 1
    assert _agent_diff(run_cli, root) == ("synced", [])

    _with_secrets(root, original, f"{VAULT}/db-password/0123456789abcdef0123456789abcdef")  # pin a version
    code, out, err = run_cli("-w", str(root), "plan", "acme-corp", "--json")
    assert code == 0, err
    [plan] = json.loads(out)["solutions"]
    changed = {a["name"]: a["changes"] for a in plan["actions"] if a["action"] != "none"}
    assert changed == {azure_names("acme-corp").apps["agent"]: ["secret db-password keyVaultUrl changed"]}
    code, out, err = run_cli("-w", str(root), "provision", "acme-corp", "--yes", "--json")
    assert code == 0, err
    assert json.loads(out)["writes"] == 1
    assert _agent_diff(run_cli, root) == ("synced", [])
    code, out, err = run_cli("-w", str(root), "provision", "acme-corp", "--yes", "--json")
    assert code == 0 and json.loads(out)["writes"] == 0, err

    stored = LocalPlatform(root / ".orbit").stored_document("app", azure_names("acme-corp").apps["agent"])
    assert stored is not None
    assert stored["properties"]["configuration"]["secrets"] == [
        {"name": "db-password", "keyVaultUrl": f"{VAULT}/db-password/0123456789abcdef0123456789abcdef",
         "identity": "local"}]


def test_a_plan_to_create_names_the_secrets_by_reference() -> None:
    desired = desired_state(TWO_SECRETS, TARGET, VERSIONS)
    plan = plan_solution(TWO_SECRETS, desired, LiveSnapshot(apps={}, storages={}, shares={}))
    agent = next(a for a in plan.actions if a.name == desired.app("agent").name)
    assert agent.action == "create"
    assert agent.changes == ("image agent:2.1.0", "secret api-token by reference", "secret db-password by reference")


def test_an_identity_written_in_another_case_is_assigned_once() -> None:
    agent = agent_of(make_spec(db_password=KeyVaultSecret(f"{VAULT}/db", PULL.lower())))
    assert agent.identities == (PULL,)
