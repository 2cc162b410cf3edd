"""What the local builder tells the operator while it writes an image: each step and what it did with it.

No Docker runs, so every instruction's line says what became of it (applied to the config, recorded in
the history, provided by the context layer, skipped), the first RUN, COPY and FROM at length and later
ones briefly; then the layer, config and manifest written and the tags moved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from orbit_ops.backends.local.blobs import LayerInput
from orbit_ops.backends.local.dockerfile.model import SCRATCH, Dockerfile, Instruction
from orbit_ops.backends.local.oci import ANNOTATION_BASE_NAME


class BuildNarration:
    """The log lines of one build, sent through ``log`` as they happen."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log

    def steps(self, dockerfile: Dockerfile, build_args: Mapping[str, str] | None) -> None:
        """Log each instruction as ``Step i/n`` with what the local builder did with it."""
        chain = {stage.index for stage in dockerfile.final_chain(build_args)}
        bases = dockerfile.base_images(build_args)
        stage_of = {id(instruction): stage for stage in dockerfile.stages for instruction in stage.instructions}
        total = len(dockerfile.instructions)
        explained: set[str] = set()
        for number, instruction in enumerate(dockerfile.instructions, start=1):
            self.log(f"Step {number}/{total} : {_display(instruction)}")
            stage = stage_of.get(id(instruction))
            if stage is None:
                note = "build argument for FROM lines"
            elif stage.index not in chain:
                label = stage.name or f"#{stage.index}"
                note = f"skipped: stage {label} is not part of the final image"
            elif instruction.keyword == "FROM":
                parent = dockerfile.parent_stage(stage, build_args)
                if parent is not None:
                    note = f"continues from stage {parent.name}"
                elif bases[stage.index].lower() == SCRATCH:
                    note = "starts from scratch"
                else:
                    note = _once(
                        explained,
                        "FROM",
                        f"base image {bases[stage.index]} recorded as {ANNOTATION_BASE_NAME}, not pulled: "
                        "the local builder writes only the build-context layer",
                        f"base image {bases[stage.index]} recorded, not pulled",
                    )
            else:
                note = _note(instruction, explained)
            self.log(f" ---> {note}")

    def layer(self, layer: LayerInput) -> None:
        self.log(f"layer {layer.digest} ({layer.size} bytes, diff_id {layer.diff_id})")

    def blob(self, what: str, digest: str, size: int) -> None:
        """A config or manifest written: ``what`` names it."""
        self.log(f"{what} {digest} ({size} bytes)")

    def tagged(self, repository: str, tags: Sequence[str]) -> None:
        for tag in tags:
            self.log(f"tagged {repository}:{tag}")


def _note(instruction: Instruction, explained: set[str]) -> str:
    keyword = instruction.keyword
    if keyword == "RUN":
        return _once(
            explained,
            "RUN",
            "not executed: the local builder runs no commands; RUN is recorded in the image history",
            "recorded in history, not executed",
        )
    if keyword in ("COPY", "ADD"):
        return _once(
            explained,
            "COPY",
            "not copied file by file: the whole packed build context is the image's single layer",
            "provided by the build-context layer",
        )
    if keyword == "ARG":
        return "build argument (not stored in the image)"
    if keyword in ("HEALTHCHECK", "ONBUILD"):
        return "recorded in history; the OCI image config has no field for it"
    return "applied to the image config"


def _once(explained: set[str], key: str, first: str, later: str) -> str:
    if key in explained:
        return later
    explained.add(key)
    return first


def _display(instruction: Instruction) -> str:
    if not instruction.heredocs:
        return instruction.text
    lines = sum(doc.content.count("\n") for doc in instruction.heredocs)
    names = ", ".join(doc.name for doc in instruction.heredocs)
    return f"{instruction.text}  (heredoc {names}: {lines} lines)"
