"""The error tree drawn in ``orbit_ops/errors.py`` is the engine's real hierarchy: every public error, its parent."""

from __future__ import annotations

import importlib
import pkgutil
import re

import orbit_ops
from orbit_ops import errors
from orbit_ops.errors import InputError, MissingOnPlatformError, NotFoundError, OrbitError

_ENTRY = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w+Error)\b")


def _drawn_tree() -> dict[str, str | None]:
    """Each class named in the docstring's tree, mapped to the class drawn above it (None for the root)."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        match = _ENTRY.match(line.strip("\n")[4:] if line.startswith("    ") else line)
        if not match:
            continue
        depth = len(match.group("indent"))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match.group("name")] = stack[-1][1] if stack else None
        stack.append((depth, match.group("name")))
    return parents


def _engine_errors() -> dict[str, type[OrbitError]]:
    for info in pkgutil.walk_packages(orbit_ops.__path__, "orbit_ops."):
        importlib.import_module(info.name)
    found: dict[str, type[OrbitError]] = {}
    pending: list[type[OrbitError]] = [OrbitError]
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("orbit_ops") and not cls.__name__.startswith("_"):
            found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def test_the_drawn_tree_names_every_public_error_under_its_real_parent() -> None:
    drawn = _drawn_tree()
    real = _engine_errors()
    assert set(drawn) == set(real), f"drawn but absent: {set(drawn) - set(real)}; absent from the drawing: " \
                                    f"{set(real) - set(drawn)}"
    for name, cls in real.items():
        parent = cls.__mro__[1].__name__ if cls is not OrbitError else None
        assert drawn[name] == parent, f"{name} is drawn under {drawn[name]}, but its parent is {parent}"


def test_an_unknown_name_is_the_operators_error_and_a_lost_resource_the_platforms() -> None:
    assert issubclass(NotFoundError, InputError) and NotFoundError("x").exit_code == 2
    assert not issubclass(MissingOnPlatformError, InputError) and MissingOnPlatformError("x").exit_code == 1
