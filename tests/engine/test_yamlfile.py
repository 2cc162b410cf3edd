"""YAML loading: the same data as PyYAML's safe loader, plus the line of every key, for any document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orbit_ops.errors import ConfigError
from orbit_ops.yamlfile import load_yaml

PATH = Path("solutions/acme-corp.yaml")


def reference(text: str) -> Any:
    """What PyYAML's own (pure-Python) safe loader makes of ``text``, or the error it raises."""
    try:
        return yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        return type(exc)


def ours(text: str) -> Any:
    try:
        return load_yaml(PATH, text=text).data
    except ConfigError as exc:
        return exc


@pytest.mark.parametrize(
    "text",
    [
        "id: acme-corp\nimages: {agent_tag: \"2.1.0\"}\nenv:\n  orbit: {A: 1, B: yes, C: null, D: ~}\n",
        "a: 1\nb: [1, 2, {c: d}]\nc: 1.5e3\nd: .inf\ne: 0x1f\nf: 2001-12-14\ng: 2001-12-14t21:59:43.10-05:00\n",
        "1: one\n2.5: two\nnull: three\ntrue: four\n",
        "x: &a {k: v}\ny: *a\n",  # an alias: PyYAML builds it
        "base: &b {orbit_tag: '1.0.0'}\nimages:\n  <<: *b\n  mc_tag: '1.1.0'\n",  # a merge key
        "a: !!binary aGVsbG8=\nb: !!set {x, y}\nc: !!omap [{x: 1}]\n",  # other tags
        "- 1\n- [2, [3, [4]]]\n- {a: {b: {c: d}}}\n",
        "",
        "# only a comment\n",
        "'quoted': \"double\"\nplain: 'text with: colon'\n",
    ],
)
def test_data_is_what_the_safe_loader_makes(text: str) -> None:
    assert repr(ours(text)) == repr(reference(text))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([
    "id: acme-corp\n", "images:\n", "  agent_tag: ", '"2.1.0"\n', "1.0\n", "yes\n", "~\n", "env:\n", "  orbit:\n",
    "    A: b\n", "- x\n", "- 2\n", "&a [*a]\n", "*a\n", "{", "}", "[", "]", ": ", "k: v\n", "k: w\n", "? complex\n",
    "<<: *b\n", "base: &b {agent_tag: 1}\n", "  <<: *b\n", "  agent_tag: x\n", "a: !!binary aGk=\n", "t: 2001-12-14\n",
]), max_size=12).map("".join))
def test_any_document_loads_as_the_safe_loader_would_or_fails_with_a_config_error(text: str) -> None:
    expected = reference(text)
    got = ours(text)
    if isinstance(got, ConfigError):
        assert got.path == PATH
        assert isinstance(expected, type) or "appears twice" in str(got)
    else:
        assert repr(got) == repr(expected)  # repr: key order counts, and '&a [*a]' is a list inside itself


def test_every_key_path_has_its_line() -> None:
    doc = load_yaml(PATH, text="# header\nid: acme-corp\nimages:\n  agent_tag: '2.1.0'\nenv:\n  orbit:\n"
                               "    A: b\nlist:\n  - x\n  - {y: z}\n")

    assert doc.lines == {
        (): 2, ("id",): 2, ("images",): 3, ("images", "agent_tag"): 4, ("env",): 5, ("env", "orbit"): 6,
        ("env", "orbit", "A"): 7, ("list",): 8, ("list", 0): 9, ("list", 1): 10, ("list", 1, "y"): 10,
    }
    assert doc.line("env", "orbit", "missing") == 6


@pytest.mark.parametrize(
    ("text", "line", "first"),
    [
        ("id: acme-corp\nenv:\n  orbit: {A: 1}\n  orbit: {B: 2}\n", 4, 3),
        # A key given beside a merge key that brings the same key is a duplicate too.
        ('base: &b {agent_tag: "1.0.0"}\nid: acme-corp\nimages:\n  <<: *b\n  agent_tag: "2.1.0"\n', 5, 1),
    ],
)
def test_a_duplicate_key_names_both_lines(text: str, line: int, first: int) -> None:
    with pytest.raises(ConfigError, match=f"appears twice \\(first on line {first}\\)") as caught:
        load_yaml(PATH, text=text)
    assert caught.value.line == line
