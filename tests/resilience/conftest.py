"""Fixtures of the resilience tests: the Azure emulator fixtures, shared with ``tests/azure``.

``tests/azure/conftest.py`` cannot be imported by name (``tests/conftest.py`` is also ``conftest``):
load it once under another name and re-export its fixtures here. ``tests/azure/acr_fixtures.py`` (the
ACR emulator over Azurite) is loaded under its own name, so ``import acr_fixtures`` works here too.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if "acr_fixtures" not in sys.modules:
    _acr_spec = importlib.util.spec_from_file_location("acr_fixtures",
                                                       Path(__file__).parents[1] / "azure" / "acr_fixtures.py")
    assert _acr_spec is not None and _acr_spec.loader is not None
    sys.modules["acr_fixtures"] = importlib.util.module_from_spec(_acr_spec)
    _acr_spec.loader.exec_module(sys.modules["acr_fixtures"])

_spec = importlib.util.spec_from_file_location("orbit_azure_fixtures",
                                               Path(__file__).parents[1] / "azure" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_azure = sys.modules.get(_spec.name) or importlib.util.module_from_spec(_spec)
if _spec.name not in sys.modules:
    sys.modules[_spec.name] = _azure
    _spec.loader.exec_module(_azure)
emulator_certificate = _azure.emulator_certificate
azure_emulators_session = _azure.azure_emulators_session
emulators = _azure.emulators
make_azure_workspace = _azure.make_azure_workspace
