"""Solution labels (SPEC §2: ``labels:`` in Kubernetes label syntax) and the patterns that select solutions.

A selection pattern (``--only``/``--exclude``, waves) is either a glob over solution ids (``acme-*``) or, when it
holds ``=``, a label selector as ``kubectl -l`` reads one: comma-separated requirements that must all hold,
each ``key=value`` (also ``key==value``) or ``key!=value``. As in Kubernetes, ``key!=value`` also matches a
solution without that label. Solution ids never hold ``=``, so the two kinds cannot be mistaken for each other
(decision 0056).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orbit_ops.errors import InputError

# https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set
LABEL_KEY_RULE = ("label keys are Kubernetes label names: an optional DNS-subdomain prefix and '/', then 1–63 "
                  "letters, digits, '-', '_' or '.', beginning and ending with a letter or digit")
LABEL_VALUE_RULE = ("label values are text of at most 63 letters, digits, '-', '_' or '.', beginning and ending with "
                    "a letter or digit (or empty)")
SELECTOR_RULE = ("a pattern is a glob over solution ids (acme-*) or label requirements joined by ',' "
                 "(ring=canary,region!=eu)")

_NAME = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_REQUIREMENT = re.compile(r"^\s*(?P<key>[^=!\s]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^=!\s]*)\s*$")


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a Kubernetes label key, or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253
                  or not all(_DNS_LABEL.fullmatch(part) for part in prefix.split("."))):
        return "its prefix before '/' is not a DNS subdomain (lowercase letters, digits, '-' and '.')"
    if not name:
        return "it has no name"
    if not _NAME.fullmatch(name):
        return ("its name is longer than 63 characters" if len(name) > 63
                else "its name holds a character other than letters, digits, '-', '_' and '.', "
                     "or does not begin and end with a letter or digit")
    return None


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a Kubernetes label value, or None (an empty value is allowed)."""
    if value == "" or _NAME.fullmatch(value):
        return None
    if len(value) > 63:
        return "it is longer than 63 characters"
    return "it holds a character other than letters, digits, '-', '_' and '.', or does not begin and end with one"


@dataclass(frozen=True)
class Requirement:
    """``key=value`` or ``key!=value``."""

    key: str
    value: str
    negated: bool = False

    def matches(self, labels: Mapping[str, str]) -> bool:
        found = labels.get(self.key) == self.value
        return not found if self.negated else found

    def __str__(self) -> str:
        return f"{self.key}{'!=' if self.negated else '='}{self.value}"


@dataclass(frozen=True)
class LabelSelector:
    """Requirements that must all hold."""

    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


def is_label_selector(pattern: str) -> bool:
    """Whether ``pattern`` selects by labels (it holds ``=``) rather than by id."""
    return "=" in pattern


def parse_requirement(text: str) -> Requirement:
    """One ``key=value`` / ``key!=value``.

    Raises:
        InputError: it is not one, or its key or value breaks the label syntax (the message names the rule).
    """
    found = _REQUIREMENT.match(text)
    if found is None:
        raise InputError(f"'{text}' is not a label requirement ({SELECTOR_RULE})")
    key, value = found["key"], found["value"]
    if (problem := label_key_problem(key)) is not None:
        raise InputError(f"'{text}': label key '{key}' is not valid: {problem} ({LABEL_KEY_RULE})")
    if (problem := label_value_problem(value)) is not None:
        raise InputError(f"'{text}': label value '{value}' is not valid: {problem} ({LABEL_VALUE_RULE})")
    return Requirement(key, value, found["op"] == "!=")


def parse_selector(text: str) -> LabelSelector:
    """``ring=canary,region!=eu``.

    Raises:
        InputError: a requirement is not valid.
    """
    parts = text.split(",")
    if any(not part.strip() for part in parts):
        raise InputError(f"'{text}' has an empty requirement ({SELECTOR_RULE})")
    return LabelSelector(tuple(parse_requirement(part) for part in parts))


class Pattern:
    """One ``--only``/``--exclude`` pattern: an id glob or a label selector."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.selector = parse_selector(text) if is_label_selector(text) else None

    def matches(self, solution_id: str, labels: Mapping[str, str] | None) -> bool:
        """Whether the solution matches; ``labels`` None (an invalid file's, unread) matches no label selector."""
        if self.selector is None:
            return fnmatch.fnmatchcase(solution_id, self.text)
        return labels is not None and self.selector.matches(labels)


class Selection:
    """``--only``/``--exclude`` patterns: a solution is selected when it matches an ``only`` pattern (when there are
    any) and no ``exclude`` one.

    An invalid file's labels cannot be read (``labels`` None): it matches no label selector, so ``--only
    ring=canary`` leaves it out and ``--exclude ring=canary`` keeps it, to be reported.
    """

    def __init__(self, only: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        """Raises InputError when a label selector among the patterns is not valid."""
        self.only = tuple(Pattern(text) for text in only)
        self.exclude = tuple(Pattern(text) for text in exclude)

    def __bool__(self) -> bool:
        return bool(self.only or self.exclude)

    def matches(self, solution_id: str, labels: Mapping[str, str] | None) -> bool:
        if self.only and not any(pattern.matches(solution_id, labels) for pattern in self.only):
            return False
        return not any(pattern.matches(solution_id, labels) for pattern in self.exclude)
