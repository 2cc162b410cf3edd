"""``orbit``: every command of SPEC §6.1, each a thin call into ``orbit_ops``.

Engine modules are imported inside the commands, so ``orbit --help`` and ``orbit names`` start as fast
as click itself. Every ``OrbitError`` becomes one ``error:`` line and its exit code (2 for bad input,
1 for a failed operation); nothing prints a traceback at an operator.
"""

from __future__ import annotations

import functools
import io
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from orbit_cli.output import echo, print_json, print_table, warn

if TYPE_CHECKING:
    from orbit_ops.config.load import InvalidSolution
    from orbit_ops.fleet.planned import PlannedSolution
    from orbit_ops.fleet.roll import RollPlan
    from orbit_ops.operations.events import OperationFinished
    from orbit_ops.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    workspace: str | None
    json: bool
    read_only: bool
    writing: str | None = None  # the mutating command running, set by _refuse_read_only

    def open(self) -> Workspace:
        """The workspace; one warning if ``.orbit/`` can only be read, and a refusal if this command writes.

        Raises:
            StateUnwritableError: a mutating command on a ``.orbit/`` that cannot be written.
        """
        from orbit_ops.workspace import Workspace

        workspace = Workspace.open(self.workspace)
        workspace.on_read_only_state = lambda reason: warn(
            f"{reason}: showing what it holds; nothing can be recorded")
        if self.writing is not None:
            workspace.on_read_only_state = None  # the refusal below says it
            workspace.require_writable_state(self.writing)
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


def lock_timeout_option(func: F) -> F:
    """``--lock-timeout SECONDS`` (see ``orbit_ops.operations.locks.DEFAULT_LOCK_TIMEOUT``)."""
    return click.option("--lock-timeout", type=click.FloatRange(min=0), metavar="SECONDS",
                        help=LOCK_TIMEOUT_HELP)(func)


def _lock_timeout(value: float | None) -> float:
    from orbit_ops.operations.locks import DEFAULT_LOCK_TIMEOUT

    return DEFAULT_LOCK_TIMEOUT if value is None else value


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--workspace", "-w", metavar="DIR", help="Workspace folder (default: $ORBIT_WORKSPACE or upward).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON with stable keys (listings and results).")
@click.option("--read-only", is_flag=True, help="Refuse every mutating command; the console hides them.")
@click.version_option(package_name="orbit-ops", prog_name="orbit")
@click.pass_context
def cli(ctx: click.Context, workspace: str | None, as_json: bool, read_only: bool) -> None:
    """Orbit: operate per-customer solutions on Azure Container Apps.

    Browse components, release tags and solution pins; build releases from immutable git tags;
    roll versions to solutions through an idempotent re-provisioner; watch every operation live.
    """
    ctx.obj = Settings(workspace=workspace, json=as_json, read_only=read_only)


# --- listings -----------------------------------------------------------------------------------

@cli.command()
@json_option
@pass_settings
def components(settings: Settings) -> None:
    """Components with their newest tag and release, unreleased tags and adoption."""
    from orbit_ops.workspace import summarize_components

    workspace = settings.open()
    rows = summarize_components(workspace)
    _report_ignored(workspace)
    _report_invalid(workspace.invalid_solutions())
    if settings.json:
        print_json([row.to_json() for row in rows])
        return
    print_table(
        ["component", "latest tag", "latest release", "unreleased", "on latest"],
        [
            [
                row.name,
                row.latest_tag or "-",
                row.latest_release or "-",
                ", ".join(row.unreleased) or "-",
                f"{row.solutions_on_latest}/{row.solutions}",
            ]
            for row in rows
        ],
    )


@cli.command()
@click.argument("component")
@json_option
@pass_settings
def tags(settings: Settings, component: str) -> None:
    """Release tags of COMPONENT, newest first (SemVer order)."""
    from orbit_ops.workspace import pin_counts

    workspace = settings.open()
    workspace.config.component(component)
    scan = workspace.tags()
    _report_ignored(workspace)
    counts = pin_counts(workspace, component)
    _report_invalid(workspace.invalid_solutions())
    rows = []
    for tag in scan.of(component):
        record = workspace.release_of(component, tag.version)
        rows.append(
            {
                "version": tag.version,
                "tag": tag.tag,
                "commit": tag.commit,
                "annotated": tag.annotated,
                "prerelease": tag.prerelease,
                "released": record is not None,
                "date": tag.date,
                "digest": record.digest if record else None,
                "built_at": record.built_at if record else None,
                "solutions": counts.get(tag.version, 0),
            }
        )
    if settings.json:
        print_json(rows)
        return
    print_table(
        ["version", "commit", "date", "kind", "released", "solutions"],
        [
            [
                row["version"],
                str(row["commit"])[:12],
                str(row["date"])[:10],
                "annotated" if row["annotated"] else "lightweight",
                str(row["built_at"] or "no")[:16].replace("T", " "),
                row["solutions"] or "",
            ]
            for row in rows
        ],
        title=f"{component}: {len(rows)} tags",
    )


@cli.command()
@click.argument("component", required=False)
@click.option("--verify", is_flag=True, help="Also check every record against its tag (moved tags are reported).")
@json_option
@pass_settings
def releases(settings: Settings, component: str | None, verify: bool) -> None:
    """Release records of COMPONENT (or of every component), oldest first."""
    from orbit_ops.fleet.integrity import verify_records

    workspace = settings.open()
    names = [workspace.config.component(component).name] if component else sorted(workspace.config.components)
    records = [record for name in names for record in workspace.records().get(name, [])]
    problems = verify_records(workspace, names) if verify else []
    if settings.json:
        print_json([record.to_json() for record in records])
    else:
        print_table(
            ["component", "version", "commit", "digest", "built at", "builder"],
            [
                [r.component, r.version, r.commit[:12], r.digest.removeprefix("sha256:")[:12], r.built_at, r.builder]
                for r in records
            ],
        )
    for problem in problems:
        warn(f"{problem.record.tag}: {problem.problem}")
    if problems:
        sys.exit(1)


@cli.command()
@json_option
@pass_settings
def solutions(settings: Settings) -> None:
    """Solutions with their pinned image tags (``latest`` shown as floating)."""
    workspace = settings.open()
    specs = workspace.solutions()
    invalid = workspace.invalid_solutions()
    entries: list[tuple[str, dict[str, Any], list[str]]] = [
        (
            spec.id,
            {"id": spec.id, "display_name": spec.display_name, "images": dict(spec.images), "file": str(spec.path)},
            [spec.id, spec.display_name, spec.images["orbit_tag"], spec.images["agent_tag"], spec.images["mc_tag"]],
        )
        for spec in specs
    ]
    # The keys of a valid entry are there too (empty), so a script reading them meets no missing key.
    entries += [(entry.id, {**entry.to_json(), "display_name": None, "images": {}},
                 [entry.id, "(invalid: see the warning)", "", "", ""]) for entry in invalid]
    entries.sort(key=lambda entry: entry[0])
    if settings.json:
        print_json([body for _, body, _ in entries])
        return
    _report_invalid(invalid)
    print_table(
        ["id", "name", "orbit", "agent", "mc"],
        [row for _, _, row in entries],
        title=f"{len(specs)} solutions" + (f" and {len(invalid)} invalid file(s)" if invalid else ""),
    )


@cli.command()
@click.argument("solution_id")
@json_option
@pass_settings
def names(settings: Settings, solution_id: str) -> None:
    """Azure names of SOLUTION_ID (apps, shares, environment storages)."""
    from orbit_ops.errors import InputError
    from orbit_ops.names import SOLUTION_ID_RULE, azure_names, is_valid_solution_id

    if not is_valid_solution_id(solution_id):
        raise InputError(f"invalid solution id '{solution_id}' ({SOLUTION_ID_RULE})")
    result = azure_names(solution_id)
    if settings.json:
        print_json(result.to_json())
        return
    echo(f"id        {result.id}")
    echo(f"h         {result.h}")
    for component, name in result.apps.items():
        echo(f"app       {name}  ({component})")
    for role, name in result.shares.items():
        echo(f"share     {name}  ({role})")
    for link, name in result.storages.items():
        echo(f"storage   {name}  ({link.replace('_', ' ')})")


# --- builds and operations ----------------------------------------------------------------------

@cli.command()
@click.argument("target", required=False, metavar="COMPONENT[@VERSION]")
@click.option("--platform", "platform_version", metavar="X", help="Build every version in releases/platform/vX.yaml "
              "that has no release record yet.")
@click.option("--force", is_flag=True, help="Rebuild even if a release record for this commit exists.")
@lock_timeout_option
@json_option
@pass_settings
def build(settings: Settings, target: str | None, platform_version: str | None, force: bool,
          lock_timeout: float | None) -> None:
    """Build a release from its immutable git tag <component>/v<version> and record it.

    Without a version, the highest stable tag is built; pre-releases only when named.
    """
    from orbit_ops.build.pipeline import parse_target, plan_build, plan_platform
    from orbit_ops.errors import InputError

    _refuse_read_only(settings, "build")
    if (target is None) == (platform_version is None):
        raise InputError("name one COMPONENT[@VERSION] or --platform X (and not both)")
    if target is not None:
        component, version = parse_target(target)
        workspace = settings.open()
        plans = [plan_build(workspace, component, version, force=force)]
    else:
        assert platform_version is not None
        workspace = settings.open()
        plans = plan_platform(workspace, platform_version)
    _report_ignored(workspace)
    results = []
    failed = ""  # the state of the build that did not succeed
    for plan in plans:
        from orbit_ops.build.pipeline import result_json, start_build

        if plan.action == "already-released":
            # Nothing to build is not an operation: say so, and return the record that exists.
            results.append(result_json(plan, None))
            if not settings.json and plan.existing is not None:
                echo(f"{plan.tag.tag} is already released from commit {plan.tag.commit[:12]} "
                           f"({plan.existing.digest}, built {plan.existing.built_at}); nothing to do "
                           "(--force rebuilds)")
            continue
        finished = _run_operation(start_build(workspace, plan, lock_timeout=_lock_timeout(lock_timeout)),
                                  quiet=settings.json)
        if finished.state != "succeeded" or finished.result is None:
            failed = finished.state
            results.append({"component": plan.component.name, "version": plan.tag.version, "tag": plan.tag.tag,
                            "status": finished.state, "error": finished.error, "operation": finished.op_id})
            break
        results.append(finished.result)
    if settings.json:
        print_json(results[0] if target is not None else results)
    if failed:
        sys.exit(_exit_code(failed))


def _run_operation(runner: Any, *, quiet: bool) -> Any:
    """Run an operation's event stream to its end, printing it; returns the OperationFinished event.

    Ctrl-C cancels the operation: its cleanup runs, it is recorded ``cancelled`` (error ``interrupted
    (Ctrl-C)``) and the stream ends with that line; a second Ctrl-C stops without waiting for the cleanup.
    """
    import asyncio
    import contextlib
    import signal

    from orbit_cli.render import EventPrinter

    async def consume() -> Any:
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            loop.remove_signal_handler(signal.SIGINT)  # the next Ctrl-C is Python's KeyboardInterrupt again
            runner.cancel("interrupted (Ctrl-C)")

        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # no signals off the main thread
            loop.add_signal_handler(signal.SIGINT, interrupt)
        try:
            with EventPrinter(quiet=quiet) as printer:
                async with contextlib.aclosing(runner.events()) as events:
                    async for event in events:
                        printer.handle(event)
                return printer.finished
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGINT)

    return asyncio.run(consume())


def _exit_code(state: str) -> int:
    """The exit code of a command whose operation ended in ``state`` (see docs/reliability.md, Outcomes)."""
    return {"succeeded": 0, "cancelled": 130}.get(state, 1)


@cli.command()
@click.option("--limit", "-n", type=click.IntRange(1), default=50, show_default=True, help="Newest N operations.")
@click.option("--kind", type=click.Choice(("build", "provision", "sweep", "roll")),
              help="Only operations of this kind.")
@json_option
@pass_settings
def ops(settings: Settings, limit: int, kind: str | None) -> None:
    """Operations, newest first (also those started by other processes)."""
    workspace = settings.open()
    records = workspace.operations().list(limit=limit, kind=kind)
    if settings.json:
        print_json([record.to_json() for record in records])
        return
    print_table(
        ["id", "kind", "target", "state", "progress", "created", "finished"],
        [
            [
                r.id,
                r.kind,
                r.target,
                r.state,
                f"{r.done}/{r.total}" if r.total else str(r.done or ""),
                r.created_at[:19].replace("T", " "),
                (r.finished_at or "")[:19].replace("T", " "),
            ]
            for r in records
        ],
    )


@cli.command()
@click.argument("op_id", metavar="ID")
@click.option("--follow", "-f", is_flag=True, help="Keep streaming until the operation ends.")
@json_option
@pass_settings
def logs(settings: Settings, op_id: str, follow: bool) -> None:
    """Replay the log of operation ID (a unique prefix will do), or follow it live."""
    import asyncio
    import contextlib

    from orbit_ops.operations.events import LogLine
    from orbit_ops.operations.events import to_json as event_json
    from orbit_ops.operations.store import follow as follow_events
    from orbit_ops.text import json_text

    workspace = settings.open()
    store = workspace.operations()
    record = store.get(op_id)
    if not follow:
        events = store.read_events(record.id)
        if settings.json:
            print_json([event_json(event) for event in events])
            return
        for event in events:
            if isinstance(event, LogLine):
                prefix = f"[{event.child}] " if event.child else ""
                echo(f"{event.at[11:19]} {prefix}{event.text}")
        record = store.get(record.id)
        if record.finished:
            error = f": {record.error}" if record.error else ""
            echo(f"{record.kind} {record.target} {record.state}{error}")
        else:
            echo(f"{record.kind} {record.target} is {record.state} (use --follow to stream it)")
        return

    async def stream() -> OperationFinished | None:
        from orbit_cli.render import EventPrinter

        with EventPrinter(quiet=settings.json) as printer:
            printer._label = f"{record.kind} {record.target}"
            async with contextlib.aclosing(follow_events(store, record.id)) as events:
                async for event in events:
                    if settings.json:
                        echo(json_text(event_json(event)))
                    printer.handle(event)
            return printer.finished

    finished = asyncio.run(stream())
    if finished is not None and finished.state == "failed":
        sys.exit(1)


@cli.command()
@click.argument("op_id", metavar="ID")
@json_option
@pass_settings
def cancel(settings: Settings, op_id: str) -> None:
    """Ask a running operation (in any process) to stop; its cleanup still runs."""
    _refuse_read_only(settings, "cancel")
    workspace = settings.open()
    record = workspace.operations().request_cancel(op_id)
    if settings.json:
        print_json(record.to_json())
    else:
        echo(f"cancel requested for {record.id} ({record.kind} {record.target}, {record.state})")


def _refuse_read_only(settings: Settings, what: str) -> None:
    from orbit_ops.errors import RefusedError

    if settings.read_only:
        raise RefusedError(f"--read-only: '{what}' changes things and is refused")
    settings.writing = what


# --- status, provisioning, rolls ----------------------------------------------------------------

def _select(settings: Settings, ids: tuple[str, ...], all_: bool, only: tuple[str, ...] = (),
            exclude: tuple[str, ...] = ()) -> tuple[Any, list[Any], list[Any]]:
    """The workspace, the solutions named by IDS or --all (filtered by --only/--exclude patterns), and the invalid
    solution files among them.

    With --all an invalid file is one more entry, reported and left untouched; naming an invalid solution
    explicitly raises its ConfigError (exit 2, nothing written).
    """
    import fnmatch

    from orbit_ops.config.load import find_solution
    from orbit_ops.errors import InputError

    if bool(ids) == all_:
        raise InputError("name solution IDS or --all (and not both)")
    workspace = settings.open()
    specs = workspace.solutions() if all_ else [find_solution(workspace.config, i) for i in dict.fromkeys(ids)]
    invalid = workspace.invalid_solutions() if all_ else []
    if only:
        specs = [s for s in specs if any(fnmatch.fnmatchcase(s.id, p) for p in only)]
        invalid = [s for s in invalid if any(fnmatch.fnmatchcase(s.id, p) for p in only)]
    if exclude:
        specs = [s for s in specs if not any(fnmatch.fnmatchcase(s.id, p) for p in exclude)]
        invalid = [s for s in invalid if not any(fnmatch.fnmatchcase(s.id, p) for p in exclude)]
    if not specs and not invalid:
        where = workspace.config.solutions_dir
        raise InputError(f"no solutions selected (in {where})" + (" after --only/--exclude" if only or exclude else ""))
    return workspace, specs, invalid


@cli.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--exit-code", is_flag=True, help="Exit 3 when anything is drifted or missing (like terraform "
              "plan -detailed-exitcode).")
@json_option
@pass_settings
def status(settings: Settings, ids: tuple[str, ...], exit_code: bool) -> None:
    """Sync and freshness of every solution (or of IDS), per app and per resource."""
    import asyncio

    from orbit_ops.fleet.provision import read_live
    from orbit_ops.fleet.sweeps import statuses

    workspace, specs, invalid = _select(settings, ids, not ids)
    platform = workspace.platform()
    snapshot = asyncio.run(read_live(platform, platform))
    rows = statuses(workspace, specs, snapshot)
    entries: list[tuple[str, dict[str, Any], list[str]]] = [
        (
            row.id,
            row.to_json(),
            [
                row.id,
                row.sync,
                row.freshness,
                *(_pin_cell(row.apps[c]) for c in ("orbit", "agent", "mc")),
                "; ".join(f"{r.name}: {', '.join(r.diff)}" for r in row.resources if r.sync == "drifted")[:80]
                or (row.reason or ""),
            ],
        )
        for row in rows
    ]
    entries += [(entry.id, {**entry.to_json(), "freshness": None, "apps": {}, "resources": []},
                 [entry.id, "invalid", "", "", "", "", f"{entry.path.name}: see the warning"]) for entry in invalid]
    entries.sort(key=lambda entry: entry[0])
    if settings.json:
        print_json([body for _, body, _ in entries])
    else:
        _report_invalid(invalid)
        print_table(["id", "sync", "freshness", "orbit", "agent", "mc", "drift"], [row for _, _, row in entries])
    if exit_code and (invalid or any(row.sync in ("drifted", "missing") for row in rows)):
        sys.exit(3)


def _pin_cell(app: Any) -> str:
    shown = app.pinned if app.pinned == app.resolved else f"{app.pinned}={app.resolved}"
    if app.live and app.live != app.resolved:
        shown += f" (live {app.live})"
    elif app.live is None:
        shown += " (absent)"
    return str(shown)


@cli.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "all_", is_flag=True, help="Every solution.")
@json_option
@pass_settings
def plan(settings: Settings, ids: tuple[str, ...], all_: bool) -> None:
    """What provisioning IDS (or --all) would create and update; writes nothing."""
    import asyncio

    from orbit_ops.fleet.sweeps import plan_many

    workspace, specs, invalid = _select(settings, ids, all_)
    planned = asyncio.run(plan_many(workspace, specs)) if specs else []
    if settings.json:
        print_json(_plan_json(planned, invalid))
    else:
        _print_plan(planned, invalid)
    if invalid:
        sys.exit(1)  # not everything would converge: the invalid files are left as they are


def _plan_json(planned: Sequence[PlannedSolution], invalid: Sequence[InvalidSolution] = ()) -> dict[str, Any]:
    from orbit_ops.fleet.sweeps import invalid_outcomes

    solutions: list[dict[str, Any]] = []
    for planned_solution in planned:
        spec, solution_plan = planned_solution.spec, planned_solution.plan
        if solution_plan is None:
            solutions.append({"id": spec.id, "state": "skipped", "actions": [],
                              "error": f"refused: {planned_solution.refused}"})
        else:
            body = {"id": spec.id, "state": "planned", "actions": [a.to_json() for a in solution_plan.actions]}
            if solution_plan.notes:
                body["notes"] = list(solution_plan.notes)
            solutions.append(body)
    solutions += [outcome.to_json() for outcome in invalid_outcomes(invalid)]
    solutions.sort(key=lambda body: str(body["id"]))
    return {"solutions": solutions, "writes": 0}


def _print_plan(planned: Sequence[PlannedSolution], invalid: Sequence[InvalidSolution] = ()) -> None:
    for entry in invalid:
        echo(f"{entry.id}: invalid, left untouched: {entry.error}")
    for planned_solution in planned:
        spec, solution_plan = planned_solution.spec, planned_solution.plan
        if solution_plan is None:
            echo(f"{spec.id}: refused: {planned_solution.refused}")
            continue
        echo(f"{spec.id}: {solution_plan.summary()}")
        for note in solution_plan.notes:
            echo(f"    note: {note}")
        for action in solution_plan.actions:
            if action.action != "none":
                echo(f"    {action.action} {action.kind} {action.name}: {'; '.join(action.changes)}")
    creates = sum(p.plan.creates for p in planned if p.plan)
    updates = sum(p.plan.updates for p in planned if p.plan)
    refused = sum(1 for p in planned if p.plan is None)
    echo(f"plan: {len(planned)} solution(s), {creates} to create, {updates} to update"
               + (f", {refused} refused" if refused else "") + (f", {len(invalid)} invalid" if invalid else ""))


def _confirm(settings: Settings, yes: bool, question: str) -> None:
    from orbit_ops.errors import InputError

    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError(f"{question} needs confirmation; pass --yes when running without a terminal")
    if not click.confirm(question, default=False):
        raise click.exceptions.Abort()


@cli.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "all_", is_flag=True, help="Every solution (a sweep).")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Solutions converged at once.")
@click.option("--only", multiple=True, metavar="PATTERN", help="Only ids matching this glob (repeatable).")
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Leave out ids matching this glob (repeatable).")
@click.option("--failed-from", metavar="OP_ID", help="Retry only the solutions that failed in sweep OP_ID.")
@click.option("--no-wait", is_flag=True, help="Fail a solution at once if another operation holds it.")
@lock_timeout_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_settings
def provision(settings: Settings, ids: tuple[str, ...], all_: bool, concurrency: int, only: tuple[str, ...],
              exclude: tuple[str, ...], failed_from: str | None, no_wait: bool, lock_timeout: float | None,
              yes: bool) -> None:
    """Converge IDS (or --all) to their config: create what is missing, update what drifted."""
    import asyncio

    from orbit_ops.fleet.entries import plan_sweep, retry_selection, start_sweep
    from orbit_ops.fleet.sweeps import check_concurrency

    _refuse_read_only(settings, "provision")
    check_concurrency(concurrency)
    if failed_from:
        retry = retry_selection(settings.open(), failed_from)
        if not retry.ids:
            echo(f"operation {retry.record.id} has no failed solutions; nothing to retry", err=True)
            return
        ids, all_ = retry.ids, False
    workspace, specs, invalid = _select(settings, ids, all_, only, exclude)
    confirmed = asyncio.run(plan_sweep(workspace, specs, invalid, everything=all_))
    if not settings.json:
        _print_plan(confirmed.solutions, invalid)
    writes = confirmed.writes
    if writes and not (ids and len(specs) == 1 and yes):
        _confirm(settings, yes, f"provision {len(specs)} solution(s) ({writes} change(s))?")
    runner = start_sweep(workspace, confirmed, concurrency=concurrency, wait=not no_wait,
                         lock_timeout=_lock_timeout(lock_timeout))
    _finish_sweep(settings, _run_operation(runner, quiet=settings.json))


def _finish_sweep(settings: Settings, finished: OperationFinished, *, pins_only: bool = False) -> None:
    """Print a sweep's (or roll's) result and exit with the code its operation's state calls for.

    The operation is ``succeeded`` only when every solution is (``orbit_ops.operations.store``), so the state
    alone decides: 0 succeeded, 130 cancelled, 1 otherwise. A roll whose refused pins make it exit 2
    never gets here (see ``_roll``).
    """
    from orbit_ops.fleet.entries import SweepOutcome

    outcome = SweepOutcome(finished)
    result, refused = outcome.result, outcome.refused
    if settings.json:
        print_json(result if result else {"solutions": [], "writes": 0, "error": finished.error})
    else:
        for solution in outcome.not_converged:
            echo(f"{solution['id']}: {solution['state']}: {solution.get('error', '')}", err=True)
        if result and pins_only:
            written, unchanged = len(result.get("pins", [])), len(result.get("unchanged", []))
            invalid = len(result.get("invalid", []))
            echo(f"{written} pin(s) written, {unchanged} already on {result.get('version')}, {len(refused)} refused"
                 + (f", {invalid} invalid" if invalid else "") + f"; not provisioned; operation {finished.op_id}")
        elif result:
            pins = f" ({len(refused)} pin(s) refused)" if refused else ""
            echo(f"{outcome.converged} converged, {len(outcome.not_converged) + len(refused)} not{pins}; "
                 f"{outcome.writes} write(s); operation {finished.op_id}")
    if finished.state != "succeeded":
        sys.exit(_exit_code(finished.state))


@cli.command()
@click.argument("component")
@click.argument("version")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "all_", is_flag=True, help="Every solution.")
@click.option("--no-provision", is_flag=True, help="Only edit the pins; do not provision.")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Solutions converged at once.")
@lock_timeout_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_settings
def roll(settings: Settings, component: str, version: str, ids: tuple[str, ...], all_: bool, no_provision: bool,
         concurrency: int, lock_timeout: float | None, yes: bool) -> None:
    """Pin COMPONENT to released VERSION in IDS (or --all), then provision them as one sweep."""
    from orbit_ops.fleet.roll import plan_roll
    from orbit_ops.fleet.sweeps import check_concurrency

    _refuse_read_only(settings, "roll")
    check_concurrency(concurrency)
    workspace, specs, invalid = _select(settings, ids, all_)
    _roll(settings, workspace, plan_roll(workspace, component, version, specs), no_provision, concurrency, yes,
          _lock_timeout(lock_timeout), invalid)


def _roll(settings: Settings, workspace: Workspace, roll_plan: RollPlan, no_provision: bool, concurrency: int,
          yes: bool, lock_timeout: float, invalid: Sequence[InvalidSolution] = ()) -> None:
    from orbit_ops.fleet.entries import SweepOutcome, start_roll

    if not settings.json:
        for change in roll_plan.changes:
            echo(f"{change.id}: {change.describe()}")
        if roll_plan.unchanged:
            echo(f"already on {roll_plan.version}: {', '.join(roll_plan.unchanged)}")
        for entry in invalid:
            echo(f"{entry.id}: invalid, left untouched: {entry.error}")
    if roll_plan.changes:
        _confirm(settings, yes, f"roll {roll_plan.component} {roll_plan.version} to {len(roll_plan.changes)} "
                                f"solution(s){'' if no_provision else ' and provision them'}?")

    runner = start_roll(workspace, roll_plan, provision=not no_provision, concurrency=concurrency,
                        lock_timeout=lock_timeout, invalid=invalid)
    finished = _run_operation(runner, quiet=settings.json)
    outcome = SweepOutcome(finished)
    for item in outcome.refused:
        echo(f"error: {item['id']}: pin not changed: {item['error']}", err=True)
    # Exit 2 (invalid input) only when the roll wrote nothing at all and only the input is to blame:
    # a roll that wrote a pin or provisioned anything exits 1 with the refused solutions named.
    if outcome.only_input_refused:
        if settings.json:
            print_json(outcome.result)
        sys.exit(2)
    _finish_sweep(settings, finished, pins_only=no_provision)


@cli.command()
@click.argument("solution_id", metavar="ID")
@click.argument("component")
@click.option("--no-provision", is_flag=True, help="Only edit the pin; do not provision.")
@lock_timeout_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_settings
def rollback(settings: Settings, solution_id: str, component: str, no_provision: bool, lock_timeout: float | None,
             yes: bool) -> None:
    """Re-pin COMPONENT of solution ID to the version it ran before its last roll."""
    from orbit_ops.fleet.roll import plan_roll, previous_pin

    _refuse_read_only(settings, "rollback")
    workspace, specs, _ = _select(settings, (solution_id,), False)
    before = previous_pin(workspace, solution_id, component, specs[0].pin(component))
    _roll(settings, workspace, plan_roll(workspace, component, before, specs, allow_latest=True), no_provision, 8,
          yes, _lock_timeout(lock_timeout))


# --- demo and console ---------------------------------------------------------------------------

@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--no-tui", is_flag=True, help="Create the workspace and stop (do not open the console).")
@click.option("--solutions", "solution_count", default=40, show_default=True, type=click.IntRange(1, 10_000),
              help="How many demo solutions to create.")
@click.option("--backend", type=click.Choice(["local", "azure-emulated"]), default="local", show_default=True,
              help="azure-emulated (from a source checkout): start the Azure emulators of the test suite on "
                   "127.0.0.1 and run the demo on the azure backend over them, for as long as the console is open.")
@pass_settings
def demo(settings: Settings, directory: Path | None, no_tui: bool, solution_count: int, backend: str) -> None:
    """Create a demo workspace in DIRECTORY (default ./orbit-demo, or ./orbit-azure-demo with --backend
    azure-emulated) and open the console on it."""
    from orbit_ops.demo import create_demo

    if backend == "azure-emulated":
        _azure_emulated_demo(settings, directory or Path("orbit-azure-demo"), no_tui, solution_count)
        return
    target = (directory or Path("orbit-demo")).resolve()
    if (target / "orbit.yaml").is_file():
        echo(f"{target} already holds a workspace; opening it as it is", err=True)
    else:
        for line in create_demo(target, solutions=solution_count):
            echo(line, err=True)
    if no_tui:
        echo(str(target))
        return
    settings.workspace = str(target)
    _run_tui(settings)


def _azure_emulated_demo(settings: Settings, directory: Path, no_tui: bool, solution_count: int) -> None:
    """The demo on the Azure emulators, which are test code: found in the checkout, never shipped (decision 0018)."""
    import importlib

    from orbit_ops.errors import InputError

    tests = Path(__file__).resolve().parents[1] / "tests"
    if not (tests / "emulators" / "demo.py").is_file():
        raise InputError("--backend azure-emulated needs a source checkout of Orbit (the emulators are test code in "
                         "tests/emulators/, not part of the installed package): run `make demo-azure` in a clone")
    sys.path.insert(0, str(tests))
    launcher = importlib.import_module("emulators.demo")
    with launcher.azure_emulated_demo(directory, solutions=solution_count,
                                      progress=lambda line: echo(line, err=True)) as running:
        if no_tui:  # a smoke run: the emulated cloud, and with it the workspace's endpoints, ends here
            echo(str(running.root))
            return
        settings.workspace = str(running.root)
        _run_tui(settings)


@cli.command()
@pass_settings
def tui(settings: Settings) -> None:
    """Open the console on the workspace."""
    _run_tui(settings)


def _run_tui(settings: Settings) -> None:
    from orbit_tui.app import run

    workspace = settings.open()
    # A .orbit/ that cannot be written makes the console read-only: it hides what it could not record.
    # Said once here, on stderr, before the screen is taken over (the stores open lazily after).
    unwritable = workspace.state_unwritable()
    workspace.on_read_only_state = None
    run(workspace, read_only=settings.read_only or unwritable is not None)


def _report_invalid(invalid: Sequence[Any]) -> None:
    """One warning line per invalid solution file: what listings say on a terminal, beside the valid rows."""
    for entry in invalid:
        warn(f"{entry.error}; left out")


def _report_ignored(workspace: Workspace) -> None:
    message = workspace.tags().ignored_message()
    if message:
        warn(message)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: map engine errors to one line and an exit code."""
    from orbit_ops.errors import OrbitError

    try:
        cli.main(args=argv, standalone_mode=False, prog_name="orbit")
    except click.exceptions.Abort:
        echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        # Click's usage errors quote what was typed (maybe pasted from a file): through echo, like every line.
        shown = io.StringIO()
        exc.show(file=shown)
        echo(shown.getvalue().rstrip("\n"), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except OrbitError as exc:
        echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except OSError as exc:
        # A file the engine did not expect to fail (the engine maps those it expects to OrbitError).
        echo(f"error: {_os_error_text(exc)}", err=True)
        sys.exit(1)
    except Exception as exc:  # the last resort: an operator never sees a traceback
        if os.environ.get("ORBIT_TRACEBACK"):
            raise
        from orbit_ops.redact import redact

        detail = redact(" ".join(str(exc).split()))[:300]
        echo(f"error: internal error ({type(exc).__name__}{': ' + detail if detail else ''}); this is a bug "
                   "in Orbit: please report it with the command that caused it (ORBIT_TRACEBACK=1 shows where)",
                   err=True)
        sys.exit(1)


def _os_error_text(exc: OSError) -> str:
    """``<path>: <reason>`` for a file error, naming both paths of a rename or a link."""
    from orbit_ops.redact import redact

    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(name) for name in (exc.filename, exc.filename2) if name is not None]
    return redact(f"{' → '.join(paths)}: {reason}" if paths else reason)


if __name__ == "__main__":
    main()
