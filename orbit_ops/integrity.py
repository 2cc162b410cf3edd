"""Checks that release records still tell the truth: the tag has not moved, the image is still there.

Records are append-only facts about a build; the world can change after them (a tag force-moved, an
image overwritten or deleted in the registry). ``orbit releases --verify`` and the console report each
such record; nothing is repaired silently.

The image check asks the backend's registry: the OCI layout under ``.orbit/registry`` for ``local``,
the ACR data plane for ``azure`` (one sign-in and one manifest HEAD per record, decision 0021).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from orbit_ops.errors import BackendError, NotFoundError
from orbit_ops.releases import ReleaseRecord
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
    """Every problem found with the newest record of each released version.

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
    for name in names:
        for record in workspace.records().get(name, []):
            newest[(name, record.version)] = record  # a forced rebuild supersedes the earlier record
    registry = _acr_problems(workspace, [r for r in newest.values() if r.builder == "acr"])
    for record in newest.values():
        tag = scan.find(record.component, record.version)
        if tag is None:
            problems.append(RecordProblem(record, f"the tag {record.tag} no longer exists "
                                                  f"(record says commit {record.commit[:12]})"))
        elif tag.commit != record.commit:
            problems.append(RecordProblem(record, f"the tag moved: record {record.commit[:12]}, "
                                                  f"tag now {tag.commit[:12]}"))
        if record.builder == "local" and workspace.config.backend == "local":
            problem = _local_image_problem(workspace, record)
            if problem:
                problems.append(RecordProblem(record, problem))
        if record in registry:
            problems.append(RecordProblem(record, registry[record]))
    return problems


def _acr_problems(workspace: Workspace, records: list[ReleaseRecord]) -> dict[ReleaseRecord, str]:
    """What is wrong with each ACR-built record's image in the configured registry (records without a
    problem are absent). Records built in another registry than the configured one are reported, not read;
    so are all of them when the registry's address is not known (a custom ``arm_endpoint`` without
    ``login_server``).
    """
    settings = workspace.config.azure
    if workspace.config.backend != "azure" or settings is None or not records:
        return {}
    from orbit_ops.backends.azure_acr import AcrBuilder
    from orbit_ops.backends.azure_common import ARM_ENDPOINT

    builder = AcrBuilder(settings)
    if not settings.login_server and builder.endpoints.arm != ARM_ENDPOINT:
        # Another cloud (sovereign, Azure Stack, an emulator): <registry>.azurecr.io would be a guess, and
        # the sign-in would hand that guessed host an Azure AD token of this cloud.
        unchecked = (f"image not checked: with arm_endpoint {builder.endpoints.arm}, set azure.login_server "
                     f"to the registry's address (it is not {builder.registry})")
        return dict.fromkeys(records, unchecked)
    problems: dict[ReleaseRecord, str] = {}
    wanted: dict[ReleaseRecord, tuple[str, str]] = {}
    for record in records:
        if record.registry != builder.registry:
            problems[record] = (f"built in registry {record.registry}, not the configured {builder.registry}; "
                                "its image was not checked")
        else:
            wanted[record] = (_repository(record, builder.registry), image_tag(record.version))
    found = asyncio.run(builder.registry_digests(wanted.values()))
    for record, (repository, tag) in wanted.items():
        digest = found.get((repository, tag))
        if digest is None:
            problems[record] = f"image {record.image} is not in the registry any more"
        elif digest != record.digest:
            problems[record] = f"registry has {digest[:19]} under :{tag}, record says {record.digest[:19]}"
    return problems


def _repository(record: ReleaseRecord, registry: str) -> str:
    """The repository of the record's image (``<registry>/<repository>:<tag>``), else the component's name."""
    name = record.image.removeprefix(f"{registry}/")
    repository, _, tag = name.rpartition(":")
    return repository if repository and tag and "/" not in tag and name != record.image else record.component


def _local_image_problem(workspace: Workspace, record: ReleaseRecord) -> str | None:
    from orbit_ops.backends.local import LocalBuilder
    from orbit_ops.oci import verify_image

    layout = LocalBuilder(workspace.config.state_dir).layout(record.component)
    try:
        verified = verify_image(layout, image_tag(record.version))
    except NotFoundError:
        return f"image {record.image} is not in the registry any more"
    except BackendError as exc:
        return f"image {record.image} is damaged: {exc}"
    if verified.manifest_digest != record.digest:
        return f"registry has {verified.manifest_digest[:19]} under :{image_tag(record.version)}, " \
               f"record says {record.digest[:19]}"
    return None
