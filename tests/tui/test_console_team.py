"""The Operations screen with a shared state store: the team's operations, with who started each and from where.

Azurite is started here (the Azure tests' fixtures live with them); machine A publishes an operation through the
runner's mirror, and the console of machine B (the fixed workspace, with ``state: azure-blob``) lists it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import SIZE
from console_helpers import settle, table_rows
from emulators.azurite import ACCOUNT, ACCOUNT_KEY, Azurite, AzuriteMissingError, start_azurite

from orbit_ops.backends.azure.state_blobs import StateContainer
from orbit_ops.backends.azure.state_mirror import BlobOperationMirror
from orbit_ops.config.state import StateSettings
from orbit_ops.operations.kinds import OperationKind
from orbit_ops.operations.runner import OperationContext, OperationRunner
from orbit_ops.operations.store import OperationStore
from orbit_tui.app import OrbitApp
from orbit_tui.screens.log import LogScreen
from orbit_tui.screens.operations import OperationsScreen
from orbit_tui.widgets import OperationLog


def shared_state(fixed_copy: Path, azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> StateSettings:
    """Machine B (the fixed workspace) and a machine A share a fresh container of the Azurite account."""
    container = f"state-{secrets.token_hex(6)}"
    monkeypatch.setenv("ORBIT_STATE_CONNECTION_STRING", f"AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY}")
    config = fixed_copy / "orbit.yaml"
    config.write_text(config.read_text() + f"state:\n  store: azure-blob\n  account_url: {azurite.blob_endpoint}\n"
                                           f"  container: {container}\n  lease_seconds: 15\n")
    return StateSettings(store="azure-blob", account_url=azurite.blob_endpoint, container=container,
                         lease_seconds=15)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    try:
        running = start_azurite(tmp_path_factory.mktemp("azurite"))
    except AzuriteMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield running
    running.stop()


async def test_the_operations_screen_lists_the_teams_operations_with_user_and_host(
        fixed_copy: Path, tmp_path: Path, azurite: Azurite, make_app: Callable[..., OrbitApp],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGNAME", "frank")
    settings = shared_state(fixed_copy, azurite, monkeypatch)
    elsewhere = OperationStore(tmp_path / "machine-a" / ".orbit")
    elsewhere.mirror = BlobOperationMirror(StateContainer(settings))

    async def body(ctx: OperationContext) -> None:
        ctx.log("built elsewhere")

    runner = OperationRunner(elsewhere, OperationKind.BUILD, "mc@9.9.9", body, total=1)
    async for _ in runner.events():
        pass
    local_ids = [record.id for record in OperationStore(fixed_copy / ".orbit").list()]
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        assert isinstance(app.screen, OperationsScreen)
        rows = {row[0]: row for row in table_rows(app, "#operations")}
        assert set(rows) == {runner.op_id, *local_ids}  # this machine's and the team's
        remote = rows[runner.op_id]
        assert remote[1:4] == ["build", "mc@9.9.9", "succeeded"] and remote[-2] == "frank"
        assert remote[-1] == elsewhere.get(runner.op_id).host
        assert all(rows[op_id][-2] == "" for op_id in local_ids)  # never published: no user recorded


async def test_the_log_view_follows_another_machines_operation_live(
        fixed_copy: Path, tmp_path: Path, azurite: Azurite, make_app: Callable[..., OrbitApp],
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = shared_state(fixed_copy, azurite, monkeypatch)
    elsewhere = OperationStore(tmp_path / "machine-a" / ".orbit")
    elsewhere.mirror = BlobOperationMirror(StateContainer(settings))
    go_on = asyncio.Event()

    async def body(ctx: OperationContext) -> None:
        for n in range(3):
            ctx.log(f"step {n} on machine A")
        await go_on.wait()
        for n in range(3, 6):
            ctx.log(f"step {n} on machine A")

    runner = OperationRunner(elsewhere, OperationKind.BUILD, "mc@9.9.9", body, total=1)

    async def run_on_a() -> None:
        async for _ in runner.events():
            pass

    machine_a = asyncio.create_task(run_on_a())
    app = make_app(fixed_copy)

    def shown() -> list[str]:
        return [line[9:] for line in app.screen.query_one(OperationLog).lines]

    async def until(check: Callable[[], bool]) -> None:
        for _ in range(200):
            if check():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"not seen in time; the log shows {shown()}")

    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        await until(lambda: runner.op_id in {row[0] for row in table_rows(app, "#operations")})
        rows = [row[0] for row in table_rows(app, "#operations")]
        await pilot.press(*["down"] * rows.index(runner.op_id), "enter")
        await until(lambda: isinstance(app.screen, LogScreen) and "step 2 on machine A" in shown())
        assert isinstance(app.screen, LogScreen) and app.screen.state == "running"
        go_on.set()
        await until(lambda: app.screen.state == "succeeded")
        await until(lambda: any("succeeded" in line for line in shown()))
        lines = shown()
        steps = [line for line in lines if line.startswith("step ")]
        assert steps == [f"step {n} on machine A" for n in range(6)]  # in order, none twice
    await machine_a


async def test_c_in_the_log_view_cancels_another_machines_operation(
        fixed_copy: Path, tmp_path: Path, azurite: Azurite, make_app: Callable[..., OrbitApp],
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = shared_state(fixed_copy, azurite, monkeypatch)
    elsewhere = OperationStore(tmp_path / "machine-a" / ".orbit")
    elsewhere.mirror = BlobOperationMirror(StateContainer(settings))

    async def body(ctx: OperationContext) -> None:
        ctx.log("waiting for a cancel")
        await asyncio.sleep(120)

    runner = OperationRunner(elsewhere, OperationKind.BUILD, "mc@9.9.9", body, total=1)

    async def run_on_a() -> None:
        async for _ in runner.events():
            pass

    machine_a = asyncio.create_task(run_on_a())
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for _ in range(100):
            if elsewhere.get(runner.op_id).state == "running":
                break
            await asyncio.sleep(0.05)
        app.open_log(runner.op_id)
        for _ in range(100):
            if isinstance(app.screen, LogScreen) and app.screen.state == "running":
                break
            await asyncio.sleep(0.05)
        await pilot.press("c")
        await settle(pilot, skip=("log",))
        await pilot.click("#confirm")  # Cancel operation
        await asyncio.wait_for(machine_a, 30)  # machine A saw the request through the shared store and stopped
        assert elsewhere.get(runner.op_id).state == "cancelled"
