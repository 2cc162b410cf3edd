"""Checks that release records still tell the truth: the tag has not moved, the image is still there.

Records are append-only facts about a build; the world can change after them (a tag force-moved, an
image overwritten or deleted in the registry). ``orbit releases --verify`` and the console report each
such record; nothing is repaired silently.
"""

from __future__ import annotations

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

    Raises:
        GitError: the tags cannot be listed.
    """
    scan = workspace.tags()
    problems: list[RecordProblem] = []
    names = components or sorted(workspace.config.components)
    for name in names:
        newest: dict[str, ReleaseRecord] = {}
        for record in workspace.records().get(name, []):
            newest[record.version] = record  # a forced rebuild supersedes the earlier record
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
    return problems


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
