"""Layering: the engine runs without the UI libraries or any Azure SDK loaded."""

from __future__ import annotations

import json
import os
import pkgutil
import shutil
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


def loaded_after(imports: str, watched: set[str]) -> list[str]:
    """The modules of ``watched`` (names, or top-level packages) a fresh interpreter holds after ``imports``."""
    script = (f"import sys\nimport {imports}\n"
              f"print(','.join(sorted(m for m in sys.modules if m in {watched!r} or m.split('.')[0] in {watched!r})))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    return [name for name in done.stdout.strip().split(",") if name]


def test_cli_startup_does_not_load_the_engine_heavyweights() -> None:
    assert loaded_after("orbit_cli.main", {"git", "yaml", "semver", "rich", "textual", "ruamel"}) == []


def test_reading_the_fleet_does_not_load_the_build_packing() -> None:
    """``orbit status``, ``plan`` and the console's fleet read import the fleet and the backends, not what packs a
    build context (tarfile, gzip, the .dockerignore rules: about 50 ms of every such command's start)."""
    assert loaded_after("orbit_ops.fleet.status, orbit_ops.fleet.entries, orbit_ops.workspace",
                        {"tarfile", "gzip", "orbit_ops.build.context", "orbit_ops.build.dockerignore"}) == []


def test_import_contracts_hold() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" not in done.stdout.lower() or "0 broken" in done.stdout.lower()


def _console_cycles(root: Path) -> list[tuple[str, str]]:
    """Every direct import (importer, imported) inside orbit_tui whose imported module leads back to its importer.

    Type-only imports count. ``acyclic_siblings`` in pyproject.toml checks siblings (with their descendants
    squashed) at every level; a package's ``__init__`` and its own children are not siblings, so that case is
    covered here, module by module.
    """
    script = (
        "import grimp, json\n"
        "graph = grimp.build_graph('orbit_tui', 'orbit_ops', exclude_type_checking_imports=False)\n"
        "found = []\n"
        "for module in sorted(m for m in graph.modules if m.split('.')[0] == 'orbit_tui'):\n"
        "    for imported in sorted(graph.find_modules_directly_imported_by(module)):\n"
        "        if imported.split('.')[0] == 'orbit_tui' and imported != module\\\n"
        "                and graph.find_shortest_chain(importer=imported, imported=module):\n"
        "            found.append((module, imported))\n"
        "print(json.dumps(found))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)})
    return [tuple(pair) for pair in json.loads(done.stdout)]


def test_the_console_has_no_import_cycle_at_all() -> None:
    assert _console_cycles(ROOT) == []


def test_a_cycle_through_a_package_init_is_caught(tmp_path: Path) -> None:
    # The check above can fail: the one cycle acyclic_siblings cannot see, a package's __init__ and its child.
    shutil.copytree(ROOT / "orbit_tui", tmp_path / "orbit_tui")
    shutil.copytree(ROOT / "orbit_ops", tmp_path / "orbit_ops")
    with (tmp_path / "orbit_tui" / "__init__.py").open("a") as init:
        init.write("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from orbit_tui import render\n")
    with (tmp_path / "orbit_tui" / "render.py").open("a") as render:
        render.write("import orbit_tui\n")
    assert ("orbit_tui.render", "orbit_tui") in _console_cycles(tmp_path)
