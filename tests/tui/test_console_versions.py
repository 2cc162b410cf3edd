"""The Components screen's chart of pinned versions across the fleet (issue 15): seen, not computed, and live."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

from conftest import SIZE
from console_helpers import settle
from rich.console import Console
from support import screen_text
from textual.widgets import Static

from orbit_tui.app import OrbitApp

MakeApp = Callable[..., OrbitApp]


def chart(app: OrbitApp) -> dict[tuple[str, str], tuple[int, str]]:
    """(component, version) → (solutions, share) as the chart on the screen draws them."""
    assert "Pinned versions across the fleet" in screen_text(app)
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(app.screen.query_one("#components-versions", Static).content)
    rows: dict[tuple[str, str], tuple[int, str]] = {}
    component = ""
    for line in console.export_text().splitlines():
        found = re.match(r"\s*(orbit|agent|mc)?\s+(\d+\.\d+\.\d+\S*)\s+[\u2580-\u259f ]*\s(\d+)\s+(\d+%)", line)
        if found is None:
            continue
        component = found[1] or component
        rows[(component, found[2])] = (int(found[3]), found[4])
    return rows


async def test_the_chart_shows_each_version_the_fleet_pins_and_follows_a_reload(
    fixed_copy: Path, make_app: MakeApp,
) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = chart(app)
        assert shown[("agent", "2.0.0")] == (5, "83%") and shown[("agent", "2.0.0-rc.1")] == (1, "16%")
        assert sum(count for (component, _), (count, _) in shown.items() if component == "mc") == 6
        globex = fixed_copy / "solutions" / "globex.yaml"
        globex.write_text(globex.read_text().replace('orbit_tag: "1.1.0"', 'orbit_tag: "1.1.0"\n  agent_tag: "1.0.0"'))
        await pilot.press("ctrl+r")  # as after an operation ends: config, solutions, tags and records read again
        await settle(pilot)
        shown = chart(app)
        assert shown[("agent", "1.0.0")] == (1, "16%") and shown[("agent", "2.0.0")] == (4, "66%")
