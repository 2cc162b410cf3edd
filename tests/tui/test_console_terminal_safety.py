"""The console never paints a control character from a file, git or a log, and never shows a secret-named
variable's value (issue 12, items 7 and 3).

Every screen is read as painted (the compositor's strips, what Textual writes to the terminal) after the
fixed workspace's acme-corp got a hostile display name, a hostile env value and two secret-named variables
whose values have no secret shape, and an operation logged hostile lines and failed with a hostile error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from console_helpers import open_solutions, provision_with_engine, settle
from support import screen_text

from orbit_ops.operations.runner import OperationRunner
from orbit_ops.operations.store import OperationStore
from orbit_ops.redact import clear_registered_secrets
from orbit_tui.app import OrbitApp
from orbit_tui.screens.log import LogScreen
from orbit_tui.screens.modals import PlanScreen
from orbit_tui.screens.solution import SolutionScreen

MakeApp = Callable[..., OrbitApp]

HOSTILE = "Evil \x1b]0;PWNED\x07 \x1b]52;c;SGVsbG8=\x07 \x9b2J \u202egnp"
SHOWN = "Evil \\x1b]0;PWNED\\x07 \\x1b]52;c;SGVsbG8=\\x07 \\x9b2J \\u202egnp"
SECRETS = ("hunter3-rotated", "tok-SEKRIT-777")
_RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def painted(app: OrbitApp) -> str:
    """The current screen as Textual would write it: the text of every painted strip, toasts included."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def _hostile(root: Path) -> str:
    path = root / "solutions" / "acme-corp.yaml"
    text = path.read_text().replace("display_name: Acme Corp",
                                    r'display_name: "Evil \e]0;PWNED\a \e]52;c;SGVsbG8=\a \x9b2J \u202egnp"')
    text += ('    LOG_FORMAT: "\\e]52;c;SGVsbG8=\\a"\n'
             f"    DB_PASSWORD: {SECRETS[0]}\n    API_TOKEN: {SECRETS[1]}\n")
    path.write_text(text)

    async def body(ctx: Any) -> dict[str, Any]:
        ctx.log(f"RUN echo {HOSTILE}")
        ctx.child("acme-corp", "failed", f"refused: {HOSTILE}")
        raise RuntimeError(f"builder said {HOSTILE}")

    with OperationStore(root / ".orbit") as store:
        runner = OperationRunner(store, "build", "orbit@1.2.0", body, total=1)
        async for _event in runner.events():
            pass
        return runner.op_id


def _check(app: OrbitApp, where: str, found: dict[str, list[str]]) -> str:
    text = painted(app) + "\n" + screen_text(app)
    problems = [repr(text[max(0, m.start() - 12):m.end() + 12]) for m in _RAW.finditer(text)]
    problems += [secret for secret in SECRETS if secret in text]
    if problems:
        found[where] = problems
    return text


async def test_no_control_character_or_secret_named_value_is_painted(fixed_copy: Path, make_app: MakeApp) -> None:
    await provision_with_engine(fixed_copy, "acme-corp")  # so the plan updates its env: values shown
    op_id = await _hostile(fixed_copy)
    clear_registered_secrets()  # as a fresh console: only what loading the solutions registers
    app = make_app(fixed_copy)
    found: dict[str, list[str]] = {}
    async with app.run_test(size=(200, 50)) as pilot:
        await open_solutions(pilot)
        text = _check(app, "solutions", found)
        assert SHOWN[:30] in text
        await pilot.press("enter")  # acme-corp, the first row
        await settle(pilot)
        assert isinstance(app.screen, SolutionScreen)
        text = _check(app, "solution detail", found)
        assert "DB_PASSWORD=***" in text and "API_TOKEN=***" in text
        assert "LOG_FORMAT=\\x1b]52;c;SGVsbG8=\\x07" in text and f"acme-corp  ·  {SHOWN}" in text
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("space", "p")  # the plan of acme-corp (its new env values)
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        text = _check(app, "plan", found)
        assert "env DB_PASSWORD added (***)" in text
        assert "env LOG_FORMAT added (\\x1b]52;c;SGVsbG8=\\x07)" in text
        await pilot.press("escape")
        await settle(pilot)
        app.open_log(op_id)
        await settle(pilot)
        assert isinstance(app.screen, LogScreen)
        text = _check(app, "log", found)
        assert f"RUN echo {SHOWN}" in text
        app.notify(f"{SHOWN}: {HOSTILE}", title=HOSTILE, severity="error")
        await settle(pilot)
        text = _check(app, "toast", found)
        assert text.count("PWNED\\x07") >= 3
    assert found == {}


async def test_console_pilot_sees_raw_controls_without_the_fix(fixed_copy: Path, make_app: MakeApp,
                                                               monkeypatch: Any) -> None:
    # The check above can fail: with visible() made a no-op, the detail screen paints ESC and the secrets.
    import orbit_tui.screens.solution as solution_screen
    import orbit_tui.widgets as widgets

    await _hostile(fixed_copy)
    monkeypatch.setattr(solution_screen, "visible", lambda text, **_: text)
    monkeypatch.setattr(widgets, "visible", lambda text, **_: text)
    monkeypatch.setattr(solution_screen, "shown_env_value", lambda name, value: value)
    app = make_app(fixed_copy)
    found: dict[str, list[str]] = {}
    async with app.run_test(size=(200, 50)) as pilot:
        await open_solutions(pilot)
        await pilot.press("enter")
        await settle(pilot)
        _check(app, "solution detail", found)
    assert any("\\x1b" in problem for problem in found["solution detail"])
    assert set(SECRETS) <= set(found["solution detail"])
