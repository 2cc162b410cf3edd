"""What every ``orbit`` command shares: the global settings, the shared options and the solution selection.

Nothing here imports the engine at module level (``orbit --help`` stays as fast as click): engine modules are
imported inside the functions, and named in annotations only under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from orbit_cli.output import warn

if TYPE_CHECKING:
    from orbit_ops.config.model import InvalidSolution, SolutionSpec
    from orbit_ops.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    """The global options (``--workspace``, ``--json``, ``--read-only``), handed to every command by click."""

    workspace: str | None
    json: bool
    read_only: bool
    writing: str | None = None  # the mutating command running, set by refuse_read_only

    def open(self) -> Workspace:
        """The workspace; one warning if ``.orbit/`` can only be read, and a refusal if this command writes.

        Raises:
            StateUnwritableError: a mutating command on a ``.orbit/`` that cannot be written.
            StateStoreUnreachableError: a mutating command while the shared state store is out of reach.
        """
        from orbit_ops.workspace import Workspace

        workspace = Workspace.open(self.workspace)
        workspace.on_read_only_state = lambda reason: warn(
            f"{reason}: showing what it holds; nothing can be recorded")
        if self.writing is not None:
            workspace.on_read_only_state = None  # the refusal below says it
            workspace.require_writable_state(self.writing)
            workspace.require_reachable_state(self.writing)
        return workspace


def json_option(func: F) -> F:
    """``--json`` on the command itself, equivalent to the global ``orbit --json``."""

    @click.option("--json", "as_json", is_flag=True, help="Print JSON (stable keys) instead of a table.")
    @functools.wraps(func)
    def wrapper(*args: Any, as_json: bool, **kwargs: Any) -> Any:
        settings = click.get_current_context().find_object(Settings)
        if as_json and settings is not None:
            settings.json = True
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


pass_settings = click.make_pass_decorator(Settings)


LOCK_TIMEOUT_HELP = ("Give up (exit 1) when another operation holds a lock for longer than this (default 600; "
                     "0: do not wait).")


def selection_options(func: F) -> F:
    """``--only``/``--exclude PATTERN`` (repeatable): an id glob or a label selector (``orbit_ops.config.labels``)."""
    func = click.option("--exclude", multiple=True, metavar="PATTERN",
                        help="Leave out ids matching this glob or label selector (repeatable).")(func)
    return click.option("--only", multiple=True, metavar="PATTERN",
                        help="Only ids matching this glob, or labels matching this selector (ring=canary); "
                             "repeatable.")(func)


def lock_timeout_option(func: F) -> F:
    """``--lock-timeout SECONDS`` (see ``orbit_ops.operations.locks.DEFAULT_LOCK_TIMEOUT``)."""
    return click.option("--lock-timeout", type=click.FloatRange(min=0), metavar="SECONDS",
                        help=LOCK_TIMEOUT_HELP)(func)


def resolve_lock_timeout(value: float | None) -> float:
    """The ``--lock-timeout`` given, or the default wait."""
    from orbit_ops.operations.locks import DEFAULT_LOCK_TIMEOUT

    return DEFAULT_LOCK_TIMEOUT if value is None else value


HEALTH_TIMEOUT_HELP = ("Follow each new revision this long for it to be healthy or degraded; a solution not settled "
                       "by then fails (default 300; 0: do not wait, report what one read says).")


def health_timeout_option(func: F) -> F:
    """``--health-timeout SECONDS`` (see ``orbit_ops.fleet.follow.DEFAULT_HEALTH_TIMEOUT``)."""
    return click.option("--health-timeout", type=click.FloatRange(min=0), metavar="SECONDS",
                        callback=_finite_seconds, help=HEALTH_TIMEOUT_HELP)(func)


def _finite_seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds", ctx, param)
    return value


def resolve_health_timeout(value: float | None) -> float:
    """The ``--health-timeout`` given, or the default."""
    from orbit_ops.fleet.follow import DEFAULT_HEALTH_TIMEOUT

    return DEFAULT_HEALTH_TIMEOUT if value is None else value


def refuse_read_only(settings: Settings, what: str) -> None:
    """Refuse the mutating command ``what`` under ``--read-only``; otherwise mark the settings as writing.

    Raises:
        RefusedError: ``--read-only`` was given.
    """
    from orbit_ops.errors import RefusedError

    if settings.read_only:
        raise RefusedError(f"--read-only: '{what}' changes things and is refused")
    settings.writing = what


def select_solutions(settings: Settings, ids: tuple[str, ...], all_: bool, only: tuple[str, ...] = (),
                     exclude: tuple[str, ...] = ()) -> tuple[Workspace, list[SolutionSpec], list[InvalidSolution]]:
    """The workspace, the solutions named by IDS or --all (filtered by --only/--exclude patterns: id globs or label
    selectors, ``orbit_ops.config.labels``), and the invalid solution files among them.

    With --all an invalid file is one more entry, reported and left untouched; naming an invalid solution
    explicitly raises its ConfigError (exit 2, nothing written).
    """
    from orbit_ops.config.labels import Selection
    from orbit_ops.config.load import find_solution
    from orbit_ops.errors import InputError

    if bool(ids) == all_:
        raise InputError("name solution IDS or --all (and not both)")
    selection = Selection(only, exclude)  # a bad label selector is refused before anything is read
    workspace = settings.open()
    specs = workspace.solutions() if all_ else [find_solution(workspace.config, i) for i in dict.fromkeys(ids)]
    invalid = workspace.invalid_solutions() if all_ else []
    if selection:
        specs = [spec for spec in specs if selection.matches(spec.id, spec.labels)]
        invalid = [entry for entry in invalid if selection.matches(entry.id, None)]
    if not specs and not invalid:
        where = workspace.config.solutions_dir
        raise InputError(f"no solutions selected (in {where})" + (" after --only/--exclude" if only or exclude else ""))
    return workspace, specs, invalid


def confirm(settings: Settings, yes: bool, question: str) -> None:
    """Ask ``question`` on the terminal unless ``yes``; a no aborts the command (exit 130).

    Raises:
        InputError: no terminal to ask on, and no ``--yes``.
    """
    from orbit_ops.errors import InputError

    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError(f"{question} needs confirmation; pass --yes when running without a terminal")
    if not click.confirm(question, default=False):
        raise click.exceptions.Abort()


def report_invalid(invalid: Sequence[InvalidSolution]) -> None:
    """One warning line per invalid solution file: what listings say on a terminal, beside the valid rows."""
    for entry in invalid:
        warn(f"{entry.error}; left out")


def report_ignored(workspace: Workspace) -> None:
    """One warning when the tag scan ignored tags that do not follow the release tag rule."""
    message = workspace.tags().ignored_message()
    if message:
        warn(message)
