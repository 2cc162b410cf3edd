"""Safe YAML loading that remembers where every key and value came from.

Validation errors must name the file and the line (SPEC §6.1), so a document is loaded as plain data
together with a map from each key path to its line. Loading is always safe (no Python tags); aliases
are resolved by the constructor, and the line map visits an aliased node only once so an alias bomb
cannot blow it up. A fleet loads 10,000 of these files, so the common plain document is built in the
same walk that maps its lines; everything else goes through PyYAML's own constructor (see
``_construct`` and ``docs/decisions/0014-fleet-speed.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orbit_ops.errors import ConfigError

try:  # libyaml is several times faster; the pure-Python loader is the fallback.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

KeyPath = tuple[str | int, ...]

# A solution or config file is small; anything far larger is a mistake or an attack.
MAX_YAML_BYTES = 1 << 20


@dataclass(frozen=True)
class YamlDoc:
    """A loaded YAML document: ``data`` plus the line of every key path (1-based)."""

    path: Path
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    # The text as written of every plain (unquoted) scalar that YAML turned into something other than a string
    # (``012`` → 10, ``yes`` → True, ``1.50`` → 1.5, ``~`` → None): validation refuses those where text is meant.
    converted: dict[KeyPath, str] = field(default_factory=dict)

    def line(self, *key_path: str | int) -> int | None:
        """The line of ``key_path``, or of its nearest ancestor that has one."""
        parts: KeyPath = tuple(key_path)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), None)

    def error(self, problem: str, *key_path: str | int, rule: str | None = None) -> ConfigError:
        """A :class:`ConfigError` pointing at ``key_path`` in this file."""
        return ConfigError(self.path, problem, line=self.line(*key_path), rule=rule)


def load_yaml(path: Path, *, text: str | None = None) -> YamlDoc:
    """Load one YAML document from ``path`` (or ``text`` read from it).

    Raises:
        ConfigError: the file cannot be read, is not UTF-8, is too large, or is not valid YAML.
    """
    if text is None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(path, f"cannot read file: {exc.strerror or exc}") from None
        if len(raw) > MAX_YAML_BYTES:
            raise ConfigError(path, f"file is {len(raw)} bytes", rule=f"at most {MAX_YAML_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(path, f"not valid UTF-8 at byte {exc.start}", rule="files are UTF-8") from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data, lines, duplicates, converted = _construct(loader, node) if node is not None else (None, {}, [], {})
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        raise ConfigError(path, f"invalid YAML: {problem}", line=line, rule="YAML syntax") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, f"invalid YAML: {exc}", rule="YAML syntax") from None
    except RecursionError:
        raise ConfigError(path, "YAML nested too deeply", rule="YAML syntax") from None
    finally:
        loader.dispose()
    if duplicates:
        key_path, line, first = min(duplicates, key=lambda item: item[1])
        raise ConfigError(
            path,
            f"key '{key_path[-1]}' appears twice (first on line {first})",
            line=line,
            rule="each key once per mapping",
        )
    return YamlDoc(path=path, data=data, lines=lines, converted=converted)


_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
# Scalar tags built here (through the loader's constructors, except str and null); any other tag, and
# every merge key ('<<') and '=' key, leaves the document to PyYAML's own constructor.
_PLAIN_SCALARS = frozenset({_STR, _NULL, "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool",
                            "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"})
_NOT_PLAIN = object()


def _construct(
    loader: Any, root: yaml.Node
) -> tuple[Any, dict[KeyPath, int], list[tuple[KeyPath, int, int]], dict[KeyPath, str]]:
    """The document's data, the line of every key path, its duplicate keys as ``(path, line, first_line)``, and
    the written text of each scalar YAML did not read as a string (see ``YamlDoc.converted``).

    One iterative walk builds the data and the line map together, so deep nesting cannot overflow the
    stack. Plain documents (mappings, sequences and scalars of the core schema, no aliases) are built
    here; strings and nulls directly, other scalars by the loader's own constructors. Anything else,
    or any error, hands the whole document to ``construct_document``, so values and error messages
    are always exactly those of PyYAML's safe loader. A node reached again through an alias is not
    walked again, so an alias bomb stays linear.
    """
    lines: dict[KeyPath, int] = {}
    duplicates: list[tuple[KeyPath, int, int]] = []
    converted: dict[KeyPath, str] = {}
    aliased: set[KeyPath] = set()
    seen: set[int] = set()
    plain = True
    data: Any = None
    # (node, key path, container to store the value in, key or index in it)
    stack: list[tuple[yaml.Node, KeyPath, Any, Any]] = [(root, (), None, None)]
    while stack:
        current, where, parent, slot = stack.pop()
        lines.setdefault(where, current.start_mark.line + 1)
        if id(current) in seen:
            aliased.add(where)
            plain = False
            continue
        seen.add(id(current))
        value: Any = None
        if isinstance(current, yaml.MappingNode):
            if current.tag != _MAP:
                plain = False
            mapping: dict[Any, Any] = {}
            value = mapping
            for key_node, value_node in current.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key_path = (*where, str(key_node.value))
                    if key_path in lines and key_path not in aliased:
                        duplicates.append((key_path, key_node.start_mark.line + 1, lines[key_path]))
                    lines.setdefault(key_path, key_node.start_mark.line + 1)
                    if plain:
                        key = _scalar(loader, key_node)
                        if key is _NOT_PLAIN or key in mapping:  # equal keys (1 and true): PyYAML's order
                            plain = False
                        else:
                            mapping[key] = None  # keeps the document's key order
                            stack.append((value_node, key_path, mapping, key))
                            continue
                    stack.append((value_node, key_path, None, None))
                else:
                    plain = False
        elif isinstance(current, yaml.SequenceNode):
            if current.tag != _SEQ:
                plain = False
            items: list[Any] = [None] * len(current.value)
            value = items
            for index, item in enumerate(current.value):
                stack.append((item, (*where, index), items, index))
        else:
            if current.tag != _STR:
                converted[where] = str(current.value)
            if plain:
                value = _scalar(loader, current)
                if value is _NOT_PLAIN:
                    plain = False
        if plain:
            if parent is None:
                data = value
            else:
                parent[slot] = value
    if not plain:
        # PyYAML's constructor flattens merge keys into the nodes, so the lines are indexed after it.
        data = loader.construct_document(root)
        lines, duplicates, converted = _index_lines(root)
    return data, lines, duplicates, converted


def _index_lines(
    node: yaml.Node,
) -> tuple[dict[KeyPath, int], list[tuple[KeyPath, int, int]], dict[KeyPath, str]]:
    """Map key paths to lines, list duplicate keys as ``(path, line, first_line)``, and keep the written text
    of scalars not read as strings.

    The walk of :func:`_construct` without building data, for documents PyYAML constructs itself.
    Iterative, so deep nesting cannot overflow the stack; a node reached again through an alias is
    not walked again, so an alias bomb stays linear.
    """
    lines: dict[KeyPath, int] = {}
    duplicates: list[tuple[KeyPath, int, int]] = []
    converted: dict[KeyPath, str] = {}
    aliased: set[KeyPath] = set()
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, KeyPath]] = [(node, ())]
    while stack:
        current, where = stack.pop()
        lines.setdefault(where, current.start_mark.line + 1)
        if id(current) in seen:
            aliased.add(where)
            continue
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key_path = (*where, str(key_node.value))
                    if key_path in lines and key_path not in aliased:
                        duplicates.append((key_path, key_node.start_mark.line + 1, lines[key_path]))
                    lines.setdefault(key_path, key_node.start_mark.line + 1)
                    stack.append((value_node, key_path))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                stack.append((item, (*where, index)))
        elif current.tag != _STR:
            converted[where] = str(current.value)
    return lines, duplicates, converted


def _scalar(loader: Any, node: yaml.Node) -> Any:
    """The value of a scalar node, or ``_NOT_PLAIN`` when PyYAML's constructor must judge the document."""
    tag = node.tag
    if tag == _STR:
        return node.value
    if tag == _NULL:
        return None
    if tag not in _PLAIN_SCALARS:
        return _NOT_PLAIN
    try:
        return loader.construct_object(node, deep=True)
    except Exception:  # construct_document raises it again, exactly as the plain loader would
        return _NOT_PLAIN
