"""Workspace config and solution files: every rule broken gives file, line and rule; exit 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support import MINIMAL_CONFIG

from orbit_ops.config.load import find_solution, find_workspace, load_config, load_solutions
from orbit_ops.config.model import InvalidFilesError
from orbit_ops.errors import ConfigError, InputError, NotFoundError

GOOD_SOLUTION = """\
# Acme
id: acme-corp
display_name: Acme Corp
images: {agent_tag: "2.1.0"}
env:
  orbit: {PUBLIC_BASE_URL: "https://acme.example.com"}
"""


def test_defaults_fill_what_a_solution_omits(make_workspace: Callable[..., Path]) -> None:
    root = make_workspace(solutions={"acme-corp.yaml": GOOD_SOLUTION})
    config = load_config(root)
    [spec] = load_solutions(config)
    assert spec.images == {"orbit_tag": "1.0.0", "agent_tag": "2.1.0", "mc_tag": "1.0.0"}
    assert spec.env["orbit"] == {"PUBLIC_BASE_URL": "https://acme.example.com"}
    assert spec.env["mc"] == {}
    assert spec.share_quota_gib == 100
    assert config.components["agent"].dockerfile == "apps/agent/Dockerfile"


CONFIG_CASES = [
    ("malformed YAML", MINIMAL_CONFIG + "\tbackend: local\n", 8, "YAML syntax"),
    ("unknown top-level key", MINIMAL_CONFIG + "solution_dir: x\n", 8, "allowed keys here"),
    ("typo in component", MINIMAL_CONFIG.replace("agent: {context", "agent: {contxt"), 4, "allowed keys here"),
    ("unknown backend", MINIMAL_CONFIG + "backend: aws\n", 8, "backend is one of"),
    ("missing platform repo", MINIMAL_CONFIG.replace("platform_repo: .", "platform_repo: ../nowhere"), 1,
     "platform_repo names a git repository"),
    ("missing app component", MINIMAL_CONFIG.replace("  mc: {context: apps/mc}\n", ""), 2, "orbit, agent and mc"),
    ("bad default pin", MINIMAL_CONFIG.replace('mc_tag: "1.0.0"', "mc_tag: banana"), 7, "a pin is a released"),
    ("azure without section", MINIMAL_CONFIG + "backend: azure\n", 8, "backend: azure needs"),
    ("duplicate key", MINIMAL_CONFIG + "platform_repo: .\n", 8, "each key once"),
    ("context leaves repo", MINIMAL_CONFIG.replace("apps/mc", "../mc"), 5, "relative to the platform repo"),
]


@pytest.mark.parametrize(("text", "line", "rule"), [case[1:] for case in CONFIG_CASES],
                         ids=[case[0] for case in CONFIG_CASES])
def test_bad_config_names_file_line_and_rule(make_workspace: Callable[..., Path], text: str, line: int,
                                             rule: str) -> None:
    root = make_workspace(config=text)
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    error = caught.value
    assert error.exit_code == 2
    assert error.path == root / "orbit.yaml"
    assert error.line == line
    assert rule in str(error.rule)
    assert str(error).startswith(f"{root / 'orbit.yaml'}:{line}: ")


SOLUTION_CASES = [
    ("malformed YAML", "acme-corp.yaml", "id: acme-corp\nimages: {agent_tag: 1\n", None, "YAML syntax"),
    ("unknown key (typo)", "acme-corp.yaml", "id: acme-corp\nimagse: {agent_tag: '1.0.0'}\n", 2, "allowed keys"),
    ("id differs from file", "acme-corp.yaml", "id: acme\n", 1, "equals its file name"),
    ("invalid id", "Acme_Corp.yaml", "id: Acme_Corp\n", 1, "3-54 characters"),
    ("unknown component pin", "acme-corp.yaml", "id: acme-corp\nimages:\n  web_tag: '1.0.0'\n", 3,
     "images keys are"),
    ("unknown component env", "acme-corp.yaml", "id: acme-corp\nenv:\n  web: {A: b}\n", 3, "env keys are"),
    ("pin not a version", "acme-corp.yaml", "id: acme-corp\nimages:\n  agent_tag: two\n", 3, "a pin is a released"),
    ("pin with leading v", "acme-corp.yaml", "id: acme-corp\nimages:\n  agent_tag: v1.0.0\n", 3, "a pin is"),
    ("pin as a number", "acme-corp.yaml", "id: acme-corp\nimages:\n  agent_tag: 2.1\n", 3, "a pin is"),
    ("missing id", "acme-corp.yaml", "display_name: Acme\n", 1, "states its id"),
    ("not a mapping", "acme-corp.yaml", "- id: acme-corp\n", 1, "a solution file is a mapping"),
    ("nested env value", "acme-corp.yaml", "id: acme-corp\nenv:\n  orbit:\n    X: [1]\n", 4, "values are text"),
    ("zero quota", "acme-corp.yaml", "id: acme-corp\nshare_quota_gib: 0\n", 2, "quota in GiB"),
]


@pytest.mark.parametrize(("name", "text", "line", "rule"), [case[1:] for case in SOLUTION_CASES],
                         ids=[case[0] for case in SOLUTION_CASES])
def test_bad_solution_names_file_line_and_rule(make_workspace: Callable[..., Path], name: str, text: str,
                                               line: int | None, rule: str) -> None:
    root = make_workspace(solutions={name: text})
    with pytest.raises(ConfigError) as caught:
        load_solutions(load_config(root))
    error = caught.value
    assert error.path == root / "solutions" / name
    if line is not None:
        assert error.line == line
    else:
        assert error.line is not None
    assert rule in str(error.rule)


def test_leading_v_pin_gets_a_hint(make_workspace: Callable[..., Path]) -> None:
    root = make_workspace(solutions={"acme-corp.yaml": "id: acme-corp\nimages:\n  agent_tag: v1.0.0\n"})
    with pytest.raises(ConfigError, match="drop the leading 'v'"):
        load_solutions(load_config(root))


def test_duplicate_ids_across_yaml_and_yml(make_workspace: Callable[..., Path]) -> None:
    root = make_workspace(solutions={"acme-corp.yaml": "id: acme-corp\n", "acme-corp.yml": "id: acme-corp\n"})
    with pytest.raises(ConfigError, match="duplicate solution id 'acme-corp'"):
        load_solutions(load_config(root))


def test_every_bad_file_is_listed_at_once(make_workspace: Callable[..., Path]) -> None:
    root = make_workspace(solutions={"aaa.yaml": "id: bbb\n", "ccc.yaml": "id: ccc\nfoo: 1\n", "ddd.yaml": "id: ddd\n"})
    with pytest.raises(InvalidFilesError) as caught:
        load_solutions(load_config(root))
    assert [error.path.name for error in caught.value.errors] == ["aaa.yaml", "ccc.yaml"]
    assert caught.value.exit_code == 2


def test_workspace_is_found_upward_and_by_env(make_workspace: Callable[..., Path],
                                               monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = make_workspace()
    deep = root / "a" / "b"
    deep.mkdir(parents=True)
    assert find_workspace(start=deep) == root
    monkeypatch.setenv("ORBIT_WORKSPACE", str(root))
    assert find_workspace(start=tmp_path) == root
    with pytest.raises(InputError, match=r"no orbit\.yaml"):
        find_workspace(tmp_path)


def test_unknown_solution_suggests_the_close_one(make_workspace: Callable[..., Path]) -> None:
    root = make_workspace(solutions={"acme-corp.yaml": GOOD_SOLUTION})
    config = load_config(root)
    with pytest.raises(NotFoundError, match="did you mean 'acme-corp'"):
        find_solution(config, "acme-crop")
    with pytest.raises(InputError, match="3-54 characters"):
        find_solution(config, "ACME")


@pytest.mark.parametrize(
    ("entries", "line", "problem"),
    [
        ("secret_env_names: STRIPE_*\n", 8, "must be a list, found str"),
        ("secret_env_names:\n  - STRIPE_*\n  - 'has space'\n", 10, "entry 'has space' is not a name"),
        ("secret_env_names:\n  - 12\n", 9, "entry int 12 is not a name"),
        ("secret_env_names:\n  - {a: b}\n", 9, "entry a mapping is not a name"),
    ],
)
def test_bad_secret_env_names_give_file_line_and_rule(make_workspace: Callable[..., Path], entries: str, line: int,
                                                      problem: str) -> None:
    root = make_workspace(config=MINIMAL_CONFIG + entries)
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    assert str(caught.value).startswith(f"{root / 'orbit.yaml'}:{line}: ")
    assert problem in str(caught.value) and "glob patterns" in str(caught.value.rule)


def test_secret_env_names_extend_the_masked_names_and_values_register_on_load(
        make_workspace: Callable[..., Path]) -> None:
    from orbit_ops.redact import clear_registered_secrets, is_secret_name, redact

    clear_registered_secrets()
    solution = GOOD_SOLUTION + "  agent: {DB_PASSWORD: hunter3-rotated, STRIPE_LIVE: sk-live-42x, PIN: '004217'}\n"
    root = make_workspace(config=MINIMAL_CONFIG + "secret_env_names: ['stripe_*', PIN]\n",
                          solutions={"acme-corp.yaml": solution})
    try:
        config = load_config(root)
        assert config.secret_env_names == ("stripe_*", "PIN")
        assert is_secret_name("STRIPE_LIVE") and is_secret_name("PIN")
        load_solutions(config)
        assert redact("refused: hunter3-rotated, sk-live-42x") == "refused: ***, ***"
        assert redact("pid 004217") == "pid 004217"  # a short number is not masked in every log (decision 0031)
    finally:
        clear_registered_secrets()
