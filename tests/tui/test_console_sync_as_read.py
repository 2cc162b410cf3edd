"""The Solutions screen's sync and health fill in as a long platform read judges them (decision 0092)."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path

import pytest
from conftest import SIZE
from console_helpers import settle, table_rows
from textual.widgets import Label

from orbit_ops.backends.base import AppsRead
from orbit_ops.backends.local.platform import LocalPlatform
from orbit_ops.fleet.resources import App
from orbit_ops.fleet.status import fleet_status
from orbit_ops.workspace import Workspace
from orbit_tui import fleet_model
from orbit_tui.app import OrbitApp
from orbit_tui.render import NOT_KNOWN

SYNC, HEALTH = 7, 8  # columns of a Solutions row


class HeldPages(LocalPlatform):
    """The local platform, its apps listed four at a time like Azure's pages; after half of them the listing
    waits for ``go`` (the rest of a large fleet's pages still on their way)."""

    lists_at_once = False
    go: threading.Event  # set by the test

    async def list_apps(self, on_page: AppsRead | None = None) -> dict[str, App]:
        apps = await super().list_apps()
        states = await self.list_app_states()
        names = list(apps)
        random.Random(3).shuffle(names)
        pages = [names[start:start + 4] for start in range(0, len(names), 4)]
        for number, page in enumerate(pages):
            if number == len(pages) // 2:
                await asyncio.to_thread(self.go.wait, 30)
            if on_page is not None:
                on_page({name: apps[name] for name in page}, {name: states[name] for name in page if name in states})
        return apps


async def test_sync_fills_in_while_the_platform_read_goes_on(
    demo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet_model, "PARTIAL_SECONDS", 0.05)
    statuses, _ = await fleet_status(Workspace.open(demo_copy))  # the local platform: read at once
    expected = {status.id: status.sync for status in statuses}
    workspace = Workspace.open(demo_copy)
    platform = HeldPages(workspace.config.state_dir)
    platform.go = threading.Event()
    workspace._platform = platform
    app = OrbitApp(workspace, refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        try:
            await pilot.press("2")
            fleet = app.model.fleet
            for _ in range(400):  # bounded: the read holds until told
                await pilot.pause(0.02)
                if any(view.sync for view in fleet.views):
                    break
            assert fleet.synced_at is None  # the read has not ended
            rows = {row[1]: row for row in table_rows(app, "#solutions")}
            shown = {row[SYNC] for row in rows.values()}
            assert "synced" in shown and NOT_KNOWN in shown  # some judged from the pages so far, the rest to come
            judged = [key for key, row in rows.items() if row[SYNC] == "synced"]
            assert all(rows[key][HEALTH] == "healthy" for key in judged)

            def as_of() -> str:
                return str(app.screen.query_one("#solutions-as-of", Label).render())

            for _ in range(100):  # the label follows the model's last partial answer (one may still be on its way)
                if as_of().startswith(f"reading the platform… {fleet.judged_so_far} of {len(rows)} judged · "):
                    break
                await pilot.pause(0.02)
            assert as_of().startswith(f"reading the platform… {fleet.judged_so_far} of {len(rows)} judged · ")
            assert fleet.judged_so_far is not None and len(judged) <= fleet.judged_so_far < len(rows)
            platform.go.set()
            await settle(pilot)
            assert fleet.synced_at is not None
            assert as_of().startswith(f"sync as of {fleet.synced_at} UTC · refreshes every")  # no count any more
            rows = {row[1]: row for row in table_rows(app, "#solutions")}
            assert NOT_KNOWN not in {row[SYNC] for row in rows.values()}
            assert all(rows[key][SYNC] == "synced" for key in judged)  # what was shown early stands
            assert {key: row[SYNC] for key, row in rows.items()} == expected  # as a read of the whole listing says
        finally:
            platform.go.set()  # never leave the read's thread waiting
