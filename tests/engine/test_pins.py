"""Pin edits keep every byte the operator wrote except the pins, and never overwrite a concurrent edit."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orbit_ops.config.load import load_config, load_solution
from orbit_ops.config.pins import PinFile, edit_pins, read_pin_file, write_pins
from orbit_ops.errors import ConfigError, InputError, OrbitError, RefusedError

ACME = """\
# Acme Corp: hand-edited, see OPS-1234.
# Keep the agent on the canary until the customer signs off.
id: acme-corp
display_name: Acme Corp

images:
  orbit_tag: "1.2.1"
  # agent moves first
  agent_tag: "2.0.0"  # canary
  mc_tag: "1.1.0"
env:
  orbit: {PUBLIC_BASE_URL: "https://acme.example.com"}
"""

SPEC_EXAMPLE = """\
id: acme-corp                 # must equal the file name
display_name: Acme Corp
images: {agent_tag: "2.1.0"}  # orbit_tag and mc_tag from defaults
env:
  orbit: {PUBLIC_BASE_URL: "https://acme.example.com"}
"""

EDIT_CASES: list[tuple[str, str, dict[str, str], str]] = [
    (
        "double-quoted pin stays double-quoted and keeps its end-of-line comment",
        ACME,
        {"agent": "2.1.0"},
        ACME.replace('agent_tag: "2.0.0"  # canary', 'agent_tag: "2.1.0"  # canary'),
    ),
    (
        "a latest pin's own comment is replaced when it is pinned; the other comments stay",
        "# agent floats\nid: acme-corp\nimages:\n  agent_tag: latest   # floats on the newest release\n"
        '  mc_tag: "1.0.0"  # held\n',
        {"agent": "2.1.0"},
        "# agent floats\nid: acme-corp\nimages:\n"
        "  agent_tag: 2.1.0   # was latest (floating) until orbit pinned 2.1.0\n"
        '  mc_tag: "1.0.0"  # held\n',
    ),
    (
        "a pin's own comment is replaced when it goes back to latest",
        'id: acme-corp\nimages:\n  agent_tag: "2.1.0"  # held back: OPS-77\n',
        {"agent": "latest"},
        'id: acme-corp\nimages:\n'
        '  agent_tag: "latest"  # floats on the newest release (was 2.1.0 until orbit set latest)\n',
    ),
    (
        "a comment on a flow mapping's line is the mapping's, not the pin's: kept",
        "id: acme-corp\nimages: {agent_tag: latest}  # mc_tag from defaults\n",
        {"agent": "2.1.0"},
        "id: acme-corp\nimages: {agent_tag: 2.1.0}  # mc_tag from defaults\n",
    ),
    (
        "a latest pin without a comment gets none",
        "id: acme-corp\nimages:\n  agent_tag: latest\n",
        {"agent": "2.1.0"},
        "id: acme-corp\nimages:\n  agent_tag: 2.1.0\n",
    ),
    (
        "single-quoted pin stays single-quoted",
        "id: acme-corp\nimages:\n  mc_tag: '1.0.0'   # pinned by hand\n",
        {"mc": "1.1.0"},
        "id: acme-corp\nimages:\n  mc_tag: '1.1.0'   # pinned by hand\n",
    ),
    (
        "plain pin stays plain",
        "id: acme-corp\nimages:\n  orbit_tag: 1.0.0\n  mc_tag: latest\n",
        {"orbit": "1.2.0-rc.1", "mc": "1.1.0"},
        "id: acme-corp\nimages:\n  orbit_tag: 1.2.0-rc.1\n  mc_tag: 1.1.0\n",
    ),
    (
        "flow mapping stays a flow mapping with the new key added",
        SPEC_EXAMPLE,
        {"mc": "1.1.0"},
        SPEC_EXAMPLE.replace('{agent_tag: "2.1.0"}', '{agent_tag: "2.1.0", mc_tag: "1.1.0"}'),
    ),
    (
        "empty flow mapping gets the pin",
        "id: acme-corp\nimages: {}\n",
        {"agent": "2.1.0"},
        'id: acme-corp\nimages: {agent_tag: "2.1.0"}\n',
    ),
    (
        "multi-line flow mapping keeps its layout",
        'id: acme-corp\nimages: {\n  agent_tag: "2.1.0",\n}\n',
        {"orbit": "1.0.1"},
        'id: acme-corp\nimages: {\n  agent_tag: "2.1.0", orbit_tag: "1.0.1",\n}\n',
    ),
    (
        "new pin in a block mapping goes after the last pin, at its indentation, double-quoted",
        "id: acme-corp\nimages:\n    agent_tag: 2.0.0   # canary\n\n# env below\nenv: {}\n",
        {"mc": "1.1.0"},
        'id: acme-corp\nimages:\n    agent_tag: 2.0.0   # canary\n    mc_tag: "1.1.0"\n\n# env below\nenv: {}\n',
    ),
    (
        "missing images is added right after display_name",
        "# leading\nid: acme-corp\ndisplay_name: Acme Corp  # shown in the console\nenv:\n  mc: {A: b}\n",
        {"agent": "2.1.0"},
        '# leading\nid: acme-corp\ndisplay_name: Acme Corp  # shown in the console\nimages:\n  agent_tag: "2.1.0"\n'
        "env:\n  mc: {A: b}\n",
    ),
    (
        "missing images is added right after id when there is no display_name",
        "id: acme-corp\nshare_quota_gib: 200\n",
        {"mc": "1.1.0", "orbit": "1.0.1"},
        'id: acme-corp\nimages:\n  orbit_tag: "1.0.1"\n  mc_tag: "1.1.0"\nshare_quota_gib: 200\n',
    ),
    (
        "missing images uses the file's own indentation step",
        "id: acme-corp\ndisplay_name: Acme\nenv:\n    orbit:\n        A: b\n",
        {"agent": "2.1.0"},
        'id: acme-corp\ndisplay_name: Acme\nimages:\n    agent_tag: "2.1.0"\nenv:\n    orbit:\n        A: b\n',
    ),
    (
        "missing images in a flow document is added as a flow entry",
        "{id: acme-corp, display_name: Acme, env: {}}\n",
        {"agent": "2.1.0"},
        '{id: acme-corp, display_name: Acme, images: {agent_tag: "2.1.0"}, env: {}}\n',
    ),
    (
        "images with no value gets a block under it, its comment kept",
        "id: acme-corp\nimages:   # none yet\nenv: {}\n",
        {"mc": "1.1.0"},
        'id: acme-corp\nimages:   # none yet\n  mc_tag: "1.1.0"\nenv: {}\n',
    ),
    (
        "images: ~ becomes a one-line flow mapping",
        "id: acme-corp\nimages: ~  # none yet\n",
        {"mc": "1.1.0"},
        'id: acme-corp\nimages: {mc_tag: "1.1.0"}  # none yet\n',
    ),
    (
        "a pin with no value gets one",
        "id: acme-corp\nimages:\n  agent_tag:  # tbd\n  mc_tag: 1.0.0\n",
        {"agent": "2.1.0"},
        'id: acme-corp\nimages:\n  agent_tag: "2.1.0"  # tbd\n  mc_tag: 1.0.0\n',
    ),
    (
        "flow entry without a value gets one, the new pin after it",
        "id: acme-corp\nimages: {agent_tag}\n",
        {"agent": "2.1.0", "mc": "1.1.0"},
        'id: acme-corp\nimages: {agent_tag: "2.1.0", mc_tag: "1.1.0"}\n',
    ),
    (
        "flow entry with an empty value gets one",
        "id: acme-corp\nimages: {agent_tag: }\n",
        {"agent": "2.1.0"},
        'id: acme-corp\nimages: {agent_tag: "2.1.0" }\n',
    ),
    (
        "CRLF file stays CRLF, new lines included",
        "id: acme-corp\r\ndisplay_name: Acme\r\nimages:\r\n  orbit_tag: '1.0.0'  # keep\r\n",
        {"orbit": "1.1.0", "agent": "2.1.0"},
        "id: acme-corp\r\ndisplay_name: Acme\r\nimages:\r\n  orbit_tag: '1.1.0'  # keep\r\n  agent_tag: \"2.1.0\"\r\n",
    ),
    (
        "CRLF file with images missing stays CRLF",
        "# c\r\nid: acme-corp\r\ndisplay_name: Acme\r\n",
        {"mc": "1.1.0"},
        '# c\r\nid: acme-corp\r\ndisplay_name: Acme\r\nimages:\r\n  mc_tag: "1.1.0"\r\n',
    ),
    (
        "a file without a final line break keeps ending without one",
        "id: acme-corp\ndisplay_name: Acme",
        {"agent": "2.1.0"},
        'id: acme-corp\ndisplay_name: Acme\nimages:\n  agent_tag: "2.1.0"',
    ),
    (
        "key order kept when images comes last",
        'env:\n  orbit: {A: b}\nid: acme-corp\nimages:\n  mc_tag: "1.0.0"\n',
        {"mc": "1.1.0"},
        'env:\n  orbit: {A: b}\nid: acme-corp\nimages:\n  mc_tag: "1.1.0"\n',
    ),
    (
        "a tag or anchor before the pin stays",
        'id: acme-corp\nimages:\n  agent_tag: !!str 2.0.0\n  mc_tag: &mc "1.0.0"\n',
        {"agent": "2.1.0", "mc": "1.1.0"},
        'id: acme-corp\nimages:\n  agent_tag: !!str 2.1.0\n  mc_tag: &mc "1.1.0"\n',
    ),
    (
        "floating pin to latest",
        "id: acme-corp\nimages: {agent_tag: '2.0.0'}\n",
        {"agent": "latest"},
        "id: acme-corp\nimages: {agent_tag: 'latest'}\n",
    ),
    (
        "a byte-order mark stays",
        '\ufeffid: acme-corp\nimages: {agent_tag: "2.0.0"}\n',
        {"agent": "2.1.0"},
        '\ufeffid: acme-corp\nimages: {agent_tag: "2.1.0"}\n',
    ),
]


@pytest.mark.parametrize(
    ("before", "changes", "after"), [case[1:] for case in EDIT_CASES], ids=[case[0] for case in EDIT_CASES]
)
def test_edit_changes_only_the_pins(before: str, changes: dict[str, str], after: str) -> None:
    assert edit_pins(before, changes) == after


NOOP_CASES = [
    (ACME, {"agent": "2.0.0"}),
    (SPEC_EXAMPLE, {"agent": "2.1.0"}),
    ("id: acme-corp\r\nimages:\r\n    mc_tag:   1.0.0   # odd spacing\r\n", {"mc": "1.0.0"}),
    ("id: acme-corp\ndisplay_name: Acme\n", {}),
]


@pytest.mark.parametrize(("text", "changes"), NOOP_CASES)
def test_setting_a_pin_to_its_value_is_byte_identical(text: str, changes: dict[str, str]) -> None:
    assert edit_pins(text, changes) is text


ERROR_CASES: list[tuple[str, str, dict[str, str], type[Exception], int | None, str]] = [
    ("file is a list", "- id: acme-corp\n", {"agent": "2.1.0"}, ConfigError, 1, "a solution file is a mapping"),
    ("file is empty", "# nothing\n", {"agent": "2.1.0"}, ConfigError, None, "a solution file is a mapping"),
    (
        "images is a list",
        "id: acme-corp\nimages:\n  - agent_tag: 1.0.0\n",
        {"agent": "2.1.0"},
        ConfigError,
        2,
        "images maps",
    ),
    ("images is text", "id: acme-corp\n\nimages: 2.1.0\n", {"agent": "2.1.0"}, ConfigError, 3, "images maps"),
    (
        "pin is a block scalar",
        "id: acme-corp\nimages:\n  agent_tag: |\n    2.0.0\n",
        {"agent": "2.1.0"},
        ConfigError,
        3,
        "one line",
    ),
    (
        "pin is a mapping",
        "id: acme-corp\nimages:\n  agent_tag: {v: 1}\n",
        {"agent": "2.1.0"},
        ConfigError,
        3,
        "one line",
    ),
    (
        "images shared through an alias",
        'base: &b {agent_tag: "1.0.0"}\nid: acme-corp\nimages: *b\n',
        {"agent": "2.1.0"},
        ConfigError,
        3,
        "anchors and aliases",
    ),
    (
        "pin shared through an alias",
        'id: acme-corp\nimages:\n  agent_tag: &v "1.0.0"\n  mc_tag: *v\n',
        {"agent": "2.1.0"},
        ConfigError,
        3,
        "anchors and aliases",
    ),
    ("invalid YAML", 'id: acme-corp\nimages: {agent_tag: "1.0.0"\n', {"agent": "2.1.0"}, ConfigError, 3, "YAML syntax"),
    (
        "duplicate images",
        "id: acme-corp\nimages: {}\nimages: {}\n",
        {"agent": "2.1.0"},
        ConfigError,
        3,
        "each key once",
    ),
    ("unknown component", "id: acme-corp\n", {"web": "1.0.0"}, InputError, None, "not an app component"),
    ("key instead of component", "id: acme-corp\n", {"agent_tag": "1.0.0"}, InputError, None, "not an app component"),
    ("leading v", "id: acme-corp\n", {"agent": "v2.1.0"}, InputError, None, "SemVer"),
    ("not a version", "id: acme-corp\n", {"agent": "2.1"}, InputError, None, "SemVer"),
    ("injection attempt", "id: acme-corp\n", {"agent": '1.0.0"\nid: other'}, InputError, None, "SemVer"),
]


@pytest.mark.parametrize(
    ("text", "changes", "error", "line", "rule"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_edit_refuses_with_file_line_and_rule(
    text: str, changes: dict[str, str], error: type[Exception], line: int | None, rule: str
) -> None:
    with pytest.raises(error) as caught:
        edit_pins(text, changes, path="solutions/acme-corp.yaml")
    assert rule in str(caught.value)
    if isinstance(caught.value, ConfigError):
        assert caught.value.path == Path("solutions/acme-corp.yaml")
        assert caught.value.line == line
        assert str(caught.value).startswith("solutions/acme-corp.yaml")
    else:
        assert not isinstance(caught.value, ConfigError)


@pytest.mark.parametrize(
    ("text", "after"),
    [
        (
            'base: &b {orbit_tag: "1.0.0"}\nid: acme-corp\nimages:\n  <<: *b\n',
            'base: &b {orbit_tag: "1.0.0"}\nid: acme-corp\nimages:\n  <<: *b\n  mc_tag: "1.1.0"\n',
        ),
        (
            'base: &b {orbit_tag: "1.0.0"}\nid: acme-corp\nimages: {<<: *b}\n',
            'base: &b {orbit_tag: "1.0.0"}\nid: acme-corp\nimages: {<<: *b, mc_tag: "1.1.0"}\n',
        ),
    ],
)
def test_new_pin_goes_after_an_alias_not_at_its_anchor(text: str, after: str) -> None:
    assert edit_pins(text, {"mc": "1.1.0"}) == after


def test_edit_that_would_change_other_data_is_refused() -> None:
    # Overriding a merged key reads back as a duplicate key, so the self-check refuses the edit.
    text = 'base: &b {agent_tag: "1.0.0"}\nid: acme-corp\nimages:\n  <<: *b\n'
    with pytest.raises(ConfigError, match="edited in place") as caught:
        edit_pins(text, {"agent": "2.1.0"})
    assert caught.value.line == 3


# --- writing ------------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "acme-corp.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def test_write_replaces_the_file_and_reports_the_change(tmp_path: Path) -> None:
    path = _write(tmp_path, ACME)
    pin_file = read_pin_file(path)
    edit = write_pins(pin_file, {"agent": "2.1.0", "mc": "1.1.0"})
    written = path.read_bytes()
    assert written.decode() == edit_pins(ACME, {"agent": "2.1.0", "mc": "1.1.0"})
    assert edit.path == path
    assert edit.before == {"agent": "2.0.0", "mc": "1.1.0"}
    assert edit.after == {"agent": "2.1.0", "mc": "1.1.0"}
    assert edit.changed
    assert edit.sha256_before == hashlib.sha256(ACME.encode()).hexdigest() == pin_file.sha256
    assert edit.sha256_after == hashlib.sha256(written).hexdigest()
    assert _leftovers(tmp_path) == []


def test_before_is_none_for_an_inherited_pin(tmp_path: Path) -> None:
    path = _write(tmp_path, SPEC_EXAMPLE)
    edit = write_pins(read_pin_file(path), {"orbit": "1.3.0"})
    assert edit.before == {"orbit": None}


def test_noop_write_touches_nothing(tmp_path: Path) -> None:
    path = _write(tmp_path, ACME)
    seen = path.stat()
    validated: list[str] = []
    edit = write_pins(read_pin_file(path), {"agent": "2.0.0"}, validate=validated.append)
    after = path.stat()
    assert not edit.changed
    assert edit.sha256_after == edit.sha256_before
    assert (after.st_ino, after.st_mtime_ns) == (seen.st_ino, seen.st_mtime_ns)
    assert validated == []


def test_crlf_file_stays_crlf_on_disk(tmp_path: Path) -> None:
    text = "# Acme\r\nid: acme-corp\r\ndisplay_name: Acme\r\nenv: {}\r\n"
    path = _write(tmp_path, text)
    pin_file = read_pin_file(path)
    assert pin_file.text == text
    assert pin_file.sha256 == hashlib.sha256(text.encode()).hexdigest()
    write_pins(pin_file, {"agent": "2.1.0"})
    raw = path.read_bytes()
    assert raw == b'# Acme\r\nid: acme-corp\r\ndisplay_name: Acme\r\nimages:\r\n  agent_tag: "2.1.0"\r\nenv: {}\r\n'


def test_file_changed_since_read_is_refused_and_kept(tmp_path: Path) -> None:
    path = _write(tmp_path, ACME)
    pin_file = read_pin_file(path)
    concurrent = ACME.replace("Acme Corp\n", "Acme Corporation\n")
    path.write_text(concurrent)
    with pytest.raises(RefusedError) as caught:
        write_pins(pin_file, {"agent": "2.1.0"})
    assert str(path) in str(caught.value)
    assert "changed since it was read" in str(caught.value)
    assert caught.value.exit_code == 2
    assert path.read_text() == concurrent
    assert _leftovers(tmp_path) == []


def test_edit_landing_during_validation_is_refused_and_kept(tmp_path: Path) -> None:
    path = _write(tmp_path, ACME)
    pin_file = read_pin_file(path)
    concurrent = ACME + "share_quota_gib: 200\n"

    def validate_while_someone_edits(text: str) -> None:
        path.write_text(concurrent)

    with pytest.raises(RefusedError, match="changed since it was read"):
        write_pins(pin_file, {"agent": "2.1.0"}, validate=validate_while_someone_edits)
    assert path.read_text() == concurrent
    assert _leftovers(tmp_path) == []


def test_file_removed_since_read_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, ACME)
    pin_file = read_pin_file(path)
    path.unlink()
    with pytest.raises(RefusedError, match="removed since it was read"):
        write_pins(pin_file, {"agent": "2.1.0"})
    assert not path.exists()


def test_validation_failure_writes_nothing(tmp_path: Path) -> None:
    path = _write(tmp_path, ACME)
    seen: list[str] = []

    def refuse(text: str) -> None:
        seen.append(text)
        raise ConfigError(path, "no", rule="test")

    with pytest.raises(ConfigError, match="no"):
        write_pins(read_pin_file(path), {"agent": "2.1.0"}, validate=refuse)
    assert seen == [edit_pins(ACME, {"agent": "2.1.0"})]
    assert path.read_text() == ACME
    assert _leftovers(tmp_path) == []


def test_validate_with_load_solution(make_workspace: Callable[..., Path]) -> None:
    root = make_workspace(solutions={"acme-corp.yaml": SPEC_EXAMPLE, "broken.yaml": "id: broken\nimagse: {}\n"})
    config = load_config(root)
    good = root / "solutions" / "acme-corp.yaml"
    write_pins(read_pin_file(good), {"mc": "1.1.0"}, validate=lambda text: load_solution(config, good, text=text))
    assert load_solution(config, good).images == {"orbit_tag": "1.0.0", "agent_tag": "2.1.0", "mc_tag": "1.1.0"}

    broken = root / "solutions" / "broken.yaml"
    with pytest.raises(ConfigError, match="imagse"):
        write_pins(
            read_pin_file(broken), {"mc": "1.1.0"}, validate=lambda text: load_solution(config, broken, text=text)
        )
    assert broken.read_text() == "id: broken\nimagse: {}\n"


def test_file_mode_is_kept(tmp_path: Path) -> None:
    path = _write(tmp_path, ACME)
    path.chmod(0o640)
    write_pins(read_pin_file(path), {"agent": "2.1.0"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_symlinked_file_is_written_through_and_the_link_kept(tmp_path: Path) -> None:
    real = tmp_path / "shared"
    real.mkdir()
    target = _write(real, ACME)
    link = tmp_path / "acme-corp.yaml"
    link.symlink_to(target)
    write_pins(read_pin_file(link), {"agent": "2.1.0"})
    assert link.is_symlink()
    assert 'agent_tag: "2.1.0"  # canary' in target.read_text()
    assert _leftovers(real) == []


def test_replace_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, ACME)
    pin_file = read_pin_file(path)

    def crash(src: Any, dst: Any) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(ConfigError, match="cannot write"):
        write_pins(pin_file, {"agent": "2.1.0"})
    assert path.read_text() == ACME
    assert _leftovers(tmp_path) == []


def test_read_refuses_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "acme-corp.yaml"
    path.write_bytes(b"id: acme-corp\ndisplay_name: Caf\xe9\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        read_pin_file(path)


def test_pin_file_is_frozen(tmp_path: Path) -> None:
    pin_file = read_pin_file(_write(tmp_path, ACME))
    assert isinstance(pin_file, PinFile)
    with pytest.raises(AttributeError):
        pin_file.text = ""  # type: ignore[misc]


# --- property: the edit changes the pins and nothing else --------------------------------------

TEMPLATES = [
    SPEC_EXAMPLE.replace('"2.1.0"', '"<agent>"'),
    ACME.replace('"1.2.1"', '"<orbit>"').replace('"2.0.0"', '"<agent>"').replace('"1.1.0"', '"<mc>"'),
    "# Globex\n# owner: team-b\nid: globex\ndisplay_name: Globex  # renamed 2024\n\nenv:\n    agent:\n"
    "        SLACK_URL: https://hooks.example.com/x   # rotated\n",
    "id: initech\ndisplay_name: Initech\nimages:\n  mc_tag: <mc>   # plain\n  # orbit waits for the fix\n"
    "  orbit_tag: '<orbit>'\nshare_quota_gib: 250\n",
    "id: umbrella\nimages:   # all from defaults\nenv: {}\n",
    "{id: hooli, display_name: Hooli, images: {orbit_tag: '<orbit>'}}\n",
]

_number = st.integers(min_value=0, max_value=999).map(str)
_identifier = st.one_of(_number, st.from_regex(r"[0-9]*[a-zA-Z-][0-9a-zA-Z-]{0,5}", fullmatch=True))
_versions = st.builds(
    lambda core, pre, build: ".".join(core) + (f"-{'.'.join(pre)}" if pre else "") + (f"+{build}" if build else ""),
    st.lists(_number, min_size=3, max_size=3),
    st.lists(_identifier, max_size=3),
    st.one_of(st.none(), st.from_regex(r"[0-9a-zA-Z-]{1,6}(\.[0-9a-zA-Z-]{1,6}){0,2}", fullmatch=True)),
) | st.just("latest")


@settings(max_examples=300, deadline=None)
@given(
    template=st.sampled_from(TEMPLATES),
    start=st.fixed_dictionaries({"orbit": _versions, "agent": _versions, "mc": _versions}),
    changes=st.dictionaries(st.sampled_from(["orbit", "agent", "mc"]), _versions, min_size=1),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_edit_changes_exactly_the_pins(
    template: str, start: dict[str, str], changes: dict[str, str], newline: str
) -> None:
    text = template
    for component, version in start.items():
        text = text.replace(f"<{component}>", version)
    text = text.replace("\n", newline)
    edited = edit_pins(text, changes)

    expected = yaml.safe_load(text)
    expected["images"] = {
        **(expected.get("images") or {}),
        **{f"{component}_tag": version for component, version in changes.items()},
    }
    assert yaml.safe_load(edited) == expected
    # A block pin that starts or stops floating has its own comment replaced (decision 0034); every other
    # comment is kept.
    toggled = {f"{c}_tag": v for c, v in changes.items() if (start[c] == "latest") != (v == "latest")}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            assert line in edited.splitlines()
        pin = line.strip().partition(":")[0]
        if "#" in line and pin in toggled and line.startswith("  "):
            note = "# floats on the newest release" if toggled[pin] == "latest" else "# was latest (floating)"
            assert note in edited
        elif "#" in line:
            assert line[line.index("#") :] in edited
    if newline == "\r\n":
        assert "\n" not in edited.replace("\r\n", "")
    assert edit_pins(edited, changes) is edited


_FRAGMENTS = [
    "id: acme-corp",
    "display_name: Acme",
    "images:",
    "images: {}",
    "images: ~",
    "images: [x]",
    "images: &i",
    "images: *i",
    "  agent_tag: 1.0.0",
    '  mc_tag: "1.0.0"  # c',
    "  orbit_tag: '1.0.0'",
    "  agent_tag:",
    "  agent_tag: |",
    "    2.0.0",
    "  <<: *i",
    "base: &i {orbit_tag: 1.0.0}",
    "{id: a, images: {mc_tag}}",
    "# comment",
    "",
    "---",
    "...",
    "env:",
    "    orbit: {A: b}",
    "  - item",
    "images: {agent_tag: 1.0.0,",
    "  mc_tag: 2}",
    "\tbad: tab",
    "key: 'unterminated",
    "? complex",
    ": value",
    "display_name: >",
    "  folded",
]


@settings(max_examples=500, deadline=None)
@given(
    lines=st.lists(st.sampled_from(_FRAGMENTS), max_size=10),
    newline=st.sampled_from(["\n", "\r\n"]),
    final=st.booleans(),
    changes=st.dictionaries(st.sampled_from(["orbit", "agent", "mc"]), _versions, min_size=1),
)
def test_any_text_gives_a_correct_edit_or_an_orbit_error(
    lines: list[str], newline: str, final: bool, changes: dict[str, str]
) -> None:
    text = newline.join(lines) + (newline if final else "")
    try:
        edited = edit_pins(text, changes)
    except OrbitError:
        return
    expected = yaml.safe_load(text)
    expected["images"] = {
        **(expected.get("images") or {}),
        **{f"{component}_tag": version for component, version in changes.items()},
    }
    assert yaml.safe_load(edited) == expected
