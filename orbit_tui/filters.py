"""The Solutions filter: free words plus ``sync:VALUE``, ``fresh:VALUE``, ``health:VALUE``,
``pin:COMPONENT=VERSION`` and ``label:SELECTOR`` terms, parsed and matched purely.

``label:ring=canary`` takes a label selector as ``--only`` does (``orbit_ops.config.labels``: ``key=value`` or
``key!=value``, requirements joined by ``,`` must all hold, as with ``kubectl -l``); several ``label:`` terms must
all hold too. Label keys and values keep their case.

``pin:agent=1.2.0`` matches the version written in the solution file (``latest`` for a floating pin), so it
finds exactly the files a roll would rewrite; several values (``pin:agent=1.2.0,1.3.0``) and globs
(``pin:agent=1.*``) are allowed, and terms for different components must all match.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field

from orbit_ops.config.labels import LabelSelector, parse_selector
from orbit_ops.config.model import InvalidSolution, Listed
from orbit_ops.errors import InputError
from orbit_ops.fleet.drift import FRESHNESS_ORDER, SYNC_ORDER
from orbit_ops.fleet.health import HEALTH_ORDER
from orbit_ops.names import APP_COMPONENTS
from orbit_ops.text import did_you_mean
from orbit_tui.render import PinView, SolutionView

KEYS = {"sync": "sync", "fresh": "fresh", "freshness": "fresh", "health": "health", "pin": "pin", "label": "label"}
VALUES = {
    "sync": frozenset(SYNC_ORDER) | {"invalid"},
    "fresh": frozenset(FRESHNESS_ORDER),
    "health": frozenset(str(health) for health in HEALTH_ORDER),
}
PIN_FORM = "pin:COMPONENT=VERSION"


@dataclass(frozen=True)
class SolutionFilter:
    """What ``/`` asked for: every word must appear; each keyed term must match one of its values."""

    words: tuple[str, ...] = ()
    sync: frozenset[str] = frozenset()
    fresh: frozenset[str] = frozenset()
    problems: tuple[str, ...] = ()
    pins: tuple[tuple[str, frozenset[str]], ...] = field(default=())  # (component, accepted version patterns)
    health: frozenset[str] = frozenset()
    labels: tuple[LabelSelector, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.words or self.sync or self.fresh or self.pins or self.health or self.labels)


def _pin_term(value: str, problems: list[str]) -> tuple[str, set[str]] | None:
    component, sep, versions = value.partition("=")
    patterns = {item for item in versions.split(",") if item}
    if not sep or not component or not patterns:
        problems.append(f"pin:{value} is not {PIN_FORM} (e.g. pin:agent=1.2.0)")
        return None
    if component not in APP_COMPONENTS:
        problems.append(f"pin:{component} is not one of {', '.join(APP_COMPONENTS)}")
        return None
    return component, patterns


def parse_filter(text: str) -> SolutionFilter:
    """Parse ``acme fresh:behind sync:drifted,missing health:degraded pin:agent=1.2.0``; unknown keys or values are
    reported with the values allowed (and the closest one), not guessed."""
    words: list[str] = []
    wanted: dict[str, set[str]] = {"sync": set(), "fresh": set(), "health": set()}
    pins: dict[str, set[str]] = {}
    labels: list[LabelSelector] = []
    problems: list[str] = []
    for written in text.split():
        term = written.lower()
        key, sep, value = term.partition(":")
        if not sep or key not in KEYS:
            words.append(term)
            continue
        field_name = KEYS[key]
        if field_name == "label":
            try:
                labels.append(parse_selector(written.partition(":")[2]))
            except InputError as exc:
                problems.append(f"label:{exc!s}")
            continue
        if field_name == "pin":
            if (found := _pin_term(value, problems)) is not None:
                pins.setdefault(found[0], set()).update(found[1])
            continue
        for item in filter(None, value.split(",")):
            if item in VALUES[field_name]:
                wanted[field_name].add(item)
            else:
                allowed = VALUES[field_name]
                problems.append(f"{key}:{item} is not one of {', '.join(sorted(allowed))}{did_you_mean(item, allowed)}")
    return SolutionFilter(
        tuple(words),
        frozenset(wanted["sync"]),
        frozenset(wanted["fresh"]),
        tuple(problems),
        tuple((component, frozenset(patterns)) for component, patterns in sorted(pins.items())),
        frozenset(wanted["health"]),
        tuple(labels),
    )


def _pin_matches(view: SolutionView, component: str, patterns: frozenset[str]) -> bool:
    pinned = next((pin.pinned.lower() for pin in view.pins if pin.component == component), None)
    return pinned is not None and any(fnmatch.fnmatchcase(pinned, pattern) for pattern in patterns)


def matches(view: SolutionView, wanted: SolutionFilter) -> bool:
    """Whether ``view`` is shown under ``wanted`` (a solution whose sync or health has not been read yet never
    matches ``sync:`` or ``health:``; one read as ``unknown`` matches ``health:unknown``)."""
    if wanted.fresh and view.freshness not in wanted.fresh:
        return False
    if wanted.sync and view.sync not in wanted.sync:
        return False
    if wanted.health and view.health not in wanted.health:
        return False
    if not all(_pin_matches(view, component, patterns) for component, patterns in wanted.pins):
        return False
    if not all(selector.matches(view.spec.labels) for selector in wanted.labels):
        return False
    haystack = view.search_text
    return all(word in haystack for word in wanted.words)


def matches_invalid(entry: InvalidSolution, wanted: SolutionFilter) -> bool:
    """Whether an invalid solution file's row is shown: its id, file name and error are its words; it has no
    pins, no labels, no freshness and no health, and its sync is ``invalid``."""
    if wanted.fresh or wanted.pins or wanted.health or wanted.labels or (wanted.sync and "invalid" not in wanted.sync):
        return False
    text = f"{entry.id} {entry.path.name} {entry.error}".lower()
    return all(word in text for word in wanted.words)


def narrows(before: SolutionFilter, after: SolutionFilter) -> bool:
    """Whether every solution ``after`` shows is one ``before`` showed: the same keyed terms, and each word of
    ``before`` inside a word of ``after`` (a character typed at the end of the filter, the common case)."""
    same_terms = (before.sync, before.fresh, before.health, before.pins, before.labels) == (
        after.sync, after.fresh, after.health, after.pins, after.labels
    )
    return same_terms and all(any(word in longer for longer in after.words) for word in before.words)


class FleetIndex:
    """One publication of the fleet's views, with what filtering reads of each (its words) taken once, when a
    filter first needs them, so a keystroke of the filter is a pass over plain strings, or over the rows the last
    keystroke left (a publication no filter reads costs nothing here: decision 0088)."""

    def __init__(self, views: Sequence[SolutionView], previous: FleetIndex | None = None) -> None:
        """``previous``: the index of the publication before, whose words are reused where spec and pins are the
        same objects (a refresh changes sync, health and operations, not what the words are made of), if it made
        them (an index made none never holds on to the one before it)."""
        self.views = views
        self._previous = previous if previous is not None and previous._haystacks is not None else None
        self._haystacks: list[str] | None = None

    @property
    def haystacks(self) -> list[str]:
        """Each view's search words, in view order."""
        if self._haystacks is None:
            previous, self._previous = self._previous, None
            known: dict[str, tuple[Listed, tuple[PinView, ...], str]] = {} if previous is None else {
                view.spec.id: (view.spec, view.pins, words)
                for view, words in zip(previous.views, previous.haystacks, strict=True)
            }

            def words_of(view: SolutionView) -> str:
                found = known.get(view.spec.id)
                if found is not None and found[0] is view.spec and found[1] is view.pins:
                    return found[2]
                return view.search_text

            self._haystacks = [words_of(view) for view in self.views]
        return self._haystacks

    def select(self, wanted: SolutionFilter, within: Sequence[int] | None = None) -> list[int]:
        """The positions of the views ``wanted`` shows, in order; ``within``: only these can (see :func:`narrows`)."""
        candidates: Sequence[int] = range(len(self.views)) if within is None else within
        if wanted.empty:
            return list(candidates)
        words, haystacks = wanted.words, self.haystacks
        if not (wanted.sync or wanted.fresh or wanted.health or wanted.pins or wanted.labels):
            if len(words) == 1:
                word = words[0]
                return [index for index in candidates if word in haystacks[index]]
            return [index for index in candidates if all(word in haystacks[index] for word in words)]
        views = self.views
        return [index for index in candidates if matches(views[index], wanted)]
