"""Builds and the operation store: ``build``, ``ops``, ``logs`` and ``cancel``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from orbit_cli.options import (
    Settings,
    json_option,
    lock_timeout_option,
    pass_settings,
    refuse_read_only,
    report_ignored,
    resolve_lock_timeout,
)
from orbit_cli.output import echo, print_json, print_table, warn
from orbit_cli.running import exit_code_of, run_operation

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from orbit_ops.operations.events import Event, OperationFinished
    from orbit_ops.operations.shared import SharedOperations


@click.command()
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

    refuse_read_only(settings, "build")
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
    report_ignored(workspace)
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
        finished = run_operation(start_build(workspace, plan, lock_timeout=resolve_lock_timeout(lock_timeout)),
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
        sys.exit(exit_code_of(failed))


@click.command()
@click.option("--limit", "-n", type=click.IntRange(1), default=50, show_default=True, help="Newest N operations.")
@click.option("--kind", type=click.Choice(("build", "provision", "sweep", "roll")),
              help="Only operations of this kind.")
@json_option
@pass_settings
def ops(settings: Settings, limit: int, kind: str | None) -> None:
    """Operations, newest first (also those started by other processes; with a shared state store, the team's)."""
    import asyncio

    from orbit_ops.operations.kinds import OperationKind
    from orbit_ops.team import team_operations

    workspace = settings.open()
    rows, unreachable = asyncio.run(team_operations(workspace, limit=limit,
                                                    kind=OperationKind(kind) if kind else None))
    if unreachable is not None:
        warn(f"{unreachable}: showing this machine's operations only (its local cache)")
    if settings.json:
        print_json(rows)
        return
    print_table(
        ["id", "kind", "target", "state", "progress", "created", "finished", "user", "host"],
        [
            [
                r["id"],
                r["kind"],
                r["target"],
                r["state"],
                _progress(r["progress"]),
                r["created_at"][:19].replace("T", " "),
                (r["finished_at"] or "")[:19].replace("T", " "),
                r.get("user") or "",
                r.get("host") or "",
            ]
            for r in rows
        ],
    )


def _progress(progress: dict[str, int]) -> str:
    done, total = progress.get("done", 0), progress.get("total", 0)
    return f"{done}/{total}" if total else str(done or "")


@click.command()
@click.argument("op_id", metavar="ID")
@click.option("--follow", "-f", is_flag=True, help="Keep streaming until the operation ends.")
@json_option
@pass_settings
def logs(settings: Settings, op_id: str, follow: bool) -> None:
    """Replay the log of operation ID (a unique prefix will do), or follow it live."""

    from orbit_ops.errors import NotFoundError
    from orbit_ops.operations.events import LogLine
    from orbit_ops.operations.events import to_json as event_json
    from orbit_ops.operations.log import follow as follow_events

    workspace = settings.open()
    store = workspace.operations()
    try:
        record = store.get(op_id)
    except NotFoundError:
        shared = workspace.shared_operations()
        if shared is None:
            raise
        # Not run on this machine: the team's store may have it (a colleague's, or CI's).
        if not _shared_logs(settings, shared, op_id, follow):
            raise
        return
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

    _print_followed(settings, f"{record.kind} {record.target}", follow_events(store, record.id))


def _shared_logs(settings: Settings, shared: SharedOperations, op_id: str, follow: bool) -> bool:
    """``orbit logs`` of an operation found only in the shared store; False when it is not there either."""
    import asyncio

    from orbit_ops.operations.events import LogLine
    from orbit_ops.operations.events import to_json as event_json

    document = asyncio.run(shared.record(op_id))
    if document is None:
        return False
    label = f"{document['kind']} {document['target']}"
    by = f" (started by {document.get('user')} on {document.get('host')})"
    if not follow:
        events = asyncio.run(shared.read_events(document["id"]))
        if settings.json:
            print_json([event_json(event) for event in events])
            return True
        for event in events:
            if isinstance(event, LogLine):
                prefix = f"[{event.child}] " if event.child else ""
                echo(f"{event.at[11:19]} {prefix}{event.text}")
        document = asyncio.run(shared.record(document["id"])) or document
        if document["state"] in ("queued", "running"):
            echo(f"{label} is {document['state']}{by} (use --follow to stream it)")
        else:
            error = f": {document['error']}" if document.get("error") else ""
            echo(f"{label} {document['state']}{error}{by}")
        return True

    _print_followed(settings, label, shared.follow(document["id"]))
    return True


def _print_followed(settings: Settings, label: str, events: AsyncGenerator[Event, None]) -> None:
    """Print a followed operation's events as they come (``--json``: one event a line) until it ends; exit 1
    when it failed."""
    import asyncio
    import contextlib

    from orbit_cli.render import EventPrinter
    from orbit_ops.operations.events import to_json as event_json
    from orbit_ops.text import json_text

    async def stream() -> OperationFinished | None:
        with EventPrinter(quiet=settings.json) as printer:
            printer._label = label
            async with contextlib.aclosing(events) as followed:
                async for event in followed:
                    if settings.json:
                        echo(json_text(event_json(event)))
                    printer.handle(event)
            return printer.finished

    finished = asyncio.run(stream())
    if finished is not None and finished.state == "failed":
        sys.exit(1)


@click.command()
@click.argument("op_id", metavar="ID")
@click.option("--after-wave", is_flag=True,
              help="A roll in waves: let the current wave finish (with its soak), start no later one.")
@json_option
@pass_settings
def cancel(settings: Settings, op_id: str, after_wave: bool) -> None:
    """Ask a running operation (in any process) to stop; its cleanup still runs."""
    import asyncio

    from orbit_ops.errors import NotFoundError
    from orbit_ops.operations.liveness import HOST
    from orbit_ops.operations.lockstore import current_user

    refuse_read_only(settings, "cancel")
    workspace = settings.open()
    if after_wave:
        from orbit_ops.fleet.roll_layouts import request_stop

        record = request_stop(workspace, op_id)
    else:
        try:
            record = workspace.operations().request_cancel(op_id)
        except NotFoundError:
            shared = workspace.shared_operations()
            if shared is None:
                raise
            # Another machine's operation: ask it through the team's store.
            document = asyncio.run(shared.request_cancel(op_id, by=f"{current_user()} on {HOST}"))
            if settings.json:
                print_json(document | {"cancel_requested": True})
            else:
                echo(f"cancel requested for {document['id']} ({document['kind']} {document['target']}, "
                     f"{document['state']}, on {document.get('host')}); it stops within a few seconds")
            return
    if settings.json:
        print_json(record.to_json())
    elif after_wave:
        echo(f"stop requested for {record.id} ({record.kind} {record.target}): the current wave finishes, no later "
             f"wave starts; continue later with orbit roll --resume {record.id}")
    else:
        echo(f"cancel requested for {record.id} ({record.kind} {record.target}, {record.state})")
