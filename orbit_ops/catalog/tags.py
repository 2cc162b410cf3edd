"""Release tags ``<component>/v<semver>``: discovered in one ``git for-each-ref`` call, SemVer-ordered.

One call lists every tag of every component with its target and, for annotated tags, the peeled
object, so discovery costs the same for 10 tags or 10,000 (the benchmark compares it with a bare
for-each-ref). Tags that look like release tags but do not parse, and release tags that name a tree or a
blob instead of a commit (``git tag agent/v1.0.0 <tree>`` is allowed by git, but there is nothing to build
or check out), are kept aside to be reported once, each with its reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from orbit_ops.catalog.gitrepo import open_repo, run_git, stream_git
from orbit_ops.errors import InputError, NotFoundError
from orbit_ops.versions import LATEST, VERSION_RULE, PrecedenceKey, nearest, parse_version, version_key

_RELEASE = ((2, 0),)  # the pre-release part of a release's precedence key
NOT_SEMVER = "not <component>/v<semver>"
COMMIT_RULE = "tags must name commits"

_FORMAT = "%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)%00%(creatordate:iso-strict)"


class ReleaseTag(NamedTuple):
    """One release tag with its peeled commit.

    A NamedTuple rather than a frozen dataclass: discovery builds ten thousand of these per listing
    and a tuple is built several times faster, with the same immutability.
    """

    component: str
    version: str
    tag: str
    commit: str
    annotated: bool
    prerelease: bool
    date: str
    key: PrecedenceKey


@dataclass(frozen=True)
class IgnoredTag:
    tag: str
    reason: str


@dataclass(frozen=True)
class TagScan:
    """Every component's release tags, newest first, and the tags that were ignored."""

    tags: dict[str, list[ReleaseTag]]
    ignored: list[IgnoredTag]

    def of(self, component: str) -> list[ReleaseTag]:
        return self.tags.get(component, [])

    def latest_stable(self, component: str) -> ReleaseTag | None:
        return next((tag for tag in self.of(component) if not tag.prerelease), None)

    def find(self, component: str, version: str) -> ReleaseTag | None:
        return next((tag for tag in self.of(component) if tag.version == version), None)

    def resolve(self, component: str, version: str | None) -> ReleaseTag:
        """The tag for ``version``; ``None`` or ``latest`` means the highest stable version.

        Raises:
            NotFoundError: no such tag; the message lists the nearest versions.
            InputError: the tag exists but names a tree or a blob, not a commit.
        """
        if version is None or version == LATEST:
            found = self.latest_stable(component)
            if found is None:
                raise NotFoundError(f"component '{component}' has no stable release tag ({component}/v<version>)")
            return found
        found = self.find(component, version)
        if found is None:
            name = f"{component}/v{version}"
            unusable = next((item for item in self.ignored if item.tag == name and item.reason != NOT_SEMVER), None)
            if unusable is not None:
                raise InputError(f"{name} {unusable.reason}; a release is built from the commit its tag names")
            if parse_version(version) is None:
                raise NotFoundError(f"'{version}' is not a version ({VERSION_RULE})")
            close = nearest(version, (tag.version for tag in self.of(component)))
            hint = f"; nearest: {', '.join(close)}" if close else "; it has no release tags yet"
            raise NotFoundError(f"no tag {component}/v{version}{hint}")
        return found

    def ignored_message(self) -> str | None:
        """One line reporting the ignored tags, each kind with its reason, or None."""
        if not self.ignored:
            return None
        parts = []
        names = [item.tag for item in self.ignored if item.reason == NOT_SEMVER]
        if names:
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            parts.append(f"ignored {len(names)} tag(s) that are {NOT_SEMVER}: {', '.join(names[:5])}{more}")
        others = [item for item in self.ignored if item.reason != NOT_SEMVER]
        parts += [f"{item.tag} {item.reason}, so it is ignored" for item in others[:5]]
        if len(others) > 5:
            parts.append(f"and {len(others) - 5} more tag(s) that do not name a commit")
        return "; ".join(parts)


def _not_a_commit(kind: str) -> str:
    return f"points at a {kind}, not a commit ({COMMIT_RULE})"


def scan_tags(repo_path: Path, components: Iterable[str]) -> TagScan:
    """List the release tags of ``components`` in the repository at ``repo_path``.

    Raises:
        GitError: git failed.
    """
    names = sorted(set(components))
    repo = open_repo(repo_path)
    patterns = [f"refs/tags/{name}/" for name in names]
    lines = stream_git(repo, "for-each-ref", f"--format={_FORMAT}", *patterns) if patterns else iter(())
    found: dict[str, list[ReleaseTag]] = {name: [] for name in names}
    ignored: list[IgnoredTag] = []
    nested: list[tuple[str, str, str, str, PrecedenceKey]] = []  # tag-of-a-tag: peeled again in one batch below
    for line in lines:
        refname, objtype, objname, peeled_type, peeled_name, date = line.split("\0")
        tag = refname.removeprefix("refs/tags/")
        component, _, rest = tag.partition("/")
        version_text = rest[1:] if rest.startswith("v") else ""
        key = version_key(version_text)
        if key is None:
            ignored.append(IgnoredTag(tag, NOT_SEMVER))
            continue
        annotated = objtype == "tag"
        target_type, commit = (peeled_type, peeled_name) if annotated else (objtype, objname)
        if target_type == "tag":
            nested.append((tag, component, version_text, date, key))
            continue
        if target_type != "commit":
            ignored.append(IgnoredTag(tag, _not_a_commit(target_type)))
            continue
        found[component].append(ReleaseTag(component, version_text, tag, commit, annotated, key[3] != _RELEASE,
                                           date, key))
    if nested:
        # Peeled to the end (^{} stops at the first object that is not a tag, where ^{commit} would fail the
        # whole scan for one tag chain that ends at a tree), then typed through git's object database.
        peeled = run_git(repo, "rev-parse", *(f"refs/tags/{item[0]}^{{}}" for item in nested)).split()
        for (tag, component, version_text, date, key), target in zip(nested, peeled, strict=True):
            kind = repo.odb.info(bytes.fromhex(target)).type.decode()
            if kind != "commit":
                ignored.append(IgnoredTag(tag, _not_a_commit(kind)))
                continue
            found[component].append(ReleaseTag(component, version_text, tag, target, True, key[3] != _RELEASE,
                                               date, key))
    for tags in found.values():
        tags.sort(key=lambda item: item.key, reverse=True)
    return TagScan(tags=found, ignored=ignored)

