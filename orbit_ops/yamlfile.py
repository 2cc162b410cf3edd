"""Safe YAML loading that remembers where every key and value came from.

Validation errors must name the file and the line (SPEC §6.1), so a document is loaded as plain data
together with a map from each key path to its line. Loading is always safe (no Python tags); aliases
are resolved by the constructor, and the line map visits an aliased node only once so an alias bomb
cannot blow it up.
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
        data = loader.construct_document(node) if node is not None else None
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
    lines: dict[KeyPath, int] = {}
    if node is not None:
        lines, duplicates = _index_lines(node)
        if duplicates:
            key_path, line, first = min(duplicates, key=lambda item: item[1])
            raise ConfigError(
                path,
                f"key '{key_path[-1]}' appears twice (first on line {first})",
                line=line,
                rule="each key once per mapping",
            )
    return YamlDoc(path=path, data=data, lines=lines)


def _index_lines(node: yaml.Node) -> tuple[dict[KeyPath, int], list[tuple[KeyPath, int, int]]]:
    """Map key paths to lines, and list duplicate keys as ``(path, line, first_line)``.

    Iterative, so deep nesting cannot overflow the stack; a node reached again through an alias is
    not walked again, so an alias bomb stays linear.
    """
    lines: dict[KeyPath, int] = {}
    duplicates: list[tuple[KeyPath, int, int]] = []
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
    return lines, duplicates
