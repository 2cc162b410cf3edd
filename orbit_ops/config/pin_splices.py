"""Where a pin goes in a solution file's text: the splices that set pins, read off ruamel.yaml's node tree.

:mod:`orbit_ops.config.pins` decides which pins change and checks the result; this module only finds, for
each pin, the few characters to replace or insert, so that everything else stays byte for byte as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orbit_ops.errors import ConfigError
from orbit_ops.versions import LATEST
from orbit_ops.yamlfile import YamlDoc

IMAGES_KEY = "images"
FILE_RULE = "a solution file is a mapping with id, display_name, images, env"
IMAGES_RULE = "images maps orbit_tag/agent_tag/mc_tag to versions"
PIN_VALUE_RULE = 'a pin is written on one line, e.g. agent_tag: "2.1.0"'
ANCHOR_RULE = "pins and the images mapping are written out, not shared through YAML anchors and aliases"
NULL_TAG = "tag:yaml.org,2002:null"
LINE_BREAK = re.compile(r"\r\n|\r|\n")
DEFAULT_STEP = 2


@dataclass(frozen=True)
class Splice:
    """Replace ``text[start:end]`` with ``text``: an insertion when ``start == end``."""

    start: int
    end: int
    text: str


class Splicer:
    """Decides the splices that set pins, reading positions off ruamel.yaml's round-trip node tree."""

    def __init__(self, text: str, root: MappingNode, doc: YamlDoc) -> None:
        self.text = text
        self.root = root
        self.doc = doc
        self.newline = _line_break(text)
        self.shared = _shared_nodes(root)

    def splices(self, pins: dict[str, str]) -> list[Splice]:
        entry = _entry(self.root, IMAGES_KEY)
        if entry is None:
            return [self._add_images(pins)]
        key, images = entry
        self._refuse_shared(images, IMAGES_KEY)
        if isinstance(images, ScalarNode):  # images: (nothing), ~ or null
            return [self._fill_null_images(key, images, pins)]
        if not isinstance(images, MappingNode):  # load_yaml saw a mapping, so this is a YAML 1.1/1.2 difference
            raise self.doc.error(f"'{IMAGES_KEY}' must be a mapping", IMAGES_KEY, rule=IMAGES_RULE)
        splices: list[Splice] = []
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

    def _replace_pin(self, key: Node, value: Node, name: str, version: str) -> Splice:
        at = (IMAGES_KEY, name)
        self._refuse_shared(value, *at)
        if not isinstance(value, ScalarNode) or value.style in ("|", ">"):
            raise self.doc.error(f"{name} is not a one-line value", *at, rule=PIN_VALUE_RULE)
        if _is_empty(value):
            return self._after_colon(key, f'"{version}"')
        start, end = value.start_mark.index, value.end_mark.index
        if value.tag == NULL_TAG:  # an explicit ~ or null: a new pin
            return Splice(start, end, f'"{version}"')
        # The property prefix (a tag like !!str, an anchor) stays; only the scalar itself is replaced.
        start = _scalar_start(self.text, start, end, value.style)
        if value.style in ('"', "'"):
            return Splice(start, end, f"{value.style}{version}{value.style}")
        return Splice(start, end, version if _plain_reads_back(version) else f'"{version}"')

    def _floating_comment(self, value: Node, version: str) -> list[Splice]:
        """The pin's end-of-line comment replaced by a true one, when the pin starts or stops floating."""
        if not isinstance(value, ScalarNode) or value.tag == NULL_TAG:
            return []
        if (value.value == LATEST) == (version == LATEST):
            return []
        end = int(value.end_mark.index)
        found = LINE_BREAK.search(self.text, end)
        line_end = found.start() if found else len(self.text)
        rest = self.text[end:line_end]
        comment = rest.lstrip(" \t")
        if not comment.startswith("#"):
            return []
        note = (f"# floats on the newest release (was {value.value} until orbit set latest)" if version == LATEST
                else f"# was latest (floating) until orbit pinned {version}")
        return [Splice(line_end - len(comment), line_end, note)]

    def _append_pins(self, images: MappingNode, pins: dict[str, str]) -> Splice:
        entries = [f'{name}: "{version}"' for name, version in pins.items()]
        if images.flow_style:
            if not images.value:
                brace = self.text.index("{", images.start_mark.index)
                return Splice(brace + 1, brace + 1, ", ".join(entries))
            return self._after_entry(images.value[-1], "".join(f", {entry}" for entry in entries))
        indent = " " * images.value[0][0].start_mark.column
        return self._lines_after(images.value[-1], [indent + entry for entry in entries])

    def _fill_null_images(self, key: Node, images: ScalarNode, pins: dict[str, str]) -> Splice:
        flow = "{" + ", ".join(f'{name}: "{version}"' for name, version in pins.items()) + "}"
        if not _is_empty(images):  # images: ~ becomes a one-line flow mapping where the ~ was
            return Splice(images.start_mark.index, images.end_mark.index, flow)
        if self.root.flow_style:
            return self._after_colon(key, flow)
        indent = " " * (key.start_mark.column + self._step())
        at = _line_end(self.text, key.end_mark.index)
        return Splice(at, at, self._block([f'{indent}{name}: "{version}"' for name, version in pins.items()], at))

    def _add_images(self, pins: dict[str, str]) -> Splice:
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

    def _after_entry(self, entry: tuple[Node, Node], inserted: str) -> Splice:
        at = self._entry_end(entry)
        return Splice(at, at, inserted)

    def _lines_after(self, entry: tuple[Node, Node], lines: list[str]) -> Splice:
        """Insert whole lines after the line on which ``entry`` ends (after its end-of-line comment)."""
        end = self._entry_end(entry)
        at = end if end > 0 and self.text[end - 1] in "\r\n" else _line_end(self.text, end)
        return Splice(at, at, self._block(lines, at))

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

    def _after_colon(self, key: Node, value: str) -> Splice:
        colon = self._colon_end(key)
        if colon is not None:
            return Splice(colon, colon, f" {value}")
        return Splice(key.end_mark.index, key.end_mark.index, f": {value}")

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
        return DEFAULT_STEP

    def _refuse_shared(self, node: Node, *at: str) -> None:
        if id(node) in self.shared:
            raise self.doc.error(f"'{'.'.join(at)}' is shared through a YAML anchor and alias", *at, rule=ANCHOR_RULE)


# --- helpers -----------------------------------------------------------------------------------


def compose(text: str, path: Path) -> MappingNode:
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
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG and node.start_mark.index == node.end_mark.index


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
    found = LINE_BREAK.search(text)
    return found.group() if found else "\n"


def _line_end(text: str, index: int) -> int:
    """The index just past the line break that ends the line holding ``index`` (or the end of the text)."""
    found = LINE_BREAK.search(text, index)
    return found.end() if found else len(text)


def apply_splices(text: str, splices: list[Splice]) -> str:
    # From the end backwards, so earlier offsets stay valid; at one offset, the splice listed last goes in first
    # and so ends up after the others.
    ordered = sorted(enumerate(splices), key=lambda item: (item[1].start, item[0]), reverse=True)
    for _, splice in ordered:
        text = text[: splice.start] + splice.text + text[splice.end :]
    return text
