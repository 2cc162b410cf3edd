"""Control characters from files, git and logs never reach the operator's terminal from the CLI (issue 12.7).

A solution's ``display_name: "Evil \\e]0;PWNED\\a"`` retitles the terminal window and ``\\e]52;c;…\\a`` writes the
clipboard if printed raw; so do the same bytes in an error message quoting a file, a tag name, or a log line.
Each must come out visibly (``\\x1b]0;PWNED\\x07``), on plain output, on a terminal (rich) and in JSON.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import git

from orbit_cli.render import EventPrinter
from orbit_ops.operations.events import ChildChanged, LogLine, OperationFinished, OperationStarted
from orbit_ops.operations.runner import OperationRunner
from orbit_ops.operations.store import OperationStore

Run = Callable[..., tuple[int, str, str]]

HOSTILE = "Evil \x1b]0;PWNED\x07 \x1b]52;c;SGVsbG8=\x07 \x9b2J \x7f \u202egnp.exe"
SHOWN = "Evil \\x1b]0;PWNED\\x07 \\x1b]52;c;SGVsbG8=\\x07 \\x9b2J \\x7f \\u202egnp.exe"
# Anything a terminal would act on, except the CSI colour codes rich itself writes on a terminal.
_RAW = re.compile("[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\x1b(?!\\[[0-9;]*m)")


def raw_controls(text: str) -> list[str]:
    return [repr(text[max(0, m.start() - 10):m.end() + 10]) for m in _RAW.finditer(text)]


@pytest.fixture
def hostile_copy(demo_workspace: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    path = root / "solutions" / "acme-corp.yaml"
    # As the issue wrote it: YAML double-quoted escapes \e and \a (and \x9b, \u202e).
    text = path.read_text().replace("display_name: Acme Corp",
                                    r'display_name: "Evil \e]0;PWNED\a \e]52;c;SGVsbG8=\a \x9b2J \x7f \u202egnp.exe"')
    path.write_text(text)
    return root


def test_solutions_table_shows_a_hostile_display_name_visibly(hostile_copy: Path, run_cli: Run) -> None:
    code, out, err = run_cli("-w", str(hostile_copy), "solutions")
    assert code == 0, err
    assert raw_controls(out + err) == []
    assert SHOWN in out


def test_solutions_on_a_terminal_neither_passes_controls_nor_reads_markup(hostile_copy: Path, run_cli: Run,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = hostile_copy / "solutions" / "globex.yaml"
    path.write_text(path.read_text().replace("display_name: Globex", "display_name: '[link=https://evil.example]x'"))
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # the rich table
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that no name wraps: the markup must show as written, whole
    code, out, err = run_cli("-w", str(hostile_copy), "solutions")
    assert code == 0, err
    assert raw_controls(out) == [] and "\x1b]8;" not in out  # no hyperlink made from a display name
    assert "[link=https://evil.example]x" in out
    assert "Evil \\x1b]0;PWNED\\x07" in out


def test_json_output_escapes_every_control_and_parses_back(hostile_copy: Path, run_cli: Run) -> None:
    code, out, _ = run_cli("-w", str(hostile_copy), "solutions", "--json")
    assert code == 0
    assert raw_controls(out) == []
    assert next(row for row in json.loads(out) if row["id"] == "acme-corp")["display_name"] == HOSTILE


def test_an_error_quoting_a_file_shows_its_controls_visibly(hostile_copy: Path, run_cli: Run) -> None:
    path = hostile_copy / "solutions" / "globex.yaml"
    path.write_text(path.read_text().replace("    LOG_LEVEL: info", '    "BAD\\e]0;PWNED\\a": x'))
    code, out, err = run_cli("-w", str(hostile_copy), "plan", "globex")
    assert code == 2
    assert raw_controls(out + err) == []
    assert "invalid environment variable name 'BAD\\x1b]0;PWNED\\x07'" in err


def test_a_tag_name_with_bidi_controls_is_reported_visibly(hostile_copy: Path, run_cli: Run) -> None:
    git(hostile_copy, "tag", "agent/v9\u202e0.0", "agent/v2.1.0")  # git refuses C0 in ref names, not U+202E
    code, out, err = run_cli("-w", str(hostile_copy), "tags", "agent")
    assert code == 0, err
    assert raw_controls(out + err) == []
    assert "agent/v9\\u202e0.0" in err


def test_logs_replay_and_json_show_controls_visibly(hostile_copy: Path, run_cli: Run) -> None:
    async def body(ctx: Any) -> dict[str, Any]:
        ctx.log(f"step 1: {HOSTILE}")
        ctx.child("acme-corp", "failed", f"refused: {HOSTILE}")
        raise RuntimeError(f"builder said {HOSTILE}")

    async def run() -> str:
        with OperationStore(hostile_copy / ".orbit") as store:
            runner = OperationRunner(store, "build", "agent@2.1.0", body, total=1)
            async for _event in runner.events():
                pass
            return runner.op_id

    op_id = asyncio.run(run())
    for args in ((), ("--json",)):
        _code, out, err = run_cli("-w", str(hostile_copy), "logs", op_id, *args)
        assert raw_controls(out + err) == [], args
        assert ("PWNED\\x07" if not args else "PWNED\\u0007") in out


@pytest.mark.parametrize("terminal", [False, True])
def test_live_events_show_controls_visibly(terminal: bool, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal)
    at = "2026-12-01T10:00:00.000Z"
    with EventPrinter() as printer:
        printer.handle(OperationStarted("op-1", "build", f"agent {HOSTILE}", at))
        printer.handle(LogLine("op-1", at, f"RUN echo {HOSTILE}", None))
        printer.handle(ChildChanged("op-1", "acme-corp", "failed", HOSTILE))
        printer.handle(OperationFinished("op-1", "failed", at, error=f"ACR run failed: {HOSTILE}"))
    out, err = capsys.readouterr()
    assert raw_controls(out + err) == []
    assert out.count("\\x1b]0;PWNED\\x07") == 5  # started, log line, member, and finished (target + error)


def test_every_cli_line_leaves_through_the_output_module() -> None:
    # A bare click.echo or print in any CLI module would print a value raw: the one print path is orbit_cli.output.
    package = Path(__file__).parents[2] / "orbit_cli"
    modules = sorted(path for path in package.rglob("*.py") if path != package / "output.py")
    assert package / "main.py" in modules and package / "commands" / "fleet.py" in modules
    for path in modules:
        source = path.read_text()
        assert "click.echo(" not in source, path
        assert not re.search(r"(?<![\w.])print\(", source), path
