"""Checks that release records still tell the truth: the tag has not moved, the image is still there.

Records are append-only facts about a build; the world can change after them (a tag force-moved, an
image overwritten or deleted in the registry). ``orbit releases --verify`` and the console report each
such record; nothing is repaired silently. A version rebuilt with ``--force`` into another image (the
local builder stamps its build time, an ACR build need not be reproducible) has several records with
different digests: one version, several images, and apps deployed before the rebuild may run the
earlier one. That is reported too, with the digests, the current record and what the registry holds
(decision 0034); a rebuild that reproduced the image (the same digest) is not a problem.

The image check asks the backend's registry: the OCI layout under ``.orbit/registry`` for ``local``,
the ACR data plane for ``azure`` (one sign-in and one manifest HEAD per record, decision 0021).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from orbit_ops.catalog.releases import ReleaseRecord
from orbit_ops.errors import BackendError, NotFoundError
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
    registry, held = _acr_problems(workspace, [r for r in newest.values() if r.builder == "acr"])
    for key, record in newest.items():
        tag = scan.find(record.component, record.version)
        if tag is None:
            problems.append(RecordProblem(record, f"the tag {record.tag} no longer exists "
                                                  f"(record says commit {record.commit[:12]})"))
        elif tag.commit != record.commit:
            problems.append(RecordProblem(record, f"the tag moved: record {record.commit[:12]}, "
                                                  f"tag now {tag.commit[:12]}"))
        if record.builder == "local" and workspace.config.backend == "local":
            problem, held[record] = _local_image(workspace, record)
            if problem:
                problems.append(RecordProblem(record, problem))
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


def _acr_problems(
    workspace: Workspace, records: list[ReleaseRecord]
) -> tuple[dict[ReleaseRecord, str], dict[ReleaseRecord, str | None]]:
    """What is wrong with each ACR-built record's image in the configured registry (records without a
    problem are absent), and the digest the registry holds under each record's tag (None: no image; records
    not read are absent). Records built in another registry than the configured one are reported, not read;
    so are all of them when the registry's address is not known (a custom ``arm_endpoint`` without
    ``login_server``).
    """
    settings = workspace.config.azure
    if workspace.config.backend != "azure" or settings is None or not records:
        return {}, {}
    from orbit_ops.backends.azure.acr import AcrBuilder
    from orbit_ops.backends.azure.common import ARM_ENDPOINT

    builder = AcrBuilder(settings)
    if not settings.login_server and builder.endpoints.arm != ARM_ENDPOINT:
        # Another cloud (sovereign, Azure Stack, an emulator): <registry>.azurecr.io would be a guess, and
        # the sign-in would hand that guessed host an Azure AD token of this cloud.
        unchecked = (f"image not checked: with arm_endpoint {builder.endpoints.arm}, set azure.login_server "
                     f"to the registry's address (it is not {builder.registry})")
        return dict.fromkeys(records, unchecked), {}
    problems: dict[ReleaseRecord, str] = {}
    wanted: dict[ReleaseRecord, tuple[str, str]] = {}
    for record in records:
        if record.registry != builder.registry:
            problems[record] = (f"built in registry {record.registry}, not the configured {builder.registry}; "
                                "its image was not checked")
        else:
            wanted[record] = (_repository(record, builder.registry), image_tag(record.version))
    found = asyncio.run(builder.registry_digests(wanted.values()))
    held: dict[ReleaseRecord, str | None] = {}
    for record, (repository, tag) in wanted.items():
        digest = held[record] = found.get((repository, tag))
        if digest is None:
            problems[record] = f"image {record.image} is not in the registry any more"
        elif digest != record.digest:
            problems[record] = f"registry has {digest[:19]} under :{tag}, record says {record.digest[:19]}"
    return problems, held


def _repository(record: ReleaseRecord, registry: str) -> str:
    """The repository of the record's image (``<registry>/<repository>:<tag>``), else the component's name."""
    name = record.image.removeprefix(f"{registry}/")
    repository, _, tag = name.rpartition(":")
    return repository if repository and tag and "/" not in tag and name != record.image else record.component


def _local_image(workspace: Workspace, record: ReleaseRecord) -> tuple[str | None, str | None]:
    """What is wrong with the record's image in the local registry (None: nothing), and the digest the
    registry holds under its tag (None: no image there; ``UNKNOWN``: damaged, so not known)."""
    from orbit_ops.backends.local.builder import LocalBuilder
    from orbit_ops.backends.local.oci import verify_image

    layout = LocalBuilder(workspace.config.state_dir).layout(record.component)
    try:
        verified = verify_image(layout, image_tag(record.version))
    except NotFoundError:
        return f"image {record.image} is not in the registry any more", None
    except BackendError as exc:
        return f"image {record.image} is damaged: {exc}", UNKNOWN
    if verified.manifest_digest != record.digest:
        return f"registry has {verified.manifest_digest[:19]} under :{image_tag(record.version)}, " \
               f"record says {record.digest[:19]}", verified.manifest_digest
    return None, verified.manifest_digest
