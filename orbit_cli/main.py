"""``orbit``: every command of SPEC §6.1, each a thin call into ``orbit_ops``.

Engine modules are imported inside the commands, so ``orbit --help`` and ``orbit names`` start as fast
as click itself. Every ``OrbitError`` becomes one ``error:`` line and its exit code (2 for bad input,
1 for a failed operation); nothing prints a traceback at an operator. The commands live in
``orbit_cli/commands/`` by group; this module is the group, their registration and the entry point.
"""

from __future__ import annotations

import io
import os
import sys

import click

from orbit_cli.commands import console, fleet, listings, locks, operations, rolling, waiting
from orbit_cli.options import Settings
from orbit_cli.output import echo


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


for _command in (
    listings.components, listings.tags, listings.releases, listings.solutions, listings.names,
    operations.build, operations.ops, operations.logs, operations.cancel, locks.locks,
    fleet.status, fleet.plan, fleet.apply_plan, fleet.provision, rolling.roll, rolling.rollback, waiting.wait,
    console.demo, console.tui,
):
    cli.add_command(_command)


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
