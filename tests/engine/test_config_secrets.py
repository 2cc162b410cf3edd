"""Key Vault secret references in solution files and defaults: read, merged, and refused with file, line, rule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import MINIMAL_CONFIG, git

from orbit_ops.config.load import load_config, load_solution, load_solutions
from orbit_ops.config.model import WorkspaceConfig
from orbit_ops.config.secrets import SECRET_REF_RULE, VALUE_RULE, KeyVaultSecret
from orbit_ops.errors import ConfigError

VAULT = "https://orbit-kv.vault.azure.net/secrets"
OTHER_IDENTITY = ("/subscriptions/0a1b2c3d-0000-4000-8000-00000000cafe/resourceGroups/orbit-test/providers/"
                  "Microsoft.ManagedIdentity/userAssignedIdentities/orbit-secrets")

WITH_SECRETS = f"""\
id: acme-corp
secrets:
  agent:
    db-password: {{keyVaultUrl: "{VAULT}/db-password"}}
    api-token: {{keyVaultUrl: "{VAULT}/api-token/0123456789abcdef0123456789abcdef", identity: "{OTHER_IDENTITY}"}}
env:
  agent:
    LOG_LEVEL: info
    DB_PASSWORD: {{secretRef: db-password}}
    API_TOKEN: {{secretRef: api-token}}
"""


def test_secrets_and_secret_refs_are_read(make_workspace: Callable[..., Path]) -> None:
    root = make_workspace(solutions={"acme-corp.yaml": WITH_SECRETS})
    [spec] = load_solutions(load_config(root))
    assert spec.secrets["agent"] == {
        "db-password": KeyVaultSecret(f"{VAULT}/db-password", None),
        "api-token": KeyVaultSecret(f"{VAULT}/api-token/0123456789abcdef0123456789abcdef", OTHER_IDENTITY),
    }
    assert spec.secret_env["agent"] == {"DB_PASSWORD": "db-password", "API_TOKEN": "api-token"}
    assert spec.env["agent"] == {"LOG_LEVEL": "info"}  # a reference is not a plain value
    assert spec.secrets["orbit"] == {} and spec.secret_env["mc"] == {}


def test_defaults_share_the_mapping_and_each_solution_names_its_vault(make_workspace: Callable[..., Path]) -> None:
    config = MINIMAL_CONFIG + ("  env:\n    agent:\n      DB_PASSWORD: {secretRef: db-password}\n"
                               "      API_TOKEN: from-defaults\n"
                               f"  secrets:\n    agent:\n      shared: {{keyVaultUrl: \"{VAULT}/shared\"}}\n")
    root = make_workspace(config=config, solutions={
        "acme-corp.yaml": f"id: acme-corp\nsecrets:\n  agent:\n    db-password: {{keyVaultUrl: \"{VAULT}/acme-db\"}}\n",
        # what the solution writes wins over the defaults, whatever its kind
        "beta-corp.yaml": ("id: beta-corp\nenv:\n  agent:\n    DB_PASSWORD: plain-in-beta\n"
                           "    API_TOKEN: {secretRef: shared}\n"),
    })
    acme, beta = load_solutions(load_config(root))
    assert acme.secret_env["agent"] == {"DB_PASSWORD": "db-password"}
    assert acme.secrets["agent"]["db-password"].key_vault_url == f"{VAULT}/acme-db"
    assert set(acme.secrets["agent"]) == {"shared", "db-password"}
    assert acme.env["agent"] == {"API_TOKEN": "from-defaults"}
    assert beta.secret_env["agent"] == {"API_TOKEN": "shared"}
    assert beta.env["agent"] == {"DB_PASSWORD": "plain-in-beta"}


def _solution(secrets: str = "", env: str = "") -> str:
    text = "id: acme-corp\n"
    if secrets:
        text += "secrets:\n  agent:\n" + secrets
    if env:
        text += "env:\n  agent:\n" + env
    return text


SECRET_CASES = [
    # (id, file text, line, part of the rule, text that must not appear in the message)
    ("value instead of a reference", _solution("    db-password: {value: hunter2-in-a-file}\n"), 4,
     "never in a solution file", "hunter2"),
    ("plain string secret", _solution("    db-password: hunter2-in-a-file\n"), 4, "never in a solution file",
     "hunter2"),
    ("upper-case secret name", _solution(f"    DB-Password: {{keyVaultUrl: \"{VAULT}/x\"}}\n"), 4,
     "lowercase letters, digits and '-'", None),
    ("dot in secret name", _solution(f"    db.password: {{keyVaultUrl: \"{VAULT}/x\"}}\n"), 4, "at most 253", None),
    ("secret name ends with '-'", _solution(f"    db-: {{keyVaultUrl: \"{VAULT}/x\"}}\n"), 4, "at most 253", None),
    ("secret name too long", _solution(f"    {'a' * 254}: {{keyVaultUrl: \"{VAULT}/x\"}}\n"), 4, "at most 253", None),
    ("no keyVaultUrl", _solution(f"    db-password: {{identity: \"{OTHER_IDENTITY}\"}}\n"), 4, "keyVaultUrl is", None),
    ("keyVaultUrl typo", _solution(f"    db-password: {{keyVaultURL: \"{VAULT}/x\"}}\n"), 4, "allowed keys here", None),
    ("http keyVaultUrl", _solution("    db-password: {keyVaultUrl: \"http://orbit-kv.vault.azure.net/secrets/x\"}\n"),
     4, "keyVaultUrl is the https URL", None),
    ("vault root, no secret", _solution("    db-password: {keyVaultUrl: \"https://orbit-kv.vault.azure.net/\"}\n"), 4,
     "/secrets/<name>", None),
    ("keys path, not secrets", _solution("    db-password: {keyVaultUrl: \"https://kv.vault.azure.net/keys/x\"}\n"),
     4, "/secrets/<name>", None),
    ("credentials in the URL", _solution("    db-password: {keyVaultUrl: \"https://u:pw@kv.vault.azure.net/secrets/x\"}\n"),
     4, "keyVaultUrl is", None),
    ("query in the URL", _solution("    db-password: {keyVaultUrl: \"https://kv.vault.azure.net/secrets/x?sig=abc\"}\n"),
     4, "keyVaultUrl is", None),
    ("system identity", _solution(f"    db-password: {{keyVaultUrl: \"{VAULT}/x\", identity: system}}\n"), 4,
     "user-assigned", None),
    ("identity not a resource id",
     _solution(f"    db-password: {{keyVaultUrl: \"{VAULT}/x\", identity: orbit-pull}}\n"), 4, "user-assigned", None),
    ("terminal escape in the identity", _solution(
        f"    db-password: {{keyVaultUrl: \"{VAULT}/x\", identity: \"{OTHER_IDENTITY}\\e]0;PWNED\\a\"}}\n"), 4,
     "user-assigned", None),
    ("secrets of an unknown component", "id: acme-corp\nsecrets:\n  web: {}\n", 3, "secrets keys are", None),
    ("secretRef to an undeclared secret", _solution(env="    DB_PASSWORD: {secretRef: db-password}\n"), 4,
     "naming a secret declared", None),
    ("secretRef to another app's secret", (
        f"id: acme-corp\nsecrets:\n  orbit:\n    db-password: {{keyVaultUrl: \"{VAULT}/x\"}}\n"
        "env:\n  agent:\n    DB_PASSWORD: {secretRef: db-password}\n"), 7, "naming a secret declared", None),
    ("env mapping with a value", _solution(env="    DB_PASSWORD: {value: hunter2-in-a-file}\n"), 4,
     "{secretRef: <name>}", "hunter2"),
    ("secretRef with an extra key", _solution(env="    DB_PASSWORD: {secretRef: db, key: x}\n"), 4,
     "{secretRef: <name>}", None),
    ("secretRef not a secret name", _solution(env="    DB_PASSWORD: {secretRef: DB_Password}\n"), 4,
     "lowercase letters", None),
]


@pytest.mark.parametrize(("text", "line", "rule", "hidden"), [case[1:] for case in SECRET_CASES],
                         ids=[case[0] for case in SECRET_CASES])
def test_bad_secret_names_file_line_and_rule(make_workspace: Callable[..., Path], text: str, line: int, rule: str,
                                             hidden: str | None) -> None:
    root = make_workspace(solutions={"acme-corp.yaml": text})
    with pytest.raises(ConfigError) as caught:
        load_solutions(load_config(root))
    error = caught.value
    assert error.exit_code == 2
    assert error.path == root / "solutions" / "acme-corp.yaml"
    assert error.line == line, str(error)
    assert rule in str(error.rule)
    if hidden is not None:
        assert hidden not in str(error)


@pytest.mark.parametrize("url", [
    f"{VAULT}/db-password",
    f"{VAULT}/db-password/ec96f02080254f109c51a1f14cdb1931",
    "https://orbit-kv.vault.azure.cn/secrets/db-password",  # sovereign cloud
    "https://orbit-kv.vault.usgovcloudapi.net/secrets/db-password",
    "https://127.0.0.1:8443/secrets/db-password",  # an emulator
])
def test_key_vault_urls_of_every_cloud_are_accepted(make_workspace: Callable[..., Path], url: str) -> None:
    root = make_workspace(solutions={"acme-corp.yaml": _solution(f"    db-password: {{keyVaultUrl: \"{url}\"}}\n")})
    [spec] = load_solutions(load_config(root))
    assert spec.secrets["agent"]["db-password"].key_vault_url == url


def test_a_defaults_reference_to_no_secret_names_the_solution(make_workspace: Callable[..., Path]) -> None:
    config = MINIMAL_CONFIG + "  env:\n    agent:\n      DB_PASSWORD: {secretRef: db-password}\n"
    root = make_workspace(config=config, solutions={"acme-corp.yaml": "id: acme-corp\n"})
    with pytest.raises(ConfigError, match=r"from orbit\.yaml defaults\.env") as caught:
        load_solutions(load_config(root))
    assert caught.value.path == root / "solutions" / "acme-corp.yaml"


def test_a_value_secret_in_the_defaults_is_refused_in_orbit_yaml(make_workspace: Callable[..., Path]) -> None:
    config = MINIMAL_CONFIG + "  secrets:\n    agent:\n      db-password: {value: hunter2-in-a-file}\n"
    root = make_workspace(config=config)
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    assert caught.value.path == root / "orbit.yaml" and caught.value.line == 10
    assert "hunter2" not in str(caught.value)


SECRET_FRAGMENTS = st.lists(st.sampled_from([
    "secrets:\n", "  agent:\n", "  orbit: ", "    db-password: ", "    DB: ", "{keyVaultUrl: ", f'"{VAULT}/x"', "}",
    "{value: SEKRIT-VALUE-42}", "SEKRIT-VALUE-42", ", identity: ", "system", f'"{OTHER_IDENTITY}"', "\n",
    "env:\n", "    DB_PASSWORD: ", "{secretRef: db-password}", "{secretRef: ", "null", "[1, 2]", "{}", "\t", ": ",
    "https://x/secrets/", "%zz", "@", "?", "#", "\x00", "😀",
]), max_size=20).map(lambda parts: "id: acme-corp\n" + "".join(parts))


@pytest.fixture(scope="module")
def hostile_config(tmp_path_factory: pytest.TempPathFactory) -> WorkspaceConfig:
    root = tmp_path_factory.mktemp("secrets-hostile")
    git(root, "init", "-q")
    (root / "orbit.yaml").write_text(MINIMAL_CONFIG)
    (root / "solutions").mkdir()
    return load_config(root)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=SECRET_FRAGMENTS)
def test_random_secret_declarations_give_config_errors_that_never_quote_a_value(
    hostile_config: WorkspaceConfig, text: str
) -> None:
    path = hostile_config.solutions_dir / "acme-corp.yaml"
    path.write_text(text)
    try:
        load_solution(hostile_config, path)
    except ConfigError as exc:
        assert exc.exit_code == 2 and str(exc).startswith(str(path))
        if exc.rule in (VALUE_RULE, SECRET_REF_RULE):  # what a value would be quoted in
            assert "SEKRIT-VALUE-42" not in str(exc)
