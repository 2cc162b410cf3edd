"""Hostile and malformed input: only clean exit-2 errors, never a traceback, a hang or a stray write."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orbit_ops.build.pipeline import parse_target
from orbit_ops.config.load import load_config, load_solution
from orbit_ops.errors import ConfigError, OrbitError
from orbit_ops.names import is_valid_solution_id
from orbit_ops.versions import parse_version, version_key

pytestmark = pytest.mark.resilience
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> object:
    import subprocess

    root = tmp_path_factory.mktemp("hostile")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "orbit.yaml").write_text(
        "platform_repo: .\ncomponents:\n  orbit: {context: a}\n  agent: {context: b}\n  mc: {context: c}\n"
        'defaults:\n  images: {orbit_tag: "1.0.0", agent_tag: "1.0.0", mc_tag: "1.0.0"}\n'
    )
    (root / "solutions").mkdir()
    return load_config(root)


def check(config: object, text: str | bytes) -> None:
    path = config.solutions_dir / "acme-corp.yaml"  # type: ignore[attr-defined]
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        load_solution(config, path)  # type: ignore[arg-type]
    except ConfigError as exc:
        assert exc.exit_code == 2
        assert str(exc).startswith(str(path))


yaml_fragments = st.lists(
    st.sampled_from([
        "id: acme-corp\n", "images:\n", "  agent_tag: ", '"2.1.0"\n', "latest\n", "env:\n", "  orbit:\n",
        "    A: b\n", "- x\n", "&a [*a]\n", "*a\n", "{", "}", "[", "]", ": ", "\t", "!!python/object:os.system\n",
        "? complex\n", "<<: *a\n", "%YAML 1.1\n---\n", "...\n", "'unterminated\n", "\x00", "\ufeff", "#c\n",
        "share_quota_gib: -1\n", "display_name: " + "x" * 100 + "\n", "id: ../../etc/passwd\n",
    ]),
    max_size=25,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=yaml_fragments)
def test_random_yaml_documents_give_config_errors_only(config: object, text: str) -> None:
    check(config, text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_random_bytes_give_config_errors_only(config: object, data: bytes) -> None:
    check(config, data)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("alias bomb", "a: &a ['x','x','x','x','x','x','x','x','x']\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
            f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n" for i in range(9)
        ) + "id: acme-corp\n", "unknown key"),
        ("deep nesting", "id: acme-corp\nenv: " + "[" * 5000 + "]" * 5000 + "\n", "nesting depth"),
        ("huge file", "id: acme-corp\n" + "# padding\n" * 200_000, "at most 1048576 bytes"),
        ("not UTF-8", b"id: acme-corp\ndisplay_name: \xff\xfe\n", "not valid UTF-8"),
        ("tab indentation", "id: acme-corp\nimages:\n\tagent_tag: '1.0.0'\n", "YAML syntax"),
        ("python tag", "id: !!python/object/apply:os.system ['touch /tmp/orbit-pwned']\n", "YAML syntax"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 20 else "",
)
def test_nasty_documents(config: object, name: str, text: str | bytes, message: str) -> None:
    path = config.solutions_dir / "acme-corp.yaml"  # type: ignore[attr-defined]
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError, match=message):
        load_solution(config, path)  # type: ignore[arg-type]
    assert not Path("/tmp/orbit-pwned").exists()


@given(st.text(max_size=80))
def test_solution_ids_never_crash_the_rule(text: str) -> None:
    valid = is_valid_solution_id(text)
    if valid:
        assert 3 <= len(text) <= 54 and text == text.lower() and "--" not in text


@given(st.text(max_size=40))
def test_versions_parse_or_refuse(text: str) -> None:
    assert (version_key(text) is None) == (parse_version(text) is None)


@given(st.text(max_size=60))
def test_build_targets_are_refused_cleanly(text: str) -> None:
    try:
        parse_target(text)
    except OrbitError as exc:
        assert exc.exit_code == 2


@pytest.mark.parametrize("target", ["agent@$(touch /tmp/orbit-pwned)", "agent@1.0.0;touch /tmp/orbit-pwned",
                                    "$(touch /tmp/orbit-pwned)@1.0.0", "agent@`id`", "-rf@1.0.0",
                                    "--upload-pack=touch /tmp/orbit-pwned"])
def test_shell_metacharacters_never_reach_a_shell(demo_workspace: Path, tmp_path: Path, run_cli: Run,
                                                  target: str) -> None:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    code, _, err = run_cli("-w", str(root), "build", target)
    assert code == 2, err
    assert "Traceback" not in err
    assert not Path("/tmp/orbit-pwned").exists()
    assert not (root / ".orbit" / "worktrees").exists() or not any((root / ".orbit" / "worktrees").iterdir())


def test_hostile_solution_file_in_the_cli_is_named_and_never_blinds_the_fleet(demo_workspace: Path, tmp_path: Path,
                                                                             run_cli: Run) -> None:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    (root / "solutions" / "globex.yaml").write_bytes(b"id: globex\nenv: " + b"[" * 3000 + b"]" * 3000 + b"\n")
    for args, expected in ((["solutions"], 0), (["status"], 0), (["provision", "--all", "--yes"], 1),
                           (["roll", "agent", "2.1.0", "--all", "--yes"], 1), (["status", "globex"], 2)):
        code, out, err = run_cli("-w", str(root), *args)
        assert code == expected, (args, err)
        assert "globex.yaml" in err + out and "Traceback" not in err
