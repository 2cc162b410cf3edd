"""Checks that release records still tell the truth: the tag has not moved, the image is still there.

Records are append-only facts about a build; the world can change after them (a tag force-moved, an
image overwritten or deleted in the registry). ``orbit releases --verify`` and the console report each
such record; nothing is repaired silently. A version rebuilt with ``--force`` into another image (the
local builder stamps its build time, an ACR build need not be reproducible) has several records with
different digests: one version, several images, and apps deployed before the rebuild may run the
earlier one. That is reported too, with the digests, the current record and what the registry holds
(decision 0034); a rebuild that reproduced the image (the same digest) is not a problem.

The image check asks the workspace's builder what its registry holds (``ImageBuilder.held_images``) for
the records that builder made: the OCI layout under ``.orbit/registry`` for ``local`` (every blob
re-hashed), the ACR data plane for ``azure`` (one sign-in and one manifest HEAD per record, decision 0021).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from orbit_ops.backends.base import RecordedImage
from orbit_ops.catalog.releases import ReleaseRecord
from orbit_ops.versions import image_tag
from orbit_ops.workspace import Workspace


@dataclass(frozen=True)
class RecordProblem:
    record: ReleaseRecord
    problem: str

    def to_json(self) -> dict[str, str]:
        return {"component": self.record.component, "version": self.record.version, "tag": self.record.tag,
                "problem": self.problem}


def verify_records(workspace: Workspace, components: list[str] | None = None) -> list[RecordProblem]:
    """Every problem found with the newest record of each released version, and each version whose records
    disagree on the digest (reported on the newest record, the current one).

    Blocking (on the azure backend it reads the registry over the network): call it from a thread
    when an event loop is running.

    Raises:
        GitError: the tags cannot be listed.
        BackendError: the registry (azure backend) could not be read.
    """
    scan = workspace.tags()
    problems: list[RecordProblem] = []
    names = components or sorted(workspace.config.components)
    newest: dict[tuple[str, str], ReleaseRecord] = {}
    history: dict[tuple[str, str], list[ReleaseRecord]] = {}
    for name in names:
        for record in workspace.records().get(name, []):
            newest[(name, record.version)] = record  # a forced rebuild supersedes the earlier record
            history.setdefault((name, record.version), []).append(record)
    registry, held = _image_problems(workspace, list(newest.values()))
    for key, record in newest.items():
        tag = scan.find(record.component, record.version)
        if tag is None:
            problems.append(RecordProblem(record, f"the tag {record.tag} no longer exists "
                                                  f"(record says commit {record.commit[:12]})"))
        elif tag.commit != record.commit:
            problems.append(RecordProblem(record, f"the tag moved: record {record.commit[:12]}, "
                                                  f"tag now {tag.commit[:12]}"))
        if record in registry:
            problems.append(RecordProblem(record, registry[record]))
        several = several_digests(history[key], held.get(record, UNKNOWN))
        if several:
            problems.append(RecordProblem(record, several))
    return problems


UNKNOWN = "unknown"  # what several_digests is told when the registry could not be asked


def several_digests(records: list[ReleaseRecord], held: str | None = UNKNOWN) -> str | None:
    """The problem of one version's ``records`` (oldest first) when they name more than one digest, else None.

    Pure. ``held`` is the digest the registry holds under the version's tag now: None when it holds no image
    there, ``UNKNOWN`` when it was not (or could not be) asked.
    """
    last_of: dict[str, ReleaseRecord] = {}
    for record in records:
        last_of.pop(record.digest, None)
        last_of[record.digest] = record  # each digest once, in the order of its newest record
    if len(last_of) < 2:
        return None
    current = records[-1]
    shown = ", ".join(
        f"{digest[:19]} (built {record.built_at}{', current: the newest record' if record is current else ''})"
        for digest, record in last_of.items()
    )
    text = f"{len(last_of)} different digests in {len(records)} records: {shown}"
    if held == UNKNOWN:
        return text
    if held is None:
        return f"{text}; the registry holds none of them (no image under :{image_tag(current.version)})"
    if held == current.digest:
        return f"{text}; the registry holds the current one"
    if held in last_of:
        return f"{text}; the registry holds {held[:19]}, an earlier record's, not the current one"
    return f"{text}; the registry holds {held[:19]}, none of these"


def _image_problems(
    workspace: Workspace, records: list[ReleaseRecord]
) -> tuple[dict[ReleaseRecord, str], dict[ReleaseRecord, str | None]]:
    """What is wrong with the image of each record the workspace's builder made (records without a problem
    are absent), and the digest its registry holds under each record's tag (None: no image; ``UNKNOWN``:
    damaged or not read). Records of another builder are not read.

    Raises:
        BackendError: the registry could not be read.
    """
    if not records:
        return {}, {}
    builder = workspace.builder()
    images = {
        record: RecordedImage(record.component, record.image, record.registry, image_tag(record.version))
        for record in records
        if record.builder == builder.name
    }
    if not images:
        return {}, {}
    found = asyncio.run(builder.held_images(list(images.values())))
    problems: dict[ReleaseRecord, str] = {}
    held: dict[ReleaseRecord, str | None] = {}
    for record, image in images.items():
        answer = found[image]
        if answer.unchecked is not None:
            problems[record] = answer.unchecked
        elif answer.damaged is not None:
            problems[record], held[record] = f"image {record.image} is damaged: {answer.damaged}", UNKNOWN
        elif answer.digest is None:
            problems[record], held[record] = f"image {record.image} is not in the registry any more", None
        else:
            held[record] = answer.digest
            if answer.digest != record.digest:
                problems[record] = (f"registry has {answer.digest[:19]} under :{image.tag}, "
                                    f"record says {record.digest[:19]}")
    return problems, held
