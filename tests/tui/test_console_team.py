"""The Operations screen with a shared state store: the team's operations, with who started each and from where.

Azurite is started here (the Azure tests' fixtures live with them); machine A publishes an operation through the
runner's mirror, and the console of machine B (the fixed workspace, with ``state: azure-blob``) lists it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import SIZE
from console_helpers import settle, table_rows
from emulators.azurite import ACCOUNT, ACCOUNT_KEY, Azurite, AzuriteMissingError, start_azurite

from orbit_ops.backends.azure.state_blobs import StateContainer
from orbit_ops.backends.azure.state_operations import BlobOperationMirror
from orbit_ops.config.state import StateSettings
from orbit_ops.operations.kinds import OperationKind
from orbit_ops.operations.runner import OperationContext, OperationRunner
from orbit_ops.operations.store import OperationStore
from orbit_tui.app import OrbitApp
from orbit_tui.screens.operations import OperationsScreen


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
    container = f"state-{secrets.token_hex(6)}"
    monkeypatch.setenv("ORBIT_STATE_CONNECTION_STRING", f"AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY}")
    monkeypatch.setenv("LOGNAME", "frank")
    settings = StateSettings(store="azure-blob", account_url=azurite.blob_endpoint, container=container,
                             lease_seconds=15)
    elsewhere = OperationStore(tmp_path / "machine-a" / ".orbit")
    elsewhere.mirror = BlobOperationMirror(StateContainer(settings))

    async def body(ctx: OperationContext) -> None:
        ctx.log("built elsewhere")

    runner = OperationRunner(elsewhere, OperationKind.BUILD, "mc@9.9.9", body, total=1)
    async for _ in runner.events():
        pass
    config = fixed_copy / "orbit.yaml"
    config.write_text(config.read_text() + f"state:\n  store: azure-blob\n  account_url: {azurite.blob_endpoint}\n"
                                           f"  container: {container}\n  lease_seconds: 15\n")
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
