"""The wave layout of a roll (SPEC §3.7): which selected solutions go in which wave, decided before anything is written.

``--waves`` is comma-separated steps over the selection, taken in order, each from the solutions no earlier wave
took: a count (``1``), a share of the whole selection (``10%``, rounded up, at least one), the rest (``*`` or
``100%``), or a label requirement (``ring=canary``: every remaining solution that has it). The selection is in one
deterministic order, by labels and then id, and each wave keeps that order, so the same files and the same
``--waves`` always give the same layout: the one the operator confirmed (decision 0057).

Pure: no I/O. A layout that would surprise is refused, never guessed at: a label step that selects nothing (a typo
would otherwise hand its solutions to ``*``), steps after ``*``, and steps that leave solutions in no wave.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from orbit_ops.config.labels import Requirement, parse_requirement
from orbit_ops.config.model import SolutionSpec
from orbit_ops.errors import InputError

WAVES_RULE = ("--waves is comma-separated steps: a count (1), a share of the selection (10%), the rest (* or 100%) "
              "or a label requirement (ring=canary), e.g. 1,25%,* or ring=canary,ring=early,*")
_COUNT = re.compile(r"[0-9]+")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(s|m|min|h)?")
_UNITS = {None: 1, "s": 1, "m": 60, "min": 60, "h": 3600}
_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")
OnFailure = Literal["halt", "rollback"]
ON_FAILURE: tuple[OnFailure, ...] = ("halt", "rollback")
WAVE_CHILD = "wave "  # a wave's member id in a roll's operation: "wave 2" (never a solution id: those hold no space)


@dataclass(frozen=True)
class WaveStep:
    """One step of ``--waves`` as written."""

    text: str
    count: int | None = None
    percent: float | None = None
    requirement: Requirement | None = None

    @property
    def rest(self) -> bool:
        return self.count is None and self.percent is None and self.requirement is None

    def size(self, total: int) -> int | None:
        """How many solutions the step takes of a selection of ``total``, None when it is not a size."""
        if self.count is not None:
            return self.count
        if self.percent is not None:
            return total if self.percent >= 100 else max(1, math.ceil(total * self.percent / 100))
        return None


def parse_waves(text: str) -> tuple[WaveStep, ...]:
    """The steps of a ``--waves`` value.

    Raises:
        InputError: a step is not one (the message names it and the rule), or steps follow ``*``.
    """
    parts = [part.strip() for part in text.split(",")]
    steps: list[WaveStep] = []
    for position, part in enumerate(parts, 1):
        if steps and steps[-1].rest:
            raise InputError(f"--waves {text}: step {position} ({part or 'empty'}) follows '{steps[-1].text}', "
                             f"which already takes the rest ({WAVES_RULE})")
        steps.append(_step(text, position, part))
    return tuple(steps)


def _step(text: str, position: int, part: str) -> WaveStep:
    where = f"--waves {text}: step {position}"
    if part == "*":
        return WaveStep(part)
    if _COUNT.fullmatch(part):
        if int(part) < 1:
            raise InputError(f"{where} ({part}) takes no solution ({WAVES_RULE})")
        return WaveStep(part, count=int(part))
    if found := _PERCENT.fullmatch(part):
        share = float(found[1])
        if not 0 < share <= 100:
            raise InputError(f"{where} ({part}) is not a share between 0 and 100% ({WAVES_RULE})")
        return WaveStep(part, percent=share) if share < 100 else WaveStep(part)
    if "=" in part:
        try:
            return WaveStep(part, requirement=parse_requirement(part))
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    raise InputError(f"{where} ({part or 'empty'}) is not a wave step ({WAVES_RULE})")


@dataclass(frozen=True)
class Wave:
    """One wave: its number (1 first), the step that made it, and its solutions in roll order."""

    index: int
    selector: str
    solutions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "selector": self.selector, "solutions": list(self.solutions)}


def roll_order(specs: Sequence[SolutionSpec]) -> list[SolutionSpec]:
    """The selection in its deterministic order: by labels (as sorted ``key=value`` pairs), then by id."""
    return sorted(specs, key=lambda spec: (sorted(spec.labels.items()), spec.id))


def lay_out(specs: Sequence[SolutionSpec], steps: Sequence[WaveStep]) -> tuple[Wave, ...]:
    """Every selected solution in exactly one wave.

    A size step that finds nothing left makes an empty wave (``1,1,*`` over two solutions), shown as such.

    Raises:
        InputError: a label step selects no solution left, or solutions are left in no wave.
    """
    remaining = roll_order(specs)
    total = len(remaining)
    waves: list[Wave] = []
    for index, step in enumerate(steps, 1):
        if step.requirement is not None:
            taken = [spec for spec in remaining if step.requirement.matches(spec.labels)]
            if not taken:
                raise InputError(f"--waves: wave {index} ({step.text}) selects no solution: none left has "
                                 f"{step.requirement}{_seen(specs, step.requirement.key)}")
        else:
            size = step.size(total)
            taken = remaining if size is None else remaining[:size]
        chosen = {spec.id for spec in taken}
        remaining = [spec for spec in remaining if spec.id not in chosen]
        waves.append(Wave(index, step.text, tuple(spec.id for spec in taken)))
    if remaining:
        named = ", ".join(spec.id for spec in remaining[:5]) + (", …" if len(remaining) > 5 else "")
        raise InputError(f"--waves {','.join(step.text for step in steps)} leaves {len(remaining)} of {total} "
                         f"selected solution(s) in no wave ({named}); end it with * to roll the rest, or narrow "
                         "the selection with --only/--exclude")
    return tuple(waves)


def _seen(specs: Sequence[SolutionSpec], key: str) -> str:
    values = sorted({spec.labels[key] for spec in specs if key in spec.labels})
    if not values:
        return f" (no selected solution has {key})"
    return f" (the selection's values of {key}: {', '.join(values)})"



def parse_duration(text: str, option: str = "--soak") -> float:
    """``90``, ``90s``, ``5m``, ``1.5h`` as seconds.

    Raises:
        InputError: not a duration.
    """
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise InputError(f"{option} {text!r} is not a duration: seconds (90 or 90s), minutes (5m) or hours (1h)")
    return float(found[1]) * _UNITS[found[2]]


# -- a waved roll's settings and members ---------------------------------------------------------------------


def wave_child(index: int) -> str:
    return f"{WAVE_CHILD}{index}"


def is_wave_child(name: str) -> bool:
    return name.startswith(WAVE_CHILD)


@dataclass(frozen=True)
class WaveSettings:
    """How a waved roll goes: its layout and what ends a wave."""

    waves: tuple[Wave, ...]
    soak: float = 0.0  # seconds each wave is watched after its provisioning
    on_failure: OnFailure = "halt"
    max_unhealthy: int = 0  # unhealthy solutions a wave may have and still pass

    def to_json(self) -> dict[str, Any]:
        return {"waves": [wave.to_json() for wave in self.waves], "soak": self.soak, "on_failure": self.on_failure,
                "max_unhealthy": self.max_unhealthy}


def check_settings(soak: float, on_failure: str, max_unhealthy: int) -> OnFailure:
    """``on_failure`` as the roll takes it; raises InputError for a negative soak or allowance, or an unknown
    ``on_failure``."""
    if soak < 0:
        raise InputError(f"--soak must not be negative (got {soak:g} s)")
    if max_unhealthy < 0:
        raise InputError(f"--max-unhealthy must be 0 or more (got {max_unhealthy})")
    for known in ON_FAILURE:
        if on_failure == known:
            return known
    raise InputError(f"--on-failure is halt or rollback (got {on_failure!r})")
