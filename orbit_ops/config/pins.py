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
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orbit_ops.errors import ConfigError, InputError, RefusedError
from orbit_ops.fsutil import atomic_writer
from orbit_ops.names import APP_COMPONENTS
from orbit_ops.versions import LATEST, VERSION_RULE, is_version
from orbit_ops.yamlfile import MAX_YAML_BYTES, YamlDoc, load_yaml

IMAGES_KEY = "images"
FILE_RULE = "a solution file is a mapping with id, display_name, images, env"
IMAGES_RULE = "images maps orbit_tag/agent_tag/mc_tag to versions"
PIN_VALUE_RULE = 'a pin is written on one line, e.g. agent_tag: "2.1.0"'
ANCHOR_RULE = "pins and the images mapping are written out, not shared through YAML anchors and aliases"
IN_PLACE_RULE = "pins are edited in place without changing anything else"

_NULL_TAG = "tag:yaml.org,2002:null"
_STR_TAG = "tag:yaml.org,2002:str"
_BREAK = re.compile(r"\r\n|\r|\n")
_DEFAULT_STEP = 2
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


@dataclass(frozen=True)
class _Splice:
    start: int
    end: int
    text: str


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
    root = _compose(text, path)
    splices = _Splicer(text, root, doc).splices(pending)
    new_text = _apply(text, splices)
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


class _Splicer:
    """Decides the splices that set pins, reading positions off ruamel.yaml's round-trip node tree."""

    def __init__(self, text: str, root: MappingNode, doc: YamlDoc) -> None:
        self.text = text
        self.root = root
        self.doc = doc
        self.newline = _line_break(text)
        self.shared = _shared_nodes(root)

    def splices(self, pins: dict[str, str]) -> list[_Splice]:
        entry = _entry(self.root, IMAGES_KEY)
        if entry is None:
            return [self._add_images(pins)]
        key, images = entry
        self._refuse_shared(images, IMAGES_KEY)
        if isinstance(images, ScalarNode):  # images: (nothing), ~ or null
            return [self._fill_null_images(key, images, pins)]
        if not isinstance(images, MappingNode):  # load_yaml saw a mapping, so this is a YAML 1.1/1.2 difference
            raise self.doc.error(f"'{IMAGES_KEY}' must be a mapping", IMAGES_KEY, rule=IMAGES_RULE)
        splices: list[_Splice] = []
        missing: dict[str, str] = {}
        for name, version in pins.items():
            pin_entry = _entry(images, name)
            if pin_entry is None:
                missing[name] = version
            else:
                splices.append(self._replace_pin(*pin_entry, name, version))
                if not images.flow_style:  # a flow mapping's line comment speaks of the mapping, not one pin
                    splices += self._floating_comment(pin_entry[1], version)
        if missing:
            splices.append(self._append_pins(images, missing))
        return splices

    def _replace_pin(self, key: Node, value: Node, name: str, version: str) -> _Splice:
        at = (IMAGES_KEY, name)
        self._refuse_shared(value, *at)
        if not isinstance(value, ScalarNode) or value.style in ("|", ">"):
            raise self.doc.error(f"{name} is not a one-line value", *at, rule=PIN_VALUE_RULE)
        if _is_empty(value):
            return self._after_colon(key, f'"{version}"')
        start, end = value.start_mark.index, value.end_mark.index
        if value.tag == _NULL_TAG:  # an explicit ~ or null: a new pin
            return _Splice(start, end, f'"{version}"')
        # The property prefix (a tag like !!str, an anchor) stays; only the scalar itself is replaced.
        start = _scalar_start(self.text, start, end, value.style)
        if value.style in ('"', "'"):
            return _Splice(start, end, f"{value.style}{version}{value.style}")
        return _Splice(start, end, version if _plain_reads_back(version) else f'"{version}"')

    def _floating_comment(self, value: Node, version: str) -> list[_Splice]:
        """The pin's end-of-line comment replaced by a true one, when the pin starts or stops floating."""
        if not isinstance(value, ScalarNode) or value.tag == _NULL_TAG:
            return []
        if (value.value == LATEST) == (version == LATEST):
            return []
        end = int(value.end_mark.index)
        found = _BREAK.search(self.text, end)
        line_end = found.start() if found else len(self.text)
        rest = self.text[end:line_end]
        comment = rest.lstrip(" \t")
        if not comment.startswith("#"):
            return []
        note = (f"# floats on the newest release (was {value.value} until orbit set latest)" if version == LATEST
                else f"# was latest (floating) until orbit pinned {version}")
        return [_Splice(line_end - len(comment), line_end, note)]

    def _append_pins(self, images: MappingNode, pins: dict[str, str]) -> _Splice:
        entries = [f'{name}: "{version}"' for name, version in pins.items()]
        if images.flow_style:
            if not images.value:
                brace = self.text.index("{", images.start_mark.index)
                return _Splice(brace + 1, brace + 1, ", ".join(entries))
            return self._after_entry(images.value[-1], "".join(f", {entry}" for entry in entries))
        indent = " " * images.value[0][0].start_mark.column
        return self._lines_after(images.value[-1], [indent + entry for entry in entries])

    def _fill_null_images(self, key: Node, images: ScalarNode, pins: dict[str, str]) -> _Splice:
        flow = "{" + ", ".join(f'{name}: "{version}"' for name, version in pins.items()) + "}"
        if not _is_empty(images):  # images: ~ becomes a one-line flow mapping where the ~ was
            return _Splice(images.start_mark.index, images.end_mark.index, flow)
        if self.root.flow_style:
            return self._after_colon(key, flow)
        indent = " " * (key.start_mark.column + self._step())
        at = _line_end(self.text, key.end_mark.index)
        return _Splice(at, at, self._block([f'{indent}{name}: "{version}"' for name, version in pins.items()], at))

    def _add_images(self, pins: dict[str, str]) -> _Splice:
        if not self.root.value:
            raise self.doc.error("the file has no keys", rule=FILE_RULE)
        anchor = _entry(self.root, "display_name") or _entry(self.root, "id") or self.root.value[-1]
        if self.root.flow_style:
            flow = ", ".join(f'{name}: "{version}"' for name, version in pins.items())
            return self._after_entry(anchor, f", {IMAGES_KEY}: {{{flow}}}")
        column = anchor[0].start_mark.column
        indent = " " * (column + self._step())
        lines = [f"{' ' * column}{IMAGES_KEY}:", *(f'{indent}{name}: "{version}"' for name, version in pins.items())]
        return self._lines_after(anchor, lines)

    def _after_entry(self, entry: tuple[Node, Node], inserted: str) -> _Splice:
        at = self._entry_end(entry)
        return _Splice(at, at, inserted)

    def _lines_after(self, entry: tuple[Node, Node], lines: list[str]) -> _Splice:
        """Insert whole lines after the line on which ``entry`` ends (after its end-of-line comment)."""
        end = self._entry_end(entry)
        at = end if end > 0 and self.text[end - 1] in "\r\n" else _line_end(self.text, end)
        return _Splice(at, at, self._block(lines, at))

    def _entry_end(self, entry: tuple[Node, Node]) -> int:
        key, value = entry
        colon = self._colon_end(key)
        if _is_empty(value) or colon is None:
            return colon if colon is not None else int(key.end_mark.index)
        if value.start_mark.index < key.end_mark.index:
            # An alias: the node's marks are those of its anchor, earlier in the file; find the *name token.
            at = colon
            while at < len(self.text) and self.text[at] in " \t\r\n":
                at += 1
            while at < len(self.text) and self.text[at] not in " \t\r\n,[]{}":
                at += 1
            return at
        return int(value.end_mark.index)

    def _block(self, lines: list[str], at: int) -> str:
        if at == len(self.text) and not self.text.endswith(("\n", "\r")):
            # The file ends without a line break, and keeps ending without one.
            return "".join(self.newline + line for line in lines)
        return "".join(line + self.newline for line in lines)

    def _after_colon(self, key: Node, value: str) -> _Splice:
        colon = self._colon_end(key)
        if colon is not None:
            return _Splice(colon, colon, f" {value}")
        return _Splice(key.end_mark.index, key.end_mark.index, f": {value}")

    def _colon_end(self, key: Node) -> int | None:
        """The index just past the ``:`` after ``key``, or None when the entry has none (``{agent_tag}``)."""
        at = int(key.end_mark.index)
        while at < len(self.text) and self.text[at] in " \t":
            at += 1
        return at + 1 if at < len(self.text) and self.text[at] == ":" else None

    def _step(self) -> int:
        """The indentation step the file uses for nested block mappings (2 if it has none)."""
        stack: list[Node] = [self.root]
        seen: set[int] = set()
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, MappingNode):
                for key, value in node.value:
                    if isinstance(value, MappingNode) and not value.flow_style and value.value:
                        step = value.value[0][0].start_mark.column - key.start_mark.column
                        if step > 0:
                            return int(step)
                    stack.append(value)
        return _DEFAULT_STEP

    def _refuse_shared(self, node: Node, *at: str) -> None:
        if id(node) in self.shared:
            raise self.doc.error(f"'{'.'.join(at)}' is shared through a YAML anchor and alias", *at, rule=ANCHOR_RULE)


# --- helpers -----------------------------------------------------------------------------------


def _compose(text: str, path: Path) -> MappingNode:
    try:
        node = YAML(typ="rt").compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(path, f"invalid YAML: {exc.problem or exc}", line=line, rule="YAML syntax") from None
    except YAMLError as exc:
        raise ConfigError(path, f"invalid YAML: {exc}", rule="YAML syntax") from None
    if not isinstance(node, MappingNode):
        raise ConfigError(path, "expected a mapping at the top of the file", line=1, rule=FILE_RULE)
    return node


def _entry(mapping: MappingNode, name: str) -> tuple[Node, Node] | None:
    for key, value in mapping.value:
        if isinstance(key, ScalarNode) and key.value == name:
            return key, value
    return None


def _shared_nodes(root: Node) -> set[int]:
    """Ids of nodes reached more than once (an anchor used by an alias); each node is walked once."""
    seen: set[int] = set()
    shared: set[int] = set()
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            shared.add(id(node))
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return shared


def _is_empty(node: Node) -> bool:
    """A value written as nothing at all (``key:``), which has no text to replace."""
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG and node.start_mark.index == node.end_mark.index


def _scalar_start(text: str, start: int, end: int, style: str | None) -> int:
    """Where the scalar itself begins, past a tag or anchor written before it."""
    if style in ('"', "'"):
        return text.index(style, start, end)
    while start < end and text[start] in "!&":
        while start < end and text[start] not in " \t\r\n":
            start += 1
        while start < end and text[start] in " \t\r\n":
            start += 1
    return start


def _plain_reads_back(version: str) -> bool:
    """Whether ``version`` written without quotes is read as that same string."""
    return bool(yaml.safe_load(version) == version)


def _line_break(text: str) -> str:
    found = _BREAK.search(text)
    return found.group() if found else "\n"


def _line_end(text: str, index: int) -> int:
    """The index just past the line break that ends the line holding ``index`` (or the end of the text)."""
    found = _BREAK.search(text, index)
    return found.end() if found else len(text)


def _apply(text: str, splices: list[_Splice]) -> str:
    # From the end backwards, so earlier offsets stay valid; at one offset, the splice listed last goes in first
    # and so ends up after the others.
    ordered = sorted(enumerate(splices), key=lambda item: (item[1].start, item[0]), reverse=True)
    for _, splice in ordered:
        text = text[: splice.start] + splice.text + text[splice.end :]
    return text


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
