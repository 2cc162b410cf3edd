"""Text from files, git, Azure and logs made safe to show on a terminal: control characters rendered visibly.

A solution's ``display_name``, a tag message, an ACR run's log line or an error body quoted in a message can
hold terminal control sequences: ``ESC ] 0 ;`` retitles the window, ``ESC ] 52 ;`` writes the operator's
clipboard, a C1 ``CSI`` (U+009B) moves the cursor, and bidi overrides (U+202E) make text read other than it
is. Every front end passes such values through :func:`visible` where they reach the terminal, so each
control character is shown as its escape (``\\x1b``, ``\\x07``, ``\\u202e``) and none is acted on.

``visible`` is pure, total and idempotent (its output has no character it would change again), so a value
may pass through it more than once. Backslashes are left as they are: ``C:\\build`` stays readable, at the
price that a value holding the four characters ``\\x1b`` looks like one holding an escape character (which,
unlike the real one, is harmless).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from typing import Any

# C0 controls (tab and newline are handled apart), DEL, C1 controls, the bidi embeddings, overrides and
# isolates, and lone surrogates (undecodable bytes kept by ``surrogateescape``: not writable to a terminal).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_OR_BREAK = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: str, *, multiline: bool = False) -> str:
    """``text`` with every control character shown as its escape, ready for a terminal.

    Tabs become spaces (to the next multiple of 8 columns). A newline is kept only when ``multiline``
    (a message of several lines, a block of env values); otherwise it is shown as ``\\n``, so a value stays
    on its own line and row. Never raises.
    """
    if "\t" in text:
        text = text.expandtabs(8)
    pattern = _UNSAFE if multiline else _UNSAFE_OR_BREAK
    if pattern.search(text) is None:  # the common case: nothing to change, no copy
        return text
    return pattern.sub(_escape, text)


def is_visible(text: str, *, multiline: bool = False) -> bool:
    """Whether ``text`` is already safe to show (``visible`` would leave it as it is)."""
    return "\t" not in text and (_UNSAFE if multiline else _UNSAFE_OR_BREAK).search(text) is None


def json_text(value: Any, **kwargs: Any) -> str:
    """``json.dumps(value, **kwargs)`` with DEL, C1 and bidi controls escaped too (``\\u009b``).

    ``json.dumps`` escapes U+0000–U+001F itself, and with ``ensure_ascii`` (its default) everything from
    DEL on, but with ``ensure_ascii=False`` neither DEL, C1 controls nor bidi overrides. These only occur
    inside JSON strings, so escaping them keeps the document valid and equal when parsed.
    """
    text = json.dumps(value, **kwargs)
    if kwargs.get("ensure_ascii", True):  # then DEL is the only one left: the rest were written as \\u escapes
        if "\x7f" not in text:
            return text
    elif _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` naming the option closest to ``word``, or nothing when none is close."""
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
