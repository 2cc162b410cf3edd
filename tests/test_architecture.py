"""Layering: the engine runs without the UI libraries or any Azure SDK loaded."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import orbit_ops

ROOT = Path(__file__).parents[1]


def test_importing_the_engine_loads_no_ui_or_azure_module() -> None:
    modules = [info.name for info in pkgutil.walk_packages(orbit_ops.__path__, "orbit_ops.")]
    # Backends that wrap Azure may import its SDK lazily, inside functions; importing them must not.
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'textual', 'rich', 'azure', 'orbit_tui'})\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == ""
    assert len(modules) >= 10


def test_cli_startup_does_not_load_the_engine_heavyweights() -> None:
    script = (
        "import sys\nimport orbit_cli.main\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'git', 'yaml', 'semver', 'rich', 'textual', 'ruamel'})))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == ""


def test_import_contracts_hold() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" not in done.stdout.lower() or "0 broken" in done.stdout.lower()
