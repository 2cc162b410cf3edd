"""A crash loop on the shared store: 22 holders SIGKILLed at random moments, each lock taken over by another
machine within one lease period, each killed operation ``interrupted`` from both machines.

A lease frees only when its period ends (15 s on Azurite, its minimum), so the kills run in two rounds of 11
side by side, one scope and one operation each, rather than one after another (22 × 15 s).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from state_fixtures import LEASE_SECONDS
from support import report

from orbit_ops.backends.azure.state_blobs import StateContainer
from orbit_ops.backends.azure.state_locks import BlobLockStore
from orbit_ops.backends.azure.state_operations import BlobSharedOperations
from orbit_ops.operations.store import OperationStore

if TYPE_CHECKING:
    from conftest import StateStoreFixture  # tests/azure/conftest.py

ROUNDS, PER_ROUND = 2, 11
OWNER = """
import asyncio, sys
from orbit_ops.backends.azure.state_blobs import StateContainer
from orbit_ops.backends.azure.state_locks import BlobLockStore
from orbit_ops.backends.azure.state_mirror import BlobOperationMirror
from orbit_ops.config.state import StateSettings
from orbit_ops.operations.kinds import MemberState, OperationKind
from orbit_ops.operations.runner import OperationRunner
from orbit_ops.operations.store import OperationStore

settings = StateSettings(store="azure-blob", account_url=sys.argv[1], container=sys.argv[2], lease_seconds=15)
container = StateContainer(settings)
scope = sys.argv[4]

async def body(ctx):
    async with BlobLockStore(container).hold(scope, what=scope, op_id=ctx.op_id, kind="provision") as lock:
        ctx.child(scope, MemberState.RUNNING)
        print(ctx.op_id, flush=True)
        for index in range(10**6):
            await lock.ensure()
            ctx.log(f"write {index}", child=scope)
            await asyncio.sleep(0.05)

async def main():
    store = OperationStore(sys.argv[3])
    store.mirror = BlobOperationMirror(container)
    async for _ in OperationRunner(store, OperationKind.PROVISION, scope, body, total=1).events():
        pass

asyncio.run(main())
"""


def test_holders_killed_at_random_moments_free_their_locks_and_read_interrupted_everywhere(
        tmp_path: Path, state_store: StateStoreFixture) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "LOGNAME": "ci"}
    chance = random.Random(16)
    takeovers: list[float] = []
    for round_index in range(ROUNDS):
        scopes = [f"solution-r{round_index}-{index:02d}" for index in range(PER_ROUND)]
        owners = [subprocess.Popen([sys.executable, "-c", OWNER, state_store.settings.account_url or "",
                                    state_store.container, str(tmp_path / scope / ".orbit"), scope],
                                   stdout=subprocess.PIPE, env=env, start_new_session=True) for scope in scopes]
        op_ids = []
        for owner in owners:
            assert owner.stdout is not None
            op_ids.append(owner.stdout.readline().decode().strip())
        reader = BlobSharedOperations(StateContainer(state_store.settings))
        for scope, op_id in zip(scopes, op_ids, strict=True):  # each is running its member, as the team sees it
            deadline = time.monotonic() + 30
            while ((document := asyncio.run(reader.record(op_id))) is None
                   or document["children"].get(scope, {}).get("state") != "running"):
                assert time.monotonic() < deadline, f"{op_id} never showed its member running"
                time.sleep(0.05)
        killed_at: list[float] = []
        for owner in owners:  # each at its own moment of its writes
            time.sleep(chance.uniform(0, 0.4))
            os.killpg(owner.pid, signal.SIGKILL)
            killed_at.append(time.monotonic())
        for owner in owners:
            owner.wait(timeout=10)

        async def take_over(scope: str, at: float) -> float:
            async with BlobLockStore(StateContainer(state_store.settings)).hold(scope, what=scope,
                                                                                 op_id=f"takeover-{scope}"):
                return time.monotonic() - at

        async def all_of_them(pairs: list[tuple[str, float]]) -> list[float]:
            return list(await asyncio.gather(*(take_over(scope, at) for scope, at in pairs)))

        took = asyncio.run(all_of_them(list(zip(scopes, killed_at, strict=True))))
        takeovers.extend(took)
        assert max(took) < LEASE_SECONDS + 5, took
        for scope, op_id in zip(scopes, op_ids, strict=True):
            deadline = time.monotonic() + LEASE_SECONDS + 5
            while (document := asyncio.run(reader.record(op_id))) is not None and document["state"] == "running":
                assert time.monotonic() < deadline, f"{op_id} still running"
                time.sleep(0.5)
            assert document is not None and document["state"] == "interrupted", document
            assert document["children"][scope]["state"] == "interrupted"
            with OperationStore(tmp_path / scope / ".orbit") as local:  # the killed machine's own view
                assert local.get(op_id).state == "interrupted"
            events = asyncio.run(reader.read_events(op_id))
            assert [type(e).__name__ for e in events].count("OperationFinished") == 1
            writes = [int(e.text.split()[1]) for e in events if type(e).__name__ == "LogLine"]
            assert writes == list(range(len(writes)))  # in order, none twice, none lost before the kill
    assert len(takeovers) == ROUNDS * PER_ROUND
    ordered = sorted(takeovers)
    report("state lease crash loop", kills=len(takeovers), lease_seconds=LEASE_SECONDS,
           takeover_median_s=round(ordered[len(ordered) // 2], 2), takeover_max_s=round(ordered[-1], 2))
