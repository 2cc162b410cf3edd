"""SemVer 2.0 versions: parsing with ``semver``, and a precedence key that sorts thousands fast.

``semver.Version`` comparisons cost microseconds each; listing 10,000 tags needs a plain tuple key
instead. :func:`precedence_key` implements SemVer §11 (numeric identifiers below alphanumeric ones,
a pre-release below its release, build metadata ignored) and is checked against ``semver.compare``
by a property test.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import semver

LATEST = "latest"
VERSION_RULE = "a version is SemVer 2.0 MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], e.g. 2.1.0 or 2.0.0-rc.1"

PrecedenceKey = tuple[int, int, int, tuple[tuple[int, int | str], ...]]

# The regular expression that semver.org gives for SemVer 2.0, used where thousands of tags are keyed
# at once; agreement with ``semver.Version.parse`` is a property test.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_RELEASE: tuple[tuple[int, int | str], ...] = ((2, 0),)


def parse_version(text: str) -> semver.Version | None:
    """The SemVer version in ``text``, or None if it is not one (a leading ``v`` is not accepted)."""
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        return None


def is_version(text: str) -> bool:
    return parse_version(text) is not None


def is_prerelease(version: semver.Version) -> bool:
    return version.prerelease is not None


def precedence_key(version: semver.Version) -> PrecedenceKey:
    """A tuple that orders versions exactly as SemVer precedence does (build metadata ignored)."""
    if version.prerelease is None:
        # A release sorts above every pre-release of the same MAJOR.MINOR.PATCH.
        pre: tuple[tuple[int, int | str], ...] = ((2, 0),)
    else:
        pre = tuple(
            (0, int(part)) if part.isdigit() else (1, part) for part in version.prerelease.split(".")
        )
    return (version.major, version.minor, version.patch, pre)


@functools.lru_cache(maxsize=8192)
def version_key(text: str) -> PrecedenceKey | None:
    """The precedence key of a version string, or None if it is not SemVer 2.0 (fast path of parsing).

    Cached: a platform's components share most version strings (1.0.0, 1.1.0...), so a scan of
    thousands of tags parses each distinct string once.
    """
    match = _SEMVER.match(text)
    if match is None or text.endswith("\n"):
        return None
    major, minor, patch, prerelease, _build = match.groups()
    if prerelease is None:
        pre = _RELEASE
    else:
        pre = tuple((0, int(part)) if part.isdigit() else (1, part) for part in prerelease.split("."))
    return (int(major), int(minor), int(patch), pre)


def newest_first(versions: Iterable[str]) -> list[str]:
    """Sort version strings newest first; strings that are not versions are dropped."""
    parsed = [(text, parse_version(text)) for text in versions]
    ordered = sorted(
        ((text, version) for text, version in parsed if version is not None),
        key=lambda item: precedence_key(item[1]),
        reverse=True,
    )
    return [text for text, _ in ordered]


def nearest(target: str, candidates: Iterable[str], count: int = 3) -> list[str]:
    """Up to ``count`` versions among ``candidates`` closest to ``target`` in precedence, newest first."""
    ordered = list(reversed(newest_first(candidates)))  # oldest first
    wanted = parse_version(target)
    if wanted is None:
        return ordered[::-1][:count]
    key = precedence_key(wanted)
    split = sum(1 for text in ordered if precedence_key(semver.Version.parse(text)) < key)
    below, above = split - 1, split
    picked: list[str] = []
    while len(picked) < count and (below >= 0 or above < len(ordered)):
        if above < len(ordered):
            picked.append(ordered[above])
            above += 1
        if below >= 0 and len(picked) < count:
            picked.append(ordered[below])
            below -= 1
    return newest_first(picked)


def image_tag(version: str) -> str:
    """The registry tag of ``version``: SemVer build metadata's ``+`` is not allowed in a tag, ``_`` is."""
    return version.replace("+", "_")
