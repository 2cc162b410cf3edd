"""The console's plan and roll confirmations name the solutions lacking a variable their new image requires.

What they show is the engine's preflight (``orbit_ops.fleet.preflight``), carried on the plan objects: the
console reads no registry itself. The fixed workspace's local registry holds each released image; a test pushes
an image that requires a variable, or deletes the tags it needs unread.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import SIZE
from console_helpers import open_solutions, settle
from console_workspace import push_image, untag_image

from orbit_tui.app import OrbitApp
from orbit_tui.screens.modals import PlanScreen

MakeApp = Callable[..., OrbitApp]
HEADING = "preflight: {} solution(s) lack a variable their new image requires"


async def test_the_roll_confirmation_names_the_solutions_its_version_leaves_lacking(fixed_copy: Path,
                                                                                     make_app: MakeApp) -> None:
    push_image(fixed_copy, "orbit", "1.2.0", requires="MC_URL")
    globex = fixed_copy / "solutions" / "globex.yaml"
    globex.write_text(globex.read_text() + '    MC_URL: "https://globex.mc.example.com"\n')
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        await pilot.press("space", "down", "space")  # acme-corp (already on 1.2.0), globex (sets MC_URL)
        assert screen.selected_ids() == ["acme-corp", "globex"]
        await pilot.press("t")
        await settle(pilot)
        await pilot.press("enter")  # orbit 1.2.0
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        lines = app.screen.text.splitlines()
        start = lines.index(HEADING.format(1))
        assert lines[start + 1] == "  acme-corp: orbit 1.2.0 requires MC_URL, not set"
        assert not any("globex" in line for line in lines[start:start + 2])
        assert str(app.screen.query_one("#plan-preflight").render()).startswith(HEADING.format(1))


async def test_the_provision_confirmation_names_the_solution_and_warns_of_an_unread_image(fixed_copy: Path,
                                                                                          make_app: MakeApp) -> None:
    push_image(fixed_copy, "orbit", "1.1.0", requires="MC_URL, REGION")
    untag_image(fixed_copy, "agent", "2.0.0")
    untag_image(fixed_copy, "mc", "1.1.0")
    app = make_app(fixed_copy)
    operations = len(app.workspace.operations().list())
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("down", "r")  # globex: orbit 1.1.0 is in the registry, agent 2.0.0 and mc 1.1.0 no longer
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        lines = app.screen.text.splitlines()
        assert lines[1:4] == [HEADING.format(1), "  globex: orbit 1.1.0 requires MC_URL, REGION, not set",
                              "preflight: warning: config of 2 image(s) not read, not checked (agent:2.0.0, "
                              "mc:1.1.0): not in the local registry"]
        await pilot.press("n")
        await settle(pilot)
    assert len(app.workspace.operations().list()) == operations  # naming is a warning: cancel still writes nothing


async def test_the_plan_without_images_to_read_is_shown_with_one_warning(fixed_copy: Path, make_app: MakeApp) -> None:
    for component, version in (("orbit", "1.2.0"), ("agent", "2.0.0"), ("mc", "1.1.0")):
        untag_image(fixed_copy, component, version)
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("p")  # acme-corp
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        preflight = [line for line in app.screen.text.splitlines() if line.startswith("preflight")]
        assert preflight == ["preflight: warning: config of 3 image(s) not read, not checked (orbit:1.2.0, "
                             "agent:2.0.0, mc:1.1.0): not in the local registry"]
        assert app.screen.text.splitlines()[2].startswith("acme-corp  ")  # the plan itself follows
