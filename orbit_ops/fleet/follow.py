"""Provisioning waits for health (SPEC §3.6): a sweep member follows the revisions its app writes made.

After a member's writes, and outside its concurrency slot and its solution lock, the member hands its solution
to the sweep's one :class:`~orbit_ops.fleet.wait.HealthWatcher` and follows the apps it wrote until the worst
of them is healthy or degraded, or the health timeout passes; each app's transition is logged on the member's
child log as it is seen. A degraded app, or one not settled in time, fails the member with the reason. A member
that wrote no app is not waited for and never fails on health: it is judged by the next read, the one its
fellow members share, so its result carries its health too. ``--health-timeout 0`` follows nothing: one read,
never a failure (decision 0048).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from orbit_ops.errors import InputError
from orbit_ops.fleet.health import HEALTH_ORDER, AppHealth, Health
from orbit_ops.fleet.wait import DEFAULT_WAIT_TIMEOUT, HealthWatcher, SolutionHealth
from orbit_ops.names import azure_names

DEFAULT_HEALTH_TIMEOUT = DEFAULT_WAIT_TIMEOUT  # seconds a member follows its new revisions (`orbit wait`'s 300)


def check_health_timeout(seconds: float) -> float:
    """``seconds`` as given, unless it is not a finite number of seconds, 0 or more.

    Raises:
        InputError: negative, NaN or infinite.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise InputError(f"--health-timeout must be a number of seconds, 0 or more (got {seconds:g})")
    return seconds


@dataclass(frozen=True)
class Followed:
    """What following a member's health found: the solution's health (worst of its apps, as ``orbit status``
    says it) and, when the member fails on it, why."""

    health: Health
    health_reason: str | None
    failure: str | None = None


async def follow_health(watcher: HealthWatcher, solution_id: str, components: Sequence[str], timeout: float,
                        log: Callable[[str], None]) -> Followed:
    """Follow the apps ``components`` of ``solution_id`` (those the member wrote) until they settle, or for
    ``timeout`` seconds; with no components, or ``timeout`` 0, take one read and never fail."""
    if not components:
        watched = await watcher.follow(solution_id, None)
        return Followed(watched.solution.health, watched.solution.health_reason)
    names = azure_names(solution_id).apps
    seen: dict[str, tuple[str | None, Health]] = {}

    def transitions(solution: SolutionHealth) -> None:
        for component in components:
            app = solution.apps[component]
            if seen.get(component) != (app.revision, app.health):
                seen[component] = (app.revision, app.health)
                log(transition_line(names[component], app))

    if timeout == 0:
        watched = await watcher.follow(solution_id, None, on_read=transitions)
        log("not waiting for health (--health-timeout 0)")
        return Followed(watched.solution.health, watched.solution.health_reason)
    log(f"following the new revision{'s' if len(components) > 1 else ''} of "
        f"{', '.join(names[c] for c in components)} (up to {timeout:g} s)")
    watched = await watcher.follow(solution_id, timeout, components=components, on_read=transitions)
    health, reason = watched.solution.of(components)
    failure = None
    if not watched.settled:
        failure = f"still {health} after {timeout:g} s" + (f": {reason}" if reason else "")
    elif health is Health.DEGRADED:
        failure = reason or "degraded"
    return Followed(watched.solution.health, watched.solution.health_reason, failure)


def transition_line(app_name: str, app: AppHealth) -> str:
    """``revision orbit-…-agent--xyz: progressing (activating for 10 s)``, ``…: healthy``, ``…: degraded: <why>``."""
    subject = f"revision {app.revision}" if app.revision else f"app {app_name}"
    if app.health_reason is None:
        return f"{subject}: {app.health}"
    if app.health is Health.PROGRESSING:
        return f"{subject}: {app.health} ({app.health_reason})"
    return f"{subject}: {app.health}: {app.health_reason}"


def health_counts(healths: Iterable[str | None]) -> dict[str, int]:
    """How many of ``healths`` are each health, worst first (``{"degraded": 2, "healthy": 38}``); None not counted."""
    counts = Counter(healths)
    return {str(health): counts[health] for health in HEALTH_ORDER if counts[health]}
