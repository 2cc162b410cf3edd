"""`.dockerignore` rules with Docker's exact semantics: which context paths a build leaves out.

A component's context must reach the builder exactly as `docker build` would send it, so this module
follows the code Docker runs rather than a lookalike (gitignore rules differ: there `*.py` matches at any
depth, here only at the top). Reading follows BuildKit's ``ReadAll`` (BOM stripped, a ``#`` comment only in
column 1, whitespace trimmed, ``filepath.Clean``, a leading ``/`` dropped); each rule is classified and
matched as ``moby/patternmatcher`` does (exact, prefix ``dir/**``, suffix ``**/x`` or a translated glob);
a path's verdict is ``MatchesUsingParentResults``, the walk-time evaluation BuildKit's sender uses, where
the last matching rule wins and a rule matching a directory matches everything below it. Syntax errors
are Go's ``filepath.Match`` errors (plus reversed ranges, which Docker's regexp engine rejects at build
time) and become a ``ConfigError`` naming the file, the line and the rule.

Where Docker's glob-to-regexp translation and Go's glob grammar disagree on pathological classes
(``*``, ``?``, ``[:alpha:]`` or ``\\d`` inside ``[...]``), this module follows the grammar and treats
them as literal characters. See docs/decisions/0005-dockerignore-and-context-packing.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from orbit_ops.errors import ConfigError

DEFAULT_IGNORE_NAME = ".dockerignore"

# Go's unicode.IsSpace set: what strings.TrimSpace removes (Python's str.strip() removes more).
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

# What BuildKit counts as a wildcard when deciding whether an exception can only name a fixed path.
_WILDCARD_CHARS = frozenset("*[]?^\\")

_SYNTAX_RULE = (
    "Docker ignore patterns use Go filepath.Match syntax: '*', '?', '**', '[a-z]' / '[^a-z]' classes "
    "closed by ']' and not empty, ranges low-high, '\\' escapes the next character"
)

MatchState = tuple[bool, ...]
"""Per rule: did it match this directory (or an ancestor)? Handed from a directory to its entries."""


class MatchKind(Enum):
    """How a rule compares a path, as patternmatcher classifies it."""

    EXACT = "exact"  # no wildcard: the path equals the pattern
    PREFIX = "prefix"  # literal text then a final "**": the path starts with the text
    SUFFIX = "suffix"  # starts with "**": the path ends with the rest
    REGEX = "regex"  # anything else: a translated glob


@dataclass(frozen=True)
class IgnoreRule:
    """One cleaned pattern of an ignore file."""

    pattern: str  # cleaned, without the leading "!"
    exception: bool  # a "!" rule re-includes what earlier rules excluded
    line: int  # 1-based line in the ignore file
    kind: MatchKind
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, path: str) -> bool:
        """Whether this rule matches ``path`` itself (slash-separated, no parent matching)."""
        if self.kind is MatchKind.EXACT:
            return path == self.pattern
        if self.kind is MatchKind.PREFIX:
            return path.startswith(self.pattern[:-2])
        if self.kind is MatchKind.SUFFIX:
            suffix = self.pattern[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regex is not None
        return self.regex.fullmatch(path) is not None

    @property
    def literal_prefix(self) -> str | None:
        """The fixed path this rule names once a trailing ``/**`` or ``/*`` is removed, or None if wild."""
        text = self.pattern.removesuffix("/**").removesuffix("/*")
        return None if _WILDCARD_CHARS.intersection(text) else text

    def __str__(self) -> str:
        return ("!" if self.exception else "") + self.pattern


@dataclass(frozen=True)
class DockerIgnore:
    """The rules of one ignore file, in file order (later rules win)."""

    rules: tuple[IgnoreRule, ...] = ()
    source: Path | None = None

    @classmethod
    def parse(cls, text: str, source: Path | None = None) -> DockerIgnore:
        """Parse ignore-file text.

        Raises:
            ConfigError: a pattern is malformed (file, line and pattern named).
        """
        where = source if source is not None else Path(DEFAULT_IGNORE_NAME)
        rules: list[IgnoreRule] = []
        for number, raw_line in enumerate(text.split("\n"), start=1):
            line = raw_line.removesuffix("\r")
            if number == 1:
                line = line.removeprefix("\ufeff")
            pattern = _read_pattern(line)
            if pattern is not None:
                rules.append(_make_rule(pattern, number, where))
        return cls(tuple(rules), source)

    @classmethod
    def from_file(cls, path: Path) -> DockerIgnore:
        """Read and parse an ignore file (bytes that are not UTF-8 are kept, as Go keeps them).

        Raises:
            ConfigError: the file cannot be read or a pattern is malformed.
        """
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(path, f"cannot read the ignore file: {exc.strerror or exc}") from exc
        return cls.parse(data.decode("utf-8", "surrogateescape"), path)

    @property
    def has_exceptions(self) -> bool:
        return any(rule.exception for rule in self.rules)

    @property
    def patterns(self) -> tuple[str, ...]:
        """The cleaned patterns, ``!`` kept, as Docker's ReadAll returns them."""
        return tuple(str(rule) for rule in self.rules)

    def match(self, path: str, parent: MatchState | None = None) -> tuple[bool, MatchState]:
        """Docker's verdict for ``path`` plus the state its entries need, if it is a directory.

        ``parent`` is the state returned for the containing directory during a walk; without it every
        ancestor of ``path`` is tried against each rule instead. Either way a rule that matches a
        directory matches everything below it, and the last rule that matches decides.
        """
        matched = False
        state: list[bool] = []
        ancestors: list[str] | None = None
        for index, rule in enumerate(self.rules):
            hit = parent[index] if parent else False
            if not hit:
                # A rule that cannot change the verdict so far is not evaluated, and so not recorded.
                if rule.exception != matched:
                    state.append(False)
                    continue
                hit = rule.matches(path)
                if not hit and not parent:
                    if ancestors is None:
                        ancestors = _ancestors(path)
                    hit = any(rule.matches(ancestor) for ancestor in ancestors)
            state.append(hit)
            if hit:
                matched = not rule.exception
        return matched, tuple(state)

    def excluded(self, relpath: str, is_dir: bool = False) -> bool:
        """Whether Docker leaves ``relpath`` (relative to the context, ``/``-separated) out of the context.

        ``is_dir`` is accepted for callers that know it; Docker's rules do not depend on it (a trailing
        ``/`` in a pattern is cleaned away, so ``foo/`` also excludes a file named ``foo``).
        """
        del is_dir
        parts = _context_parts(relpath)
        verdict = False
        state: MatchState | None = None
        for depth in range(1, len(parts) + 1):
            verdict, state = self.match("/".join(parts[:depth]), state)
        return verdict

    def skip_allowed(self, relpath: str) -> bool:
        """For an excluded directory: may a walk skip it without missing anything an exception re-includes?

        BuildKit's rule: only when every exception names a fixed path (no wildcard once a trailing ``/**``
        or ``/*`` is removed) and none of them lies inside this directory.
        """
        exceptions = [rule for rule in self.rules if rule.exception]
        prefixes = [rule.literal_prefix for rule in exceptions]
        if any(prefix is None for prefix in prefixes):
            return False
        inside = "/".join(_context_parts(relpath)) + "/"
        return not any(f"{prefix}/".startswith(inside) for prefix in prefixes)

    def can_skip_dir(self, relpath: str) -> bool:
        """Whether a walk may skip the directory ``relpath`` entirely: it is excluded and nothing below it
        can be re-included."""
        return self.excluded(relpath) and self.skip_allowed(relpath)


def find_ignore_file(context_dir: Path, dockerfile: Path) -> Path | None:
    """The ignore file a build uses: ``<Dockerfile name>.dockerignore`` beside the Dockerfile wins over
    ``<context>/.dockerignore`` (BuildKit's rule); None when neither exists."""
    specific = dockerfile.parent / f"{dockerfile.name}{DEFAULT_IGNORE_NAME}"
    if specific.is_file():
        return specific
    default = context_dir / DEFAULT_IGNORE_NAME
    if default.is_file():
        return default
    return None


def load_ignore(context_dir: Path, dockerfile: Path) -> DockerIgnore:
    """The rules a build of ``dockerfile`` in ``context_dir`` applies (none when there is no ignore file).

    Raises:
        ConfigError: the ignore file is unreadable or malformed.
    """
    path = find_ignore_file(context_dir, dockerfile)
    return DockerIgnore() if path is None else DockerIgnore.from_file(path)


def go_clean(path: str) -> str:
    """Go's ``filepath.Clean`` on a ``/``-separated path (``posixpath.normpath`` keeps a leading ``//``)."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append(part)
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def _read_pattern(line: str) -> str | None:
    """One line as BuildKit's ReadAll turns it into a pattern (``!`` kept), or None for nothing."""
    if line.startswith("#"):
        return None
    pattern = line.strip(_GO_SPACE)
    if not pattern:
        return None
    invert = pattern.startswith("!")
    if invert:
        pattern = pattern[1:].strip(_GO_SPACE)
    if pattern:
        pattern = go_clean(pattern)
        if len(pattern) > 1 and pattern.startswith("/"):
            pattern = pattern[1:]
    return "!" + pattern if invert else pattern


def _make_rule(pattern: str, line: int, source: Path) -> IgnoreRule:
    # patternmatcher.New trims and cleans once more, with the "!" still attached.
    text = go_clean(pattern.strip(_GO_SPACE))
    exception = text.startswith("!")
    if exception:
        if len(text) == 1:
            raise ConfigError(
                source,
                f"exception {pattern!r} names no pattern",
                line=line,
                rule="'!' must be followed by the pattern it re-includes",
            )
        text = text[1:]
    problem = _syntax_error(text)
    if problem is not None:
        raise ConfigError(source, f"bad pattern {pattern!r}: {problem}", line=line, rule=_SYNTAX_RULE)
    kind, regex = _compile(text)
    return IgnoreRule(text, exception, line, kind, regex)


def _syntax_error(pattern: str) -> str | None:
    """Why Go's filepath.Match rejects ``pattern`` (or Go's regexp would), or None if it is valid."""
    size = len(pattern)
    index = 0
    while index < size:
        char = pattern[index]
        if char == "\\":
            if index + 1 >= size:
                return "a trailing '\\' escapes nothing"
            index += 2
            continue
        if char != "[":
            index += 1
            continue
        index += 1
        if index < size and pattern[index] == "^":
            index += 1
        ranges = 0
        while True:
            if index < size and pattern[index] == "]" and ranges > 0:
                index += 1
                break
            low, index, problem = _class_char(pattern, index)
            if problem is not None:
                return problem
            high = low
            if pattern[index] == "-":
                high, index, problem = _class_char(pattern, index + 1)
                if problem is not None:
                    return problem
            if high < low:
                return f"range {low}-{high} in a [...] class runs backwards"
            ranges += 1
    return None


def _class_char(pattern: str, index: int) -> tuple[str, int, str | None]:
    """Go's getEsc: one (possibly escaped) character of a class; the class must go on after it."""
    if index >= len(pattern):
        return "", index, "a [...] class is not closed"
    if pattern[index] == "]":
        return "", index, "a [...] class is empty"
    if pattern[index] == "-":
        return "", index, "a '-' in a [...] class must be escaped or stand between two characters"
    if pattern[index] == "\\":
        index += 1
        if index >= len(pattern):
            return "", index, "a [...] class is not closed"
    char = pattern[index]
    index += 1
    if index >= len(pattern):
        return char, index, "a [...] class is not closed"
    return char, index, None


def _compile(pattern: str) -> tuple[MatchKind, re.Pattern[str] | None]:
    """Classify a valid pattern and translate it to a regex, step for step as patternmatcher does."""
    kind = MatchKind.EXACT
    out: list[str] = []
    size = len(pattern)
    index = 0
    first = True
    while index < size:
        char = pattern[index]
        index += 1
        if char == "*":
            if index < size and pattern[index] == "*":
                index += 1
                if index < size and pattern[index] == "/":
                    index += 1
                if index >= size:
                    if kind is MatchKind.EXACT:
                        kind = MatchKind.PREFIX
                    else:
                        out.append(".*")
                        kind = MatchKind.REGEX
                else:
                    # Any number of directories, including none.
                    out.append("(?:.*/)?")
                    kind = MatchKind.REGEX
                if first:
                    kind = MatchKind.SUFFIX
            else:
                out.append("[^/]*")
                kind = MatchKind.REGEX
        elif char == "?":
            out.append("[^/]")
            kind = MatchKind.REGEX
        elif char == "\\":
            out.append(re.escape(pattern[index]))
            index += 1
            kind = MatchKind.REGEX
        elif char == "[":
            translated, index = _translate_class(pattern, index)
            out.append(translated)
            kind = MatchKind.REGEX
        elif char == "]":
            out.append(r"\]")
            kind = MatchKind.REGEX
        elif char == "^":
            # Docker hands a bare caret to its regexp engine, where it anchors (so never matches mid-path).
            out.append("^")
        else:
            out.append(re.escape(char))
        first = False
    if kind is not MatchKind.REGEX:
        return kind, None
    return kind, re.compile("".join(out))


def _translate_class(pattern: str, index: int) -> tuple[str, int]:
    """A validated ``[...]`` class (``index`` just past the ``[``) as a Python class and the index after it."""
    negated = pattern[index] == "^"
    if negated:
        index += 1
    items: list[str] = []
    while not (pattern[index] == "]" and items):
        low, index, _ = _class_char(pattern, index)
        high = low
        if pattern[index] == "-":
            high, index, _ = _class_char(pattern, index + 1)
        items.append(re.escape(low) if low == high else f"{re.escape(low)}-{re.escape(high)}")
    return "[" + ("^" if negated else "") + "".join(items) + "]", index + 1


def _ancestors(path: str) -> list[str]:
    """The parent directory of ``path`` and each of its ancestors, shortest first, as Go's filepath.Dir
    and a split give them (none for a top-level path)."""
    cut = path.rfind("/")
    parent = go_clean(path[: cut + 1]) if cut >= 0 else "."
    if parent == ".":
        return []
    parts = parent.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts) + 1)]


def _context_parts(relpath: str) -> list[str]:
    """The components of a context-relative path (``./`` and leading ``/`` dropped, cleaned)."""
    cleaned = go_clean(relpath).lstrip("/")
    return [] if cleaned in ("", ".") else cleaned.split("/")
