"""Editing the image pins of a solution file in place, keeping every byte the operator wrote.

Solution files are hand-edited, so a roll (SPEC §3.4) must change the pins and nothing else. Dumping a
ruamel.yaml round-trip document again still rewrites what the operator wrote: it re-indents, moves
comment columns, folds long lines, respells ``True`` and drops the spaces after a colon. Instead,
ruamel.yaml's round-trip composer finds where the ``images`` entries are, and only those few characters
are replaced or inserted. Everything else (comments, key order, quoting, flow or block style,
indentation, blank lines, line endings) stays byte for byte as it was, with one exception: a block pin
that changes between ``latest`` and a version has its own end-of-line comment replaced, since a comment
there speaks of floating or of holding back and is false after the change (decision 0034). The edited
text is then read again and must hold exactly the old data with the new pins; if it does not, nothing is
returned, so nothing can be written.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orbit_ops.config.pin_splices import FILE_RULE, IMAGES_KEY, IMAGES_RULE, Splicer, apply_splices, compose
from orbit_ops.errors import ConfigError, InputError, RefusedError
from orbit_ops.fsutil import atomic_writer
from orbit_ops.names import APP_COMPONENTS
from orbit_ops.versions import LATEST, VERSION_RULE, is_version
from orbit_ops.yamlfile import MAX_YAML_BYTES, YamlDoc, load_yaml

IN_PLACE_RULE = "pins are edited in place without changing anything else"

_TEXT = Path("<text>")


@dataclass(frozen=True)
class PinFile:
    """A solution file as read for a pin edit: its text and the sha256 of its bytes on disk."""

    path: Path
    text: str
    sha256: str


@dataclass(frozen=True)
class PinEdit:
    """What :func:`write_pins` did; ``before`` holds the pins as written in the file (None when inherited)."""

    path: Path
    before: dict[str, str | None]
    after: dict[str, str]
    changed: bool
    sha256_before: str
    sha256_after: str


def read_pin_file(path: Path) -> PinFile:
    """Read ``path`` for a later :func:`write_pins`, hashing its bytes exactly as they are on disk.

    Raises:
        ConfigError: the file cannot be read, is too large, or is not UTF-8.
    """
    raw = _read_bytes(path)
    try:
        # Decoded without newline translation, so CRLF files keep their line endings.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not valid UTF-8 at byte {exc.start}", rule="files are UTF-8") from None
    return PinFile(path=path, text=text, sha256=_sha256(raw))


def edit_pins(text: str, changes: Mapping[str, str], *, path: Path | str = _TEXT) -> str:
    """The solution file ``text`` with ``images.<component>_tag`` set to each version in ``changes``.

    Pure. A pin that already has its version is left alone, so a no-op edit returns ``text`` unchanged.
    ``path`` only names the file in error messages.

    Raises:
        InputError: a component other than orbit, agent or mc, or a value that is neither a version nor 'latest'.
        ConfigError: ``text`` is not valid YAML, is not a mapping, its ``images`` is not a mapping, a pin to change
            is not a one-line scalar or is shared through an anchor, or the edit could not be made in place.
    """
    new_text, _ = _edit(text, changes, Path(path))
    return new_text


def write_pins(
    pin_file: PinFile, changes: Mapping[str, str], *, validate: Callable[[str], object] | None = None
) -> PinEdit:
    """Write the pins in ``changes`` into ``pin_file`` atomically, keeping its mode.

    ``validate`` receives the new text before anything is written and raises to stop the write. The file
    must still hold the bytes that were read into ``pin_file``; that is checked again after the new
    content is on disk in a temp file and just before it replaces the file, so a concurrent edit is
    never overwritten. Callers hold the solution's lock, which closes the remaining gap.

    Raises:
        RefusedError: the file changed (or disappeared) since it was read; nothing was written.
        InputError: an unknown component or a value that is neither a version nor 'latest'.
        ConfigError: the file cannot be edited in place (see :func:`edit_pins`), or could not be written.
        Exception: whatever ``validate`` raises; nothing was written.
    """
    _refuse_if_changed(pin_file)
    new_text, before = _edit(pin_file.text, changes, pin_file.path)
    after = _wanted(changes)
    if new_text == pin_file.text:
        return PinEdit(pin_file.path, before, after, False, pin_file.sha256, pin_file.sha256)
    if validate is not None:
        validate(new_text)
    data = new_text.encode("utf-8")
    # Through a symlink, replace the file it points to and keep the link.
    target = Path(os.path.realpath(pin_file.path))
    try:
        with atomic_writer(target, "wb") as handle:
            handle.write(data)
            _refuse_if_changed(pin_file)
    except OSError as exc:
        raise ConfigError(pin_file.path, f"cannot write file: {exc.strerror or exc}") from None
    return PinEdit(pin_file.path, before, after, True, pin_file.sha256, _sha256(data))


# --- the edit -----------------------------------------------------------------------------------


def _edit(text: str, changes: Mapping[str, str], path: Path) -> tuple[str, dict[str, str | None]]:
    wanted = _wanted(changes)
    doc = load_yaml(path, text=text)
    if not isinstance(doc.data, dict):
        raise doc.error("expected a mapping at the top of the file", rule=FILE_RULE)
    images = doc.data.get(IMAGES_KEY)
    if images is not None and not isinstance(images, dict):
        raise doc.error(f"'{IMAGES_KEY}' must be a mapping", IMAGES_KEY, rule=IMAGES_RULE)
    written = images or {}
    before = {component: _shown(written.get(f"{component}_tag")) for component in wanted}
    pending = {
        f"{component}_tag": version
        for component, version in wanted.items()
        if written.get(f"{component}_tag") != version
    }
    if not pending:
        return text, before
    root = compose(text, path)
    splices = Splicer(text, root, doc).splices(pending)
    new_text = apply_splices(text, splices)
    _check_result(doc, new_text, pending)
    return new_text, before


def _wanted(changes: Mapping[str, str]) -> dict[str, str]:
    """``changes`` checked, in the order orbit, agent, mc."""
    for component, version in changes.items():
        if component not in APP_COMPONENTS:
            raise InputError(f"'{component}' is not an app component; solutions pin {', '.join(APP_COMPONENTS)}")
        if not isinstance(version, str) or not (version == LATEST or is_version(version)):
            raise InputError(f"{component} pin {version!r} is neither a version nor '{LATEST}'; {VERSION_RULE}")
    return {component: changes[component] for component in APP_COMPONENTS if component in changes}


def _check_result(doc: YamlDoc, new_text: str, pins: dict[str, str]) -> None:
    """Refuse an edit whose text does not read back as the old data with the new pins."""
    expected = dict(doc.data)
    expected[IMAGES_KEY] = {**(expected.get(IMAGES_KEY) or {}), **pins}
    try:
        actual = load_yaml(doc.path, text=new_text).data
    except ConfigError:
        actual = None
    if not _same(actual, expected):
        raise ConfigError(
            doc.path,
            "the pins cannot be changed here without changing other data; edit them by hand",
            line=doc.line(IMAGES_KEY),
            rule=IN_PLACE_RULE,
        )


def _same(left: Any, right: Any) -> bool:
    """Deep equality that also requires equal types and treats NaN as equal to NaN.

    Iterative and visiting each pair of containers once, so deep nesting and alias bombs stay cheap.
    """
    stack = [(left, right)]
    seen: set[tuple[int, int]] = set()
    while stack:
        a, b = stack.pop()
        if type(a) is not type(b):
            return False
        if isinstance(a, dict):
            if (id(a), id(b)) in seen:
                continue
            seen.add((id(a), id(b)))
            if a.keys() != b.keys():
                return False
            stack.extend((a[key], b[key]) for key in a)
        elif isinstance(a, list):
            if (id(a), id(b)) in seen:
                continue
            seen.add((id(a), id(b)))
            if len(a) != len(b):
                return False
            stack.extend(zip(a, b, strict=True))
        elif isinstance(a, float) and math.isnan(a):
            if not math.isnan(b):
                return False
        elif a != b:
            return False
    return True


def _shown(value: Any) -> str | None:
    return None if value is None else str(value)


def _read_bytes(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(path, f"cannot read file: {exc.strerror or exc}") from None
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(path, f"file is over {MAX_YAML_BYTES} bytes", rule=f"at most {MAX_YAML_BYTES} bytes")
    return raw


def _refuse_if_changed(pin_file: PinFile) -> None:
    try:
        current = _sha256(pin_file.path.read_bytes())
    except FileNotFoundError:
        raise RefusedError(f"{pin_file.path} was removed since it was read; nothing written") from None
    except OSError as exc:
        raise ConfigError(pin_file.path, f"cannot read file: {exc.strerror or exc}") from None
    if current != pin_file.sha256:
        raise RefusedError(
            f"{pin_file.path} changed since it was read (edited concurrently?); nothing written — "
            "run the command again to use its new content"
        )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
