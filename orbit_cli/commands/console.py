"""The console and its demo: ``demo`` and ``tui``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orbit_cli.options import Settings, pass_settings
from orbit_cli.output import echo


@click.command()
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

    tests = Path(__file__).resolve().parents[2] / "tests"
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


@click.command()
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
