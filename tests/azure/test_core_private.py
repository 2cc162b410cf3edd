"""The private part of azure-core Orbit's transport builds on: used in one module only, present in the installed
azure-core, and, where it is missing, a stop with a message naming it and the range pyproject.toml pins."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.core.rest import HttpRequest, HttpResponse

from orbit_ops.backends.azure.core_private import (
    AZURE_CORE_PIN,
    PRIVATE_MODULE,
    PRIVATE_NAME,
    block_size,
    response_class,
)
from orbit_ops.backends.azure.storage_private import PRIVATE_STORAGE_MODULE
from orbit_ops.errors import BackendError

ROOT = Path(__file__).parents[2]
HOME = ROOT / "orbit_ops" / "backends" / "azure" / "core_private.py"
STORAGE_HOME = ROOT / "orbit_ops" / "backends" / "azure" / "storage_private.py"
# The private class, and its private attributes Orbit reads or sets, as code would name them.
PRIVATE_USE = re.compile(rf"\b{PRIVATE_NAME}\b|\._block_size\b|\._content\b")


def _private_azure_imports(path: Path) -> list[str]:
    """The modules under ``azure`` with a private part (``_name``) that ``path`` imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        found += [name for name in names
                  if name.split(".")[0] == "azure" and any(part.startswith("_") for part in name.split("."))]
    return found


def test_only_core_private_imports_or_touches_a_private_part_of_azure_core() -> None:
    sources = [path for package in ("orbit_ops", "orbit_cli", "orbit_tui") for path in (ROOT / package).rglob("*.py")]
    importers = {path.relative_to(ROOT).as_posix(): names
                 for path in sources if (names := _private_azure_imports(path))}
    # and the storage SDK's, in its own one module (the share listing as bytes, decision 0080)
    assert importers == {HOME.relative_to(ROOT).as_posix(): [PRIVATE_MODULE],
                         STORAGE_HOME.relative_to(ROOT).as_posix(): [PRIVATE_STORAGE_MODULE]}
    touching = sorted(path.relative_to(ROOT).as_posix() for path in sources
                      if path != HOME and PRIVATE_USE.search(path.read_text(encoding="utf-8")))
    assert touching == []


def test_the_installed_azure_core_still_has_the_private_response_type() -> None:
    try:
        response_type = response_class()
    except BackendError as exc:  # the message names the module, the version found and the range to install
        pytest.fail(str(exc))
    assert issubclass(response_type, HttpResponse)
    request = HttpRequest("GET", "https://orbit.invalid/")
    response = response_type(request=request, internal_response=None, status_code=200, headers={}, reason="OK",
                             content_type="application/json", block_size=1234, stream_download_generator=None,
                             content=b'{"read": "ahead"}')
    # What Orbit sets and reads behind the class's back still means what it did.
    assert response.json() == {"read": "ahead"}
    assert response.content == b'{"read": "ahead"}'
    assert block_size(response) == 1234


def test_the_pin_in_the_message_is_the_pin_in_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert AZURE_CORE_PIN in project["dependencies"]


# The real CLI, with the private module made unimportable first (as on an azure-core that lacks it).
WITHOUT_PRIVATE_MODULE = (
    "import sys\n"
    f"sys.modules[{PRIVATE_MODULE!r}] = None\n"
    "from orbit_cli.main import main\n"
    "main(sys.argv[1:])\n"
)


def test_an_azure_core_without_the_private_module_stops_orbit_with_the_module_and_the_pin(
        make_azure_workspace: Callable[..., Path]) -> None:
    root = make_azure_workspace(count=1)
    done = subprocess.run([sys.executable, "-c", WITHOUT_PRIVATE_MODULE, "-w", str(root), "status"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    error = done.stderr.strip()
    assert error.startswith("error: azure-core "), error
    assert f"has no {PRIVATE_MODULE}.{PRIVATE_NAME}" in error
    assert f"install a release of {AZURE_CORE_PIN}" in error
    assert "Traceback" not in done.stderr
