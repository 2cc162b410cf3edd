"""The Solutions filter on plain data (decision 0075): the index selects what ``matches`` selects, and a filter
typed further, looked for only within the last one's rows, finds the same rows as over the whole fleet."""

from __future__ import annotations

import itertools
from pathlib import Path

from orbit_ops.workspace import Workspace
from orbit_tui.filters import FleetIndex, matches, narrows, parse_filter
from orbit_tui.render import SolutionView, pin_views

TERMS = ["a", "ac", "acme", "e", "co", "o", "1.", "1.2", "2.0.0", "latest", "h", "hooli", "x", "fresh:behind",
         "fresh:current,floating", "pin:orbit=1.*", "pin:agent=2.0.0", "sync:missing", "health:missing"]


def fleet(root: Path) -> FleetIndex:
    workspace = Workspace.open(root)
    releases = workspace.release_index()
    return FleetIndex([SolutionView(spec, pin_views(spec, releases)) for spec in workspace.solutions()])


TYPED = ["", "a", "c", "e", "o", ".", "1", " ", " a", "me", "e.", "o "]  # what a keystroke or two add at the end


def test_a_filter_typed_further_finds_what_the_whole_fleet_would(fixed_root: Path) -> None:
    index = fleet(fixed_root)
    narrowed = 0
    for before in itertools.chain(([term] for term in TERMS), itertools.combinations(TERMS, 2)):
        for typed in TYPED:
            old, new = parse_filter(" ".join(before)), parse_filter(" ".join(before) + typed)
            everything = index.select(new)
            assert everything == [position for position, view in enumerate(index.views) if matches(view, new)]
            if narrows(old, new):
                narrowed += 1
                assert index.select(new, within=index.select(old)) == everything, (before, typed)
    assert narrowed > 1000  # the case that matters was exercised


def test_what_narrows_and_what_does_not() -> None:
    assert narrows(parse_filter("ac"), parse_filter("acm"))
    assert narrows(parse_filter("ac"), parse_filter("ac glo"))
    assert narrows(parse_filter(""), parse_filter("fresh:behind")) is False  # a new term: the whole fleet again
    assert not narrows(parse_filter("acm"), parse_filter("ac"))  # wider
    assert not narrows(parse_filter("ac fresh:behind"), parse_filter("acm"))  # a term went
    assert narrows(parse_filter("ac fresh:behind"), parse_filter("acm fresh:behind"))
