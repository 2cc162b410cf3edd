"""The Solutions filter: free words plus ``sync:VALUE`` and ``fresh:VALUE`` terms, parsed and matched purely."""

from __future__ import annotations

from dataclasses import dataclass

from orbit_ops.drift import FRESHNESS_ORDER, SYNC_ORDER
from orbit_tui.render import SolutionView

KEYS = {"sync": "sync", "fresh": "fresh", "freshness": "fresh"}
VALUES = {"sync": frozenset(SYNC_ORDER), "fresh": frozenset(FRESHNESS_ORDER)}


@dataclass(frozen=True)
class SolutionFilter:
    """What ``/`` asked for: every word must appear; each keyed term must match one of its values."""

    words: tuple[str, ...] = ()
    sync: frozenset[str] = frozenset()
    fresh: frozenset[str] = frozenset()
    problems: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.words or self.sync or self.fresh)


def parse_filter(text: str) -> SolutionFilter:
    """Parse ``acme fresh:behind sync:drifted,missing``; unknown keys or values are reported, not guessed."""
    words: list[str] = []
    wanted: dict[str, set[str]] = {"sync": set(), "fresh": set()}
    problems: list[str] = []
    for term in text.lower().split():
        key, sep, value = term.partition(":")
        if not sep or key not in KEYS:
            words.append(term)
            continue
        field = KEYS[key]
        for item in filter(None, value.split(",")):
            if item in VALUES[field]:
                wanted[field].add(item)
            else:
                problems.append(f"{key}:{item} is not one of {', '.join(sorted(VALUES[field]))}")
    return SolutionFilter(tuple(words), frozenset(wanted["sync"]), frozenset(wanted["fresh"]), tuple(problems))


def matches(view: SolutionView, wanted: SolutionFilter) -> bool:
    """Whether ``view`` is shown under ``wanted`` (a solution whose sync is not known never matches ``sync:``)."""
    if wanted.fresh and view.freshness not in wanted.fresh:
        return False
    if wanted.sync and view.sync not in wanted.sync:
        return False
    haystack = view.search_text()
    return all(word in haystack for word in wanted.words)
