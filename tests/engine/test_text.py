"""Control characters are shown, never sent to the terminal: ``orbit_ops.text.visible`` and ``json_text``."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbit_ops.text import is_visible, json_text, visible

# What a terminal acts on: C0 controls but tab and newline, DEL, C1, bidi embeddings/overrides/isolates,
# and lone surrogates (undecodable bytes; writing them to stdout raises).
UNSAFE = {*map(chr, range(0x00, 0x20)), *map(chr, range(0x7F, 0xA0)), *map(chr, range(0x202A, 0x202F)),
          *map(chr, range(0x2066, 0x206A))} - {"\t", "\n"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Evil \x1b]0;PWNED\x07", "Evil \\x1b]0;PWNED\\x07"),  # window title (OSC 0)
        ("\x1b]52;c;SGVsbG8=\x07", "\\x1b]52;c;SGVsbG8=\\x07"),  # clipboard write (OSC 52)
        ("\x9b31mred", "\\x9b31mred"),  # C1 CSI
        ("a\x7fb\x00c", "a\\x7fb\\x00c"),
        ("abc\u202edef\u2066", "abc\\u202edef\\u2066"),  # Trojan Source bidi controls
        ("line one\nline two", "line one\\nline two"),
        ("cr\rhere", "cr\\rhere"),
        ("a\tb", "a       b"),
        ("bad byte \udcff", "bad byte \\udcff"),
        ("Acme Corp · ü 日本 ✓", "Acme Corp · ü 日本 ✓"),  # printable text is left alone
        ("C:\\build\\x1b", "C:\\build\\x1b"),  # backslashes stay: what is shown was already harmless
        ("", ""),
    ],
)
def test_visible_shows_control_characters_as_escapes(text: str, expected: str) -> None:
    assert visible(text) == expected


def test_multiline_keeps_newlines_and_still_shows_the_rest() -> None:
    assert visible("a\x1b[2J\nb\r\n", multiline=True) == "a\\x1b[2J\nb\\r\n"


@given(st.text(alphabet=st.characters(codec=None, exclude_categories=())))
def test_visible_output_never_holds_a_control_character(text: str) -> None:
    for multiline in (False, True):
        shown = visible(text, multiline=multiline)
        assert not (set(shown) & UNSAFE)
        assert "\t" not in shown
        assert ("\n" in shown) == (multiline and "\n" in text)
        assert visible(shown, multiline=multiline) == shown  # idempotent: safe to apply twice
        assert is_visible(shown, multiline=multiline)


@given(st.text(alphabet=st.characters(exclude_characters=UNSAFE | {"\t"}, exclude_categories=("Cs",))))
def test_visible_leaves_printable_text_as_it_is(text: str) -> None:
    assert visible(text, multiline=True) == text
    assert visible(text) == text.replace("\n", "\\n")


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=20))
def test_json_text_is_valid_json_without_raw_controls(value: object) -> None:
    for ensure_ascii in (True, False):
        text = json_text(value, ensure_ascii=ensure_ascii)
        assert json.loads(text) == value
        assert not (set(text) & UNSAFE)


def test_json_text_escapes_what_json_dumps_lets_through() -> None:
    value = {"name": "del\x7f c1\x9b bidi\u202e esc\x1b"}
    raw = json.dumps(value, ensure_ascii=False)
    assert "\x7f" in raw and "\x9b" in raw and "\u202e" in raw
    assert json_text(value, ensure_ascii=False) == '{"name": "del\\u007f c1\\u009b bidi\\u202e esc\\u001b"}'
    # With ensure_ascii (json.dumps's default) DEL is the one it lets through.
    assert json_text(value) == '{"name": "del\\u007f c1\\u009b bidi\\u202e esc\\u001b"}'
