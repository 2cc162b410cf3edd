"""Builds from immutable tags (SPEC §3.1): resolve, check the record, worktree, pack, build, record.

:func:`plan_build` is the decision (which tag, which commit, whether a record already says it was
built) and touches nothing but git's refs and the record files. :func:`build_body` is the effectful
part, run as an operation: it checks the tag out into a throwaway worktree, packs the context from
there, hands it to the builder and appends the release record only after the builder succeeded.
Every exit path, cancellation included, removes the worktree and the packed archive.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from orbit_ops.backends.base import BuildRequest, ImageBuilder
from orbit_ops.build.context import pack_context
from orbit_ops.build.worktrees import WORKTREES_DIR, add_worktree, prune_stale, remove_worktree
from orbit_ops.catalog.gitrepo import object_type, open_repo
from orbit_ops.catalog.releases import ReleaseRecord, append_record, latest_record, load_manifest, load_records
from orbit_ops.catalog.tags import ReleaseTag
from orbit_ops.config.model import ComponentSpec
from orbit_ops.errors import InputError, OrbitError, RefusedError
from orbit_ops.operations.kinds import OperationKind
from orbit_ops.operations.locks import DEFAULT_LOCK_TIMEOUT
from orbit_ops.operations.runner import OperationRunner
from orbit_ops.statedir import make_private_dir
from orbit_ops.versions import LATEST, VERSION_RULE, is_version
from orbit_ops.workspace import Workspace

T = TypeVar("T")

NO_ALL = (
    "there is no 'orbit build all': components version independently, so there is no shared version "
    "to build (ADR: shared images per release, built from immutable git tags). Build one component "
    "with 'orbit build COMPONENT[@VERSION]', or every version of a platform release with "
    "'orbit build --platform X' (reads releases/platform/vX.yaml)"
)
BUILD_STEPS = 5  # worktree, pack, build and push, record, clean up
TMP_DIR = "tmp"  # <state_dir>/tmp/<op>.tar.gz: a build's packed context, removed when it ends
# A packed context, or the temp file it is written through (see orbit_ops.fsutil.atomic_writer).
_ARCHIVE_NAME = re.compile(r"^\.?(\d{8}-\d{6}-[0-9a-f]{4})\.tar\.gz(?:\.[^/]*\.tmp)?$")


class BuildContext(Protocol):
    """What a build needs from the operation running it (see ``orbit_ops.operations.runner``)."""

    @property
    def op_id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    def log(self, text: str, child: str | None = None) -> None: ...

    def progress(self, done: int, total: int) -> None: ...


@dataclass(frozen=True)
class BuildPlan:
    """What ``orbit build`` will do, decided before anything is written."""

    component: ComponentSpec
    tag: ReleaseTag
    existing: ReleaseRecord | None
    action: Literal["build", "already-released"]

    @property
    def target(self) -> str:
        return f"{self.component.name}@{self.tag.version}"


def parse_target(text: str) -> tuple[str, str | None]:
    """Split ``COMPONENT[@VERSION]``.

    Raises:
        RefusedError: ``all`` was asked for (the ADR's reason is given).
        InputError: the version is not SemVer (nor ``latest``).
    """
    component, _, version = text.partition("@")
    if component == "all":
        raise RefusedError(NO_ALL)
    if not version:
        return component, None
    if version != LATEST and not is_version(version):
        hint = " (drop the leading 'v')" if version.startswith("v") and is_version(version[1:]) else ""
        raise InputError(f"'{version}' is not a version{hint}; {VERSION_RULE}")
    return component, version


def plan_build(workspace: Workspace, component_name: str, version: str | None, *, force: bool = False) -> BuildPlan:
    """Resolve the tag and compare it with the release records.

    Raises:
        NotFoundError: unknown component, or no such tag (nearest versions listed).
        RefusedError: a record exists for this version with another commit: the tag moved.
    """
    component = workspace.config.component(component_name)
    tag = workspace.tags().resolve(component.name, version)
    existing = latest_record(load_records(workspace.config.releases_dir, component.name), tag.version)
    if existing is not None and existing.commit != tag.commit:
        raise RefusedError(
            f"tag {tag.tag} moved since it was released: the release record says commit {existing.commit}, "
            f"the tag now points at {tag.commit}. Tags are immutable by policy; restore the tag, or release "
            "the change as a new version"
        )
    action: Literal["build", "already-released"] = "build" if existing is None or force else "already-released"
    if action == "build":
        _check_tree(workspace, component, tag)
    return BuildPlan(component=component, tag=tag, existing=existing, action=action)


def _check_tree(workspace: Workspace, component: ComponentSpec, tag: ReleaseTag) -> None:
    """Refuse before any worktree exists when the tag lacks the context folder or the Dockerfile."""
    repo = open_repo(workspace.config.platform_repo)
    wanted = {component.context.rstrip("/") or ".": "tree", component.dockerfile: "blob"}
    for path, kind in wanted.items():
        found = object_type(repo, f"{tag.commit}:{path}" if path != "." else f"{tag.commit}^{{tree}}")
        if found != kind:
            what = "build context folder" if kind == "tree" else "Dockerfile"
            key = "context" if kind == "tree" else "dockerfile"
            raise InputError(
                f"{what} '{path}' does not exist at {tag.tag} (commit {tag.commit[:12]}); "
                f"check components.{component.name}.{key} in {workspace.config.config_path.name}"
            )


def plan_platform(workspace: Workspace, platform_version: str) -> list[BuildPlan]:
    """A plan per component version listed in ``releases/platform/v<X>.yaml``.

    Raises:
        NotFoundError: no such manifest, or a listed version has no tag.
        ConfigError: the manifest breaks a rule.
        RefusedError: a listed tag moved since it was released.
    """
    manifest = load_manifest(workspace.config.releases_dir, platform_version, workspace.config.components)
    return [plan_build(workspace, name, version) for name, version in manifest.components.items()]


def result_json(
    plan: BuildPlan, built: ReleaseRecord | None, *, existing: ReleaseRecord | None = None
) -> dict[str, Any]:
    """The JSON of a build result: the release record plus ``status`` (SPEC §6.1).

    ``built`` is the record this build appended; without one, the record that already existed is shown.
    """
    chosen = built or existing or plan.existing
    body: dict[str, Any] = chosen.to_json() if chosen else {
        "component": plan.component.name, "version": plan.tag.version, "tag": plan.tag.tag, "commit": plan.tag.commit,
    }
    body["status"] = "built" if built is not None else "already-released"
    return body


async def build_body(
    workspace: Workspace,
    plan: BuildPlan,
    builder: ImageBuilder,
    ctx: BuildContext,
    *,
    is_live: Callable[[str], bool],
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
) -> dict[str, Any]:
    """Carry out ``plan`` as the body of an operation; returns the result JSON.

    Raises:
        InputError: the context folder or Dockerfile does not exist at that tag.
        RefusedError: the tag moved while the build waited for the component's lock.
        LockTimeoutError: another build of the component held its lock for over ``lock_timeout`` seconds.
        BuildError / BackendError / GitError: a step failed; nothing was recorded.
    """
    config = workspace.config
    name, tag = plan.component.name, plan.tag
    if plan.action == "already-released":
        assert plan.existing is not None
        ctx.log(f"{tag.tag} was already released from commit {tag.commit[:12]} on {plan.existing.built_at} "
                f"({plan.existing.digest}); nothing to do (use --force to rebuild)")
        return result_json(plan, None)

    async with workspace.locks().hold(f"build-{name}", what=f"the build of {name}", on_wait=ctx.log,
                                      timeout=lock_timeout, op_id=ctx.op_id, kind=ctx.kind) as lock:
        # The other build may have released this very version while we waited.
        current = latest_record(load_records(config.releases_dir, name), tag.version)
        if current is not None and plan.existing is None:
            if current.commit != tag.commit:
                raise RefusedError(f"tag {tag.tag} was released meanwhile from another commit ({current.commit})")
            ctx.log(f"{tag.tag} was released meanwhile by another build ({current.digest}); nothing to do")
            return result_json(plan, None, existing=current)
        repo = await asyncio.to_thread(open_repo, config.platform_repo)
        worktrees = config.state_dir / WORKTREES_DIR
        stale = await asyncio.to_thread(prune_stale, repo, worktrees, is_live)
        if stale:
            ctx.log(f"removed {len(stale)} stale worktree(s) left by interrupted builds: {', '.join(stale)}")
        tmp = config.state_dir / TMP_DIR
        leftovers = await asyncio.to_thread(prune_stale_archives, tmp, is_live)
        if leftovers:
            ctx.log(f"removed {len(leftovers)} build context archive(s) left by interrupted builds: "
                    f"{', '.join(leftovers)}")
        folder = worktrees / ctx.op_id
        archive = tmp / f"{ctx.op_id}.tar.gz"
        try:
            ctx.log(f"{tag.tag} → commit {tag.commit} ({'annotated' if tag.annotated else 'lightweight'} tag)")
            await _thread(add_worktree, repo, folder, tag.commit)
            ctx.log(f"checked out {tag.commit[:12]} into a throwaway worktree {_rel(folder, config.root)}")
            ctx.progress(1, BUILD_STEPS)
            context_dir = folder / plan.component.context
            dockerfile = folder / plan.component.dockerfile
            if not context_dir.is_dir():
                raise InputError(f"build context '{plan.component.context}' does not exist at {tag.tag} "
                                 f"(components.{name}.context in {config.config_path.name})")
            if not dockerfile.is_file():
                raise InputError(f"Dockerfile '{plan.component.dockerfile}' does not exist at {tag.tag} "
                                 f"(components.{name} in {config.config_path.name})")
            make_private_dir(archive.parent)
            packed = await _thread(pack_context, context_dir, dockerfile, archive)
            ctx.log("preflight: " + packed.preflight_line(folder))
            ctx.progress(2, BUILD_STEPS)
            built = await builder.build(
                BuildRequest(
                    component=name,
                    version=tag.version,
                    tag=tag.tag,
                    commit=tag.commit,
                    context=packed,
                    dockerfile=dockerfile,
                    source=_source(config.platform_repo),
                    run_name=ctx.op_id,
                ),
                ctx.log,
            )
            ctx.progress(3, BUILD_STEPS)
            record = ReleaseRecord(
                component=name,
                version=tag.version,
                tag=tag.tag,
                commit=tag.commit,
                image=built.image,
                digest=built.digest,
                registry=built.registry,
                run_id=built.run_id,
                built_at=datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
                builder=builder.name,
            )
            await lock.ensure()  # the fence: no record is written under a lease that was lost
            path = await asyncio.to_thread(append_record, config.releases_dir, record)
            ctx.log(f"release record appended to {_rel(path, config.root)}")
            ctx.progress(4, BUILD_STEPS)
        finally:
            await asyncio.shield(asyncio.to_thread(_clean, repo, folder, archive))
            ctx.log("worktree removed")
        ctx.progress(BUILD_STEPS, BUILD_STEPS)
        return result_json(plan, record)


def _clean(repo: Any, folder: Path, archive: Path) -> None:
    remove_worktree(repo, folder)
    archive.unlink(missing_ok=True)


def prune_stale_archives(tmp: Path, is_live: Callable[[str], bool]) -> list[str]:
    """Remove the packed contexts under ``tmp`` whose build is no longer running; returns their names.

    A build removes its archive on every exit it lives to see; one killed outright (SIGKILL, power
    loss) leaves ``<op>.tar.gz``, or the ``.<op>.tar.gz.*.tmp`` it was still writing, for the next
    build to find. Only files named after an operation are touched, and never a live one's.
    """
    removed: list[str] = []
    try:
        entries = sorted(tmp.iterdir())
    except OSError:
        return removed  # no folder yet (or unreadable: the build's own writes will say so)
    for entry in entries:
        match = _ARCHIVE_NAME.match(entry.name)
        if match is None or is_live(match.group(1)):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file() or entry.is_symlink():
                entry.unlink()
                removed.append(entry.name)
    return removed


async def _thread(func: Callable[..., T], *args: Any) -> T:
    """Run blocking ``func`` in a thread; if cancelled, let it finish before cleanup starts.

    A cancelled ``to_thread`` leaves its thread running; removing the worktree under a thread that is
    still packing it would race, so cancellation waits for the thread and is then re-raised.
    """
    task = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await task
        raise


def _source(repo: Path) -> str:
    try:
        origin = open_repo(repo).remotes.origin.url
        return str(origin).split("?", 1)[0]
    except (AttributeError, ValueError):
        return repo.as_uri()


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def start_build(workspace: Workspace, plan: BuildPlan, builder: ImageBuilder | None = None, *,
                lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> OperationRunner:
    """Record a build operation for ``plan``; iterate ``.events()`` of the result to run it.

    ``lock_timeout`` bounds the wait for another build of the same component (seconds; None: no bound).

    Raises:
        BackendError: the operation store cannot be written.
    """
    store = workspace.operations()
    chosen = builder or workspace.builder()
    # A build reads no solution, but its log may quote a value one of them keeps in a secret-named variable
    # (the same password in a build script): loading them registers those values, so the log masks them too.
    with contextlib.suppress(OrbitError):
        workspace.solutions()

    async def body(ctx: Any) -> dict[str, Any]:
        return await build_body(workspace, plan, chosen, ctx, is_live=workspace.operation_is_live,
                                lock_timeout=lock_timeout)

    return OperationRunner(store, OperationKind.BUILD, plan.target, body, total=BUILD_STEPS)
