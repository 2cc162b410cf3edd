"""Every snapshot SVG belongs to a snapshot test: the check syrupy makes only when the suite runs in one process.

Under pytest-xdist (``make test``, decision 0054) syrupy cannot tell an unused snapshot from one whose test ran on
another worker, so it neither fails on nor deletes obsolete SVGs. A renamed or removed snapshot test would leave its
old SVG behind unnoticed; this test notices it.
"""

from __future__ import annotations

import ast
from pathlib import Path

HERE = Path(__file__).parent


def test_every_snapshot_svg_is_named_by_a_test_of_its_module() -> None:
    folders = [folder for folder in (HERE / "__snapshots__").iterdir() if folder.is_dir()]
    assert folders, "no snapshot folder found"
    for folder in folders:
        module = HERE / f"{folder.name}.py"
        assert module.exists(), f"{folder} holds snapshots of {module.name}, which does not exist"
        tests = {node.name for node in ast.walk(ast.parse(module.read_text()))
                 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")}
        orphans = sorted(svg.name for svg in folder.glob("*.svg") if svg.stem.split("[", 1)[0] not in tests)
        assert orphans == [], f"snapshots without a test in {module.name} (delete them): {orphans}"
