"""Dockerfile words: splitting arguments into words and expanding one word, as BuildKit's ``shell`` package.

Quotes and escapes are removed and ``$NAME`` / ``${NAME:-default}`` expanded against a scope; a variable
the scope does not know is kept as written (it may come from the base image's environment, which the
local builder never pulls).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME_START = re.compile(r"[A-Za-z_]")
_NAME_CHARS = re.compile(r"[A-Za-z0-9_]+")


class QuoteError(ValueError):
    """A word's quotes are unbalanced (the caller names the file and line)."""


def word_spans(text: str, escape: str) -> list[tuple[int, int]]:
    """Spans of blank-separated words, quotes and escapes kept (Docker's ``parseWords``)."""
    spans: list[tuple[int, int]] = []
    index, size = 0, len(text)
    while index < size:
        while index < size and text[index].isspace():
            index += 1
        if index >= size:
            break
        start, quote = index, ""
        while index < size:
            char = text[index]
            if quote:
                if char == escape and quote != "'" and index + 1 < size:
                    index += 2
                    continue
                if char == quote:
                    quote = ""
            elif char.isspace():
                break
            elif char in "'\"":
                quote = char
            elif char == escape and index + 1 < size:
                index += 2
                continue
            index += 1
        spans.append((start, index))
    return spans


def raw_words(text: str, escape: str) -> list[str]:
    """The blank-separated words of ``text``, quotes and escapes kept."""
    return [text[start:end] for start, end in word_spans(text, escape)]


def expand_word(word: str, scope: Mapping[str, str], escape: str) -> str:
    """Remove quotes and escapes and expand variables, like BuildKit's ``ProcessWord``.

    Variables absent from ``scope`` are kept as written: they may come from the base image's
    environment, which the local builder does not know.

    Raises:
        QuoteError: a quote is not closed.
    """
    out: list[str] = []
    index, size = 0, len(word)
    while index < size:
        char = word[index]
        if char == escape:
            if index + 1 < size:
                out.append(word[index + 1])
            index += 2
        elif char == "'":
            close = word.find("'", index + 1)
            if close < 0:
                raise QuoteError("unmatched single quote")
            out.append(word[index + 1 : close])
            index = close + 1
        elif char == '"':
            index = _double_quoted(word, index + 1, scope, escape, out)
        elif char == "$":
            text, index = _variable(word, index, scope, escape)
            out.append(text)
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _double_quoted(word: str, index: int, scope: Mapping[str, str], escape: str, out: list[str]) -> int:
    size = len(word)
    while index < size:
        char = word[index]
        if char == '"':
            return index + 1
        if char == escape and index + 1 < size and word[index + 1] in ('"', "$", escape):
            out.append(word[index + 1])
            index += 2
        elif char == "$":
            text, index = _variable(word, index, scope, escape)
            out.append(text)
        else:
            out.append(char)
            index += 1
    raise QuoteError("unmatched double quote")


def _variable(word: str, index: int, scope: Mapping[str, str], escape: str) -> tuple[str, int]:
    """Expand the ``$NAME`` or ``${NAME...}`` at ``index``; return the text and the next index."""
    nxt = index + 1
    if nxt < len(word) and word[nxt] == "{":
        close, depth = nxt + 1, 1
        while close < len(word):
            if word[close] == "{":
                depth += 1
            elif word[close] == "}":
                depth -= 1
                if depth == 0:
                    break
            close += 1
        if close >= len(word):
            return word[index:], len(word)
        original = word[index : close + 1]
        inner = word[nxt + 1 : close]
        match = _NAME_CHARS.match(inner)
        if match is None:
            return original, close + 1
        name, modifier = match.group(0), inner[match.end() :]
        return _modified(name, modifier, original, scope, escape), close + 1
    if nxt < len(word) and _NAME_START.match(word[nxt]):
        match = _NAME_CHARS.match(word, nxt)
        assert match is not None
        name = match.group(0)
        return (scope[name] if name in scope else word[index : match.end()]), match.end()
    return "$", nxt


def _modified(name: str, modifier: str, original: str, scope: Mapping[str, str], escape: str) -> str:
    if name not in scope:
        return original
    value = scope[name]
    if modifier == "":
        return value
    for op in (":-", ":+", "-", "+"):
        if modifier.startswith(op):
            alternative = expand_word(modifier[len(op) :], scope, escape)
            if op == ":-":
                return value or alternative
            if op == ":+":
                return alternative if value else ""
            # Without the colon, a set-but-empty variable counts as set; every known name is set.
            return value if op == "-" else alternative
    return original
