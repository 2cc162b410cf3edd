"""A waved roll's layout on disk (``.orbit/rolls/<op>.json``) and the operator's stop request beside it
(``<op>.stop``): what ``orbit roll --resume`` continues from, and what the console's roll view reads
(decisions 0059, 0061).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orbit_ops.errors import InputError, NotFoundError
from orbit_ops.fleet.roll import RollPlan
from orbit_ops.fleet.waves import Wave, WaveSettings, check_settings, wave_child
from orbit_ops.fsutil import atomic_write_text
from orbit_ops.operations.kinds import MemberState
from orbit_ops.operations.records import OperationRecord
from orbit_ops.statedir import make_private_dir
from orbit_ops.workspace import Workspace


def layout_path(workspace: Workspace, op_id: str) -> Path:
    return workspace.config.state_dir / "rolls" / f"{op_id}.json"


def save_layout(workspace: Workspace, op_id: str, plan: RollPlan, settings: WaveSettings,
                resumed_from: str | None, done: Sequence[int]) -> None:
    """What ``--resume`` needs to continue this roll: the component, the version, the layout and its settings,
    and the waves done before it (by the rolls it resumes), which it will not run again.

    Written when the operation is recorded, before its body runs: a roll killed at any point of its body can be
    resumed.
    """
    folder = make_private_dir(layout_path(workspace, op_id).parent)
    body = {"op_id": op_id, "component": plan.component, "version": plan.version, "resumed_from": resumed_from,
            "done": sorted(done), **settings.to_json()}
    atomic_write_text(folder / f"{op_id}.json", json.dumps(body, indent=2) + "\n", permissions=0o600)


def stop_path(workspace: Workspace, op_id: str) -> Path:
    return workspace.config.state_dir / "rolls" / f"{op_id}.stop"


def stop_requested(workspace: Workspace, op_id: str) -> bool:
    """Whether the operator asked waved roll ``op_id`` to stop after its current wave."""
    return stop_path(workspace, op_id).exists()


def request_stop(workspace: Workspace, ref: str) -> OperationRecord:
    """Ask the waved roll ``ref`` (a unique prefix will do) to stop after its current wave, from any process.

    The roll checks between waves: the wave running finishes, its soak included; no later wave starts (their
    solutions end ``skipped``), and the operation ends ``cancelled``, resumable with ``orbit roll --resume``.

    Raises:
        NotFoundError: no such operation, or it is not a roll in waves.
        RefusedError: it has already finished.
    """
    from orbit_ops.errors import RefusedError

    record = workspace.operations().get(ref)
    if not layout_path(workspace, record.id).exists():
        raise NotFoundError(f"operation {record.id} ({record.kind} {record.target}) is not a roll in waves: "
                            f"there is no wave to stop after (orbit cancel {record.id} stops it now)")
    if record.finished:
        raise RefusedError(f"operation {record.id} already {record.state}; there is nothing to stop")
    path = stop_path(workspace, record.id)
    atomic_write_text(path, json.dumps({"op_id": record.id, "requested_at": datetime.now(UTC).isoformat()}) + "\n",
                      permissions=0o600)
    return record


def is_waved_roll(workspace: Workspace, op_id: str) -> bool:
    """Whether operation ``op_id`` (a full id) is a roll in waves (it wrote its layout)."""
    return layout_path(workspace, op_id).exists()


@dataclass(frozen=True)
class SavedLayout:
    """A waved roll's layout file: what it rolls and how, and the waves done before it by the rolls it resumes."""

    component: str
    version: str
    settings: WaveSettings
    done_before: tuple[int, ...]
    resumed_from: str | None


def saved_layout(workspace: Workspace, op_id: str) -> SavedLayout:
    """The layout file of waved roll ``op_id`` (a full id).

    Raises:
        NotFoundError: it has none (not a roll in waves).
        InputError: the file cannot be read.
    """
    try:
        body = json.loads(layout_path(workspace, op_id).read_text())
        waves = tuple(Wave(int(w["index"]), str(w["selector"]), tuple(w["solutions"])) for w in body["waves"])
        settings = WaveSettings(waves, float(body["soak"]), check_settings(0, str(body["on_failure"]), 0),
                                int(body["max_unhealthy"]))
        return SavedLayout(str(body["component"]), str(body["version"]), settings,
                           tuple(int(index) for index in body.get("done", [])), body.get("resumed_from"))
    except FileNotFoundError:
        raise NotFoundError(f"operation {op_id} is not a roll in waves (no layout in "
                            f"{layout_path(workspace, op_id).parent})") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{layout_path(workspace, op_id)}: cannot read the roll's layout: {exc}") from None


@dataclass(frozen=True)
class Resumable:
    """A waved roll to continue: what it rolled, its layout and settings, and the waves that succeeded."""

    record: OperationRecord
    component: str
    version: str
    settings: WaveSettings
    done: tuple[int, ...]


def resumable(workspace: Workspace, op_id: str) -> Resumable:
    """The waved roll ``op_id`` (a unique prefix will do), to continue from its first wave that did not succeed.

    Raises:
        NotFoundError: no such operation, or it is not a roll in waves.
        InputError: it is still running, or every wave succeeded.
    """
    record = workspace.operations().get(op_id)
    try:
        layout = saved_layout(workspace, record.id)
    except NotFoundError:
        earlier = re.search(r"\(resuming (\S+)\)", record.target)
        hint = (f" (it was killed before it began: resume {earlier[1]} instead)" if earlier and not record.children
                else "")
        raise NotFoundError(f"operation {record.id} is not a roll in waves (no layout in "
                            f"{layout_path(workspace, record.id).parent}); nothing to resume{hint}") from None
    for later in sorted(layout_path(workspace, record.id).parent.glob("*.json")):
        try:
            resumed_from = json.loads(later.read_text()).get("resumed_from")
        except (OSError, ValueError):
            continue
        if resumed_from == record.id:
            raise InputError(f"operation {record.id} was resumed by operation {later.stem}; resume that one instead")
    if not record.finished:
        raise InputError(f"operation {record.id} is still {record.state}; resume it once it ended "
                         f"(or orbit cancel {record.id})")
    waves = layout.settings.waves
    done = tuple(wave.index for wave in waves if wave.index in layout.done_before
                 or ((state := record.children.get(wave_child(wave.index))) and state.state == MemberState.SUCCEEDED))
    if len(done) == len(waves):
        raise InputError(f"every wave of operation {record.id} succeeded; nothing to resume")
    return Resumable(record, layout.component, layout.version, layout.settings, done)
