"""``JsonList`` prints exactly what ``print_json`` prints of the same items, piped (items encoded one by one as
they are made, then joined) and on a terminal (the list indented whole)."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest

from orbit_cli.output import JsonList, print_json

ITEMS: list[Any] = [{"id": "a", "sync": "synced", "labels": {"ring": "canary"}, "apps": {}, "resources": []},
                    {"id": "b\x7f\u202e", "reason": "ünïcode", "diff": ["x", None, 1.5]}, [], None]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [False, True])
def test_a_json_list_prints_what_print_json_prints(monkeypatch: pytest.MonkeyPatch, terminal: bool) -> None:
    printed = []
    for way in ("whole", "listed"):
        out = Terminal() if terminal else io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        if way == "whole":
            print_json(ITEMS)
        else:
            listing = JsonList()
            listing.print([listing.item(item) for item in ITEMS])
        printed.append(out.getvalue())
    assert printed[0] == printed[1]
    assert ("\n  " in printed[0]) is terminal and "\x7f" not in printed[0] and "\u202e" not in printed[0]
