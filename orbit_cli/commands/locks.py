"""``orbit locks``: who holds which lock (this machine's flocks, or the team's leases), and breaking one."""

from __future__ import annotations

import asyncio
import re

import click

from orbit_cli.options import Settings, confirm, json_option, pass_settings, refuse_read_only
from orbit_cli.output import echo, print_json, print_table

_SCOPE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,200}$")


@click.group(invoke_without_command=True)
@json_option
@pass_settings
@click.pass_context
def locks(ctx: click.Context, settings: Settings) -> None:
    """Locks and their holders: scope, operation, user, host, since, expires.

    With state: store: azure-blob these are the whole team's leases; locally, the flocks of this machine.
    """
    if ctx.invoked_subcommand is not None:
        return
    workspace = settings.open()
    found = asyncio.run(workspace.locks().list_locks())
    if settings.json:
        print_json([info.to_json() for info in found])
        return
    rows = []
    for info in found:
        holder = info.holder
        rows.append([
            info.scope,
            info.state if holder is None or info.state != "held" else (holder.op_id or f"pid {holder.pid}"),
            holder.kind if holder else "",
            holder.user if holder else "",
            f"{holder.host} pid {holder.pid}" if holder else "",
            _time(holder.since) if holder else "",
            _time(holder.expires) if holder and holder.expires else "",
            info.broken_by or "",
        ])
    print_table(["scope", "holder", "kind", "user", "host", "since", "expires", "broken by"], rows,
                title=f"locks in {workspace.config.state.describe()}")


@locks.command("break")
@click.argument("scope")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_settings
def break_lock(settings: Settings, scope: str, yes: bool) -> None:
    """Break the lock SCOPE (as ``orbit locks`` names it), recording who broke it.

    Its holder, if still running, stops before its next write. Only leases in a shared store can be broken.
    """
    from orbit_ops.errors import InputError
    from orbit_ops.operations.liveness import HOST
    from orbit_ops.operations.locks import utc_now
    from orbit_ops.operations.lockstore import current_user

    if not _SCOPE.match(scope):
        raise InputError(f"'{scope[:80]}' is not a lock scope (orbit locks lists them: solution-ID, build-COMPONENT)")
    refuse_read_only(settings, "locks break")
    workspace = settings.open()
    store = workspace.locks()
    if workspace.config.state.shared:
        current = {info.scope: info for info in asyncio.run(store.list_locks())}.get(scope)
        holder = current.holder if current else None
        confirm(settings, yes, f"break {scope}" + (f", held by {holder.describe()}" if holder else "") + "?")
    by = f"{current_user()} on {HOST} at {utc_now()}"
    before = asyncio.run(store.break_lock(scope, by=by))
    if settings.json:
        print_json(before.to_json() | {"state": "broken", "broken_by": by})
        return
    held_by = f" (it was held by {before.holder.describe()})" if before.holder else ""
    echo(f"broke {scope}{held_by}; recorded as broken by {by}")


def _time(value: str) -> str:
    return value[:19].replace("T", " ")
