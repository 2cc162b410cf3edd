"""Saved plans (SPEC §3.7, as Terraform has them): ``orbit plan … --out FILE`` then ``orbit apply FILE``.

A saved plan holds, per solution, the actions planned and what they were planned from: the pins, the desired
state and the live state of each resource. ``orbit apply`` plans again and applies only when nothing of that
changed; otherwise it refuses (exit 2, nothing written) and names every solution whose pins, desired state or
live resources moved, so what the operator reviewed is exactly what is written.

The file is JSON an operator can read (ids, pins, actions with their changes, which already hide secret values),
and it stores no secret: the desired and live states are kept as keyed digests (HMAC-SHA256 under a key made once
in the workspace's private ``.orbit/``), so a secret value cannot be recovered from a plan file by guessing and
hashing candidates. A plan therefore applies in the workspace that made it (decision 0058).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orbit_ops.config.load import load_solution
from orbit_ops.config.model import SolutionSpec
from orbit_ops.errors import ConfigError, InputError, OrbitError, RefusedError
from orbit_ops.fleet.drift import LiveSnapshot, desired_for
from orbit_ops.fleet.entries import SweepPlan
from orbit_ops.fleet.planned import PlannedSolution
from orbit_ops.fleet.provision import read_live
from orbit_ops.fleet.resources import DesiredSolution, Resource
from orbit_ops.fleet.roll import RollPlan, plan_roll
from orbit_ops.fleet.sweeps import plan_against
from orbit_ops.fleet.waves import Wave, WaveSettings, check_settings
from orbit_ops.fsutil import atomic_write_text
from orbit_ops.statedir import make_private_dir
from orbit_ops.workspace import Workspace

FORMAT = "orbit-plan"
VERSION = 1
KEY_FILE = "plan-key"


def _header(workspace: Workspace, kind: str) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "kind": kind, "workspace": str(workspace.config.root),
            "backend": workspace.config.backend, "created_at": datetime.now(UTC).isoformat(timespec="seconds")}


def save_plan(workspace: Workspace, plan: SweepPlan, path: Path) -> None:
    """Write ``plan`` to ``path`` (atomically: a reader never sees half a plan).

    Raises:
        OSError: the file (or the workspace's plan key) cannot be written.
    """
    key = _key(workspace)
    body = {
        **_header(workspace, "provision"),
        "everything": plan.everything,
        "writes": plan.writes,
        "solutions": [_solution_json(key, planned) for planned in plan.solutions],
        "invalid": [{"id": entry.id, "error": str(entry.error)} for entry in plan.invalid],
    }
    atomic_write_text(path, json.dumps(body, indent=2) + "\n", permissions=0o600)


def _solution_json(key: bytes, planned: PlannedSolution) -> dict[str, Any]:
    body: dict[str, Any] = {"id": planned.id, "file": str(planned.spec.path), "pins": dict(planned.spec.images)}
    if planned.plan is None or planned.desired is None or planned.live is None:
        return {**body, "state": "refused", "refused": planned.refused}
    return {**body, "state": "planned", "actions": [action.to_json() for action in planned.plan.actions],
            "desired": _digest(key, planned.desired), "live": _live_digests(key, planned.desired, planned.live)}


def _live_digests(key: bytes, desired: DesiredSolution, live: LiveSnapshot) -> dict[str, str | None]:
    """Each resource of ``desired`` (``app ca-x-agent``) with the digest of its live state, None when absent."""
    return {f"{resource.kind} {resource.name}": _digest(key, found) if (found := live.get(resource)) else None
            for resource in desired.resources()}


def _digest(key: bytes, value: DesiredSolution | Resource) -> str:
    text = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"))
    return "hmac-sha256:" + hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _canonical(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _canonical(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(name): _canonical(item) for name, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [_canonical(item) for item in value]
    return value


def _key(workspace: Workspace) -> bytes:
    """The workspace's plan key, made once (0600, in the private state folder); two processes agree on one."""
    folder = make_private_dir(workspace.config.state_dir)
    path = folder / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    draft = folder / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(32))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(draft, path)  # fails if another process made it first: then theirs is the key
    except FileExistsError:
        pass
    finally:
        os.unlink(draft)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) != 32:
        raise ConfigError(path, f"the plan key holds {len(key)} bytes, not 32", line=1,
                          rule="remove it to make a new one (plans saved before then will not apply)")
    return key


# -- applying ------------------------------------------------------------------------------------------


def read_plan(workspace: Workspace, path: Path) -> dict[str, Any]:
    """The saved plan at ``path``, checked to be one made by this workspace.

    Raises:
        InputError: it cannot be read, is not an Orbit plan of this version, or was made for another workspace.
    """
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the plan: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not an Orbit plan (not JSON: {exc})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise InputError(f"{path}: not an Orbit plan (no \"format\": \"{FORMAT}\"); make one with orbit plan --out")
    if body.get("version") != VERSION:
        raise InputError(f"{path}: plan format version {body.get('version')!r}; this Orbit applies version {VERSION}")
    if body.get("workspace") != str(workspace.config.root) or body.get("backend") != workspace.config.backend:
        raise InputError(f"{path}: made for workspace {body.get('workspace')} ({body.get('backend')} backend), not "
                         f"{workspace.config.root} ({workspace.config.backend}); plan again here")
    if not isinstance(body.get("solutions"), list) or body.get("kind", "provision") not in ("provision", "roll"):
        raise InputError(f"{path}: not an Orbit plan (no solutions list, or a kind other than provision and roll)")
    return body


async def check_plan(workspace: Workspace, path: Path, body: Mapping[str, Any]) -> SweepPlan:
    """The saved provision plan (``body``, read by :func:`read_plan`) as a plan to start, when everything it was
    made from still holds.

    Raises:
        RefusedError: a solution's pins, desired state or live resources changed since; every one is named.
        BackendError: the platform could not be listed.
    """
    key = _key(workspace)
    saved: list[dict[str, Any]] = body["solutions"]
    specs: list[SolutionSpec] = []
    changed: list[str] = []
    for entry in saved:
        try:
            specs.append(load_solution(workspace.config, Path(str(entry["file"]))))
        except (KeyError, TypeError):
            raise InputError(f"{path}: not an Orbit plan (a solution without its file)") from None
        except OrbitError as exc:
            changed.append(f"{entry.get('id')}: its file cannot be read now: {exc}")
    if changed:
        raise _stale(path, changed)
    planned = plan_against(workspace, specs, await read_live(workspace.platform(), workspace.platform()))
    for entry, now in zip(saved, planned, strict=True):
        changed += [f"{now.id}: {change}" for change in _changes(key, entry, now)]
    if changed:
        raise _stale(path, changed)
    return SweepPlan(tuple(planned), (), bool(body.get("everything")))


def _changes(key: bytes, entry: Mapping[str, Any], now: PlannedSolution) -> list[str]:
    pins: Mapping[str, str] = entry.get("pins") or {}
    moved = [f"{name} {pins.get(name)} → {value}" for name, value in now.spec.images.items() if pins.get(name) != value]
    if moved:
        return [f"pins changed since the plan: {', '.join(moved)}"]
    if entry.get("state") == "refused" or now.plan is None or now.desired is None or now.live is None:
        if entry.get("state") == "refused" and now.plan is None:
            return []
        return [f"it was {'refused' if entry.get('state') == 'refused' else 'planned'} then and is "
                f"{'refused' if now.plan is None else 'planned'} now"]
    if entry.get("desired") != _digest(key, now.desired):
        return ["its desired state changed since the plan (its file, or the release its pins resolve to)"]
    then: Mapping[str, str | None] = entry.get("live") or {}
    changes = []
    for name, digest in _live_digests(key, now.desired, now.live).items():
        if name not in then:
            changes.append(f"{name} is new to the plan")
        elif then[name] != digest:
            how = "appeared" if then[name] is None else "disappeared" if digest is None else "changed"
            changes.append(f"{name} {how} on the platform since the plan")
    return changes


# -- rolls -------------------------------------------------------------------------------------------------


async def save_roll_plan(workspace: Workspace, plan: RollPlan, settings: WaveSettings | None, path: Path) -> None:
    """Write the roll ``plan`` (and its wave layout) to ``path``: each pin change with its file's digest, and the
    digests of the live resources of every solution it rolls.

    Raises:
        OSError: the file (or the workspace's plan key) cannot be written.
        BackendError: the platform could not be listed.
    """
    key = _key(workspace)
    live = await read_live(workspace.platform(), workspace.platform())
    releases, target = workspace.release_index(), workspace.target()
    solutions = []
    for solution_id, spec in plan.specs.items():
        desired = desired_for(spec, target, releases)
        solutions.append({"id": solution_id, "file": str(spec.path), "file_digest": _file_digest(key, spec.path),
                          "live": _live_digests(key, desired, live) if desired is not None else {}})
    body = {**_header(workspace, "roll"), "component": plan.component, "roll_version": plan.version,
            "changes": [change.to_json() for change in plan.changes], "unchanged": list(plan.unchanged),
            "solutions": solutions, "waves": settings.to_json() if settings is not None else None}
    atomic_write_text(path, json.dumps(body, indent=2) + "\n", permissions=0o600)


def _file_digest(key: bytes, path: Path) -> str:
    return "hmac-sha256:" + hmac.new(key, path.read_bytes(), hashlib.sha256).hexdigest()


async def check_roll_plan(workspace: Workspace, path: Path,
                          body: Mapping[str, Any]) -> tuple[RollPlan, WaveSettings | None]:
    """The saved roll plan (``body``, read by :func:`read_plan`) as a roll to start, when every file it rolls is
    as it was and every solution's live resources too.

    Raises:
        RefusedError: a file or a live resource changed since; every one is named.
        BackendError: the platform could not be listed.
    """
    key = _key(workspace)
    changed: list[str] = []
    specs: list[SolutionSpec] = []
    for entry in body["solutions"]:
        file = Path(str(entry.get("file")))
        try:
            same = _file_digest(key, file) == entry.get("file_digest")
            spec = load_solution(workspace.config, file)
        except (OSError, OrbitError) as exc:
            changed.append(f"{entry.get('id')}: its file cannot be read now: {exc}")
            continue
        if not same:
            changed.append(f"{spec.id}: its file changed since the plan ({file.name})")
        specs.append(spec)
    if not changed:
        live = await read_live(workspace.platform(), workspace.platform())
        releases, target = workspace.release_index(), workspace.target()
        for entry, spec in zip(body["solutions"], specs, strict=True):
            desired = desired_for(spec, target, releases)
            now = _live_digests(key, desired, live) if desired is not None else {}
            then: Mapping[str, str | None] = entry.get("live") or {}
            changed += [f"{spec.id}: {name} changed on the platform since the plan"
                        for name in sorted(set(now) | set(then)) if now.get(name) != then.get(name)]
    if changed:
        raise _stale(path, changed)
    plan = plan_roll(workspace, str(body["component"]), str(body["roll_version"]), specs)
    waves = body.get("waves")
    if not waves:
        return plan, None
    layout = tuple(Wave(int(w["index"]), str(w["selector"]), tuple(w["solutions"])) for w in waves["waves"])
    return plan, WaveSettings(layout, float(waves["soak"]), check_settings(0, str(waves["on_failure"]), 0),
                              int(waves["max_unhealthy"]))


def _stale(path: Path, changes: Sequence[str]) -> RefusedError:
    return RefusedError(f"the plan in {path} no longer holds; nothing was written:\n  " + "\n  ".join(changes)
                        + "\nplan again (orbit plan … --out FILE), review it, and apply the new one")
