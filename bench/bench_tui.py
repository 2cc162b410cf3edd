"""Console benchmarks: the Solutions screen over 10,000 solutions and the log view ingesting 100,000 lines, each
next to the same Textual widget in a bare app measured in the same run (the widget's physical limit).

Run: ``python bench/bench_tui.py [runs]`` (prints a markdown section for bench/RESULTS.md).

How it measures (headless ``App.run_test``, which lays out and renders every frame but writes it nowhere):
- *frames*: ``App._display`` is wrapped to timestamp each rendered frame; an effect counts once the first frame
  after it has been rendered.
- *keys* are posted the way the terminal driver posts them (``call_soon_threadsafe`` from another thread), so a
  key sent while the event loop is busy waits, and that wait is counted.
- *start to interactive*: from creating the app (the console: ``Workspace.open`` included, then ``2``) until the
  first ``down`` key handled while the table holds all 10,000 rows has been drawn. Keys are sent every 20 ms from
  the start.
- *filter keystroke*: a character typed into the open filter box until the first frame after the table was
  redrawn with the rows that match (the bare app filters the same row texts by substring).
- *log ingest*: the console opens the log of a finished operation of 100,000 lines (replayed from the store as
  ``orbit logs`` would, decoded a batch at a time); the bare app writes the same formatted lines into a
  ``Log`` in batches of 2,000. ``f`` (follow on/off; in the bare app a binding that changes a label) is pressed
  every 20 ms meanwhile; latency is key sent → handler ran → next frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import GIT_ENV, machine
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Input, Label, Log

SIZE = (160, 45)
SOLUTIONS = 10_000
LOG_LINES = 100_000
KEY_EVERY = 0.02
FILTER_KEYS = ["a", "c", "m", "e", "backspace", "backspace", "backspace", "backspace"]


# --- probes ---------------------------------------------------------------------------------------------------


class Frames:
    """Timestamps of every frame an app renders (``App._display`` runs right after the compositor rendered)."""

    def __init__(self, app: App[Any]) -> None:
        self.times: list[float] = []
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            if renderable is not None:
                self.times.append(time.perf_counter())
            original(screen, renderable)

        app._display = display  # type: ignore[method-assign]

    async def after(self, moment: float, timeout: float = 30.0) -> float:
        """The first frame rendered after ``moment`` (waits for it)."""
        deadline = time.perf_counter() + timeout
        while True:
            later = [t for t in self.times if t >= moment]
            if later:
                return later[0]
            if time.perf_counter() > deadline:
                raise TimeoutError("no frame was rendered")
            await asyncio.sleep(0.002)


class KeyThread:
    """Posts ``key`` to the app every ``every`` seconds from another thread, as the terminal driver would."""

    def __init__(self, app: App[Any], key: str, every: float = KEY_EVERY) -> None:
        self.app, self.key, self.every = app, key, every
        self.sent: list[float] = []
        self.loop = asyncio.get_running_loop()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            self.sent.append(time.perf_counter())
            self.loop.call_soon_threadsafe(post_key, self.app, self.key)

    def __enter__(self) -> KeyThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def post_key(app: App[Any], key: str) -> None:
    char = {"backspace": None, "down": None, "slash": "/"}.get(key, key)
    event = events.Key(key, char)
    event.set_sender(app)
    app.post_message(event)


@contextlib.contextmanager
def patched(cls: type, name: str, after: Callable[..., None]) -> Iterator[None]:
    """Run ``after(self, *args)`` each time ``cls.name`` has run."""
    original = getattr(cls, name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        after(self, *args)
        return result

    setattr(cls, name, wrapper)
    try:
        yield
    finally:
        setattr(cls, name, original)


def latencies(sent: list[float], handled: list[float], frames: list[float]) -> list[float]:
    """Key sent → its handler ran → the next frame, pairing the n-th key with the n-th handling."""
    out = []
    for start, done in zip(sent, handled, strict=False):
        frame = next((t for t in frames if t >= done), None)
        if frame is not None:
            out.append(frame - start)
    return out


# --- the bare apps: the widgets' physical limit ---------------------------------------------------------------


class BareTable(App[None]):
    """A DataTable with the same 10,000 rows of text, and a filter box that redraws it by substring."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("slash", "filter", "Filter")]

    def __init__(self, rows: list[tuple[str, ...]], haystacks: list[str]) -> None:
        super().__init__()
        self.rows, self.haystacks = rows, haystacks
        self.shown_at: list[float] = []

    def compose(self) -> ComposeResult:
        box = Input(id="filter", compact=True)
        box.display = False
        yield box
        yield DataTable(cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("", "id", "name", "orbit", "agent", "mc", "freshness", "sync", "last operation")
        for index, row in enumerate(self.rows):
            table.add_row(*row, key=str(index))
        table.focus()

    def action_filter(self) -> None:
        box = self.query_one(Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        needle = event.value.lower()
        table = self.query_one(DataTable)
        table.clear()
        for index, (row, haystack) in enumerate(zip(self.rows, self.haystacks, strict=True)):
            if needle in haystack:
                table.add_row(*row, key=str(index))
        self.shown_at.append(time.perf_counter())


class BareLog(App[None]):
    """A Log fed ``lines`` in batches of 2,000 as fast as it takes them; ``f`` flips a label."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("f", "flip", "Flip")]

    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines
        self.flipped_at: list[float] = []
        self.started_at = self.done_at = 0.0

    def compose(self) -> ComposeResult:
        yield Label("follow on", id="mode")
        yield Log(id="log")

    def on_mount(self) -> None:
        self.query_one(Log).focus()
        self.feed()

    @work
    async def feed(self) -> None:
        log = self.query_one(Log)
        self.started_at = time.perf_counter()
        for start in range(0, len(self.lines), 2000):
            log.write_lines(self.lines[start : start + 2000])
            await asyncio.sleep(0)
        self.done_at = time.perf_counter()

    def action_flip(self) -> None:
        label = self.query_one("#mode", Label)
        label.update("follow off" if str(label.render()) == "follow on" else "follow on")
        self.flipped_at.append(time.perf_counter())


# --- the workspace --------------------------------------------------------------------------------------------


def make_workspace(folder: Path) -> tuple[Path, str]:
    """A demo workspace (real builds, 37 provisioned) grown to 10,000 solutions, plus a finished operation
    whose log holds 100,000 lines."""
    import os

    from orbit_ops.demo import _write_solutions, create_demo
    from orbit_ops.operations.runner import OperationRunner
    from orbit_ops.workspace import Workspace

    os.environ.update(GIT_ENV)
    root = folder / "ws"
    for _ in create_demo(root):
        pass
    for _ in _write_solutions(root, SOLUTIONS, random.Random(7)):
        pass
    workspace = Workspace.open(root)

    async def body(ctx: Any) -> dict[str, Any]:
        for index in range(LOG_LINES):
            ctx.log(f"Step {index % 40 + 1}/40 : RUN make -C src target-{index} CFLAGS=-O2 # layer {index:06d}")
        return {"status": "built"}

    async def run() -> str:
        runner = OperationRunner(workspace.operations(), "build", "agent@9.9.9", body)
        async for _event in runner.events():
            pass
        return runner.op_id

    return root, asyncio.run(run())


# --- measurements ---------------------------------------------------------------------------------------------


async def orbit_start(root: Path) -> tuple[float, float, list[float]]:
    """Console start → Solutions interactive; then filter keystrokes. Returns (start s, engine read s, filters)."""
    from orbit_ops.workspace import Workspace
    from orbit_tui.app import OrbitApp
    from orbit_tui.fleet_model import FleetModel
    from orbit_tui.screens.solutions import SolutionsScreen

    handled: list[tuple[float, int]] = []
    reads: list[float] = []
    shown: list[float] = []

    def timed_read(self: Any) -> Any:
        start = time.perf_counter()
        try:
            return original_read(self)
        finally:
            reads.append(time.perf_counter() - start)

    original_read = FleetModel.read_views
    FleetModel.read_views = timed_read  # type: ignore[method-assign]
    try:
        with (
            patched(
                DataTable, "action_cursor_down", lambda table: handled.append((time.perf_counter(), table.row_count))
            ),
            patched(SolutionsScreen, "show", lambda _screen: shown.append(time.perf_counter())),
        ):
            t0 = time.perf_counter()
            app = OrbitApp(Workspace.open(root), refresh_seconds=3600)
            async with app.run_test(size=SIZE) as pilot:
                frames = Frames(app)
                post_key(app, "2")
                with KeyThread(app, "down"):
                    while not any(count == SOLUTIONS for _, count in handled):
                        await asyncio.sleep(0.005)
                ready = next(t for t, count in handled if count == SOLUTIONS)
                interactive = await frames.after(ready) - t0
                await wait_workers(app)
                screen = app.screen
                assert isinstance(screen, SolutionsScreen)
                filters = await type_filter(app, frames, lambda: shown)
                await pilot.pause()
    finally:
        FleetModel.read_views = original_read  # type: ignore[method-assign]
    return interactive, reads[0], filters


async def bare_start(rows: list[tuple[str, ...]], haystacks: list[str]) -> tuple[float, list[float]]:
    handled: list[tuple[float, int]] = []
    with patched(DataTable, "action_cursor_down", lambda table: handled.append((time.perf_counter(), table.row_count))):
        t0 = time.perf_counter()
        app = BareTable(rows, haystacks)
        async with app.run_test(size=SIZE) as pilot:
            frames = Frames(app)
            with KeyThread(app, "down"):
                while not any(count == SOLUTIONS for _, count in handled):
                    await asyncio.sleep(0.005)
            ready = next(t for t, count in handled if count == SOLUTIONS)
            interactive = await frames.after(ready) - t0
            filters = await type_filter(app, frames, lambda: app.shown_at)
            await pilot.pause()
    return interactive, filters


async def type_filter(app: App[Any], frames: Frames, shown: Callable[[], list[float]]) -> list[float]:
    """Open the filter, then type each of FILTER_KEYS: key posted → table redrawn → next frame."""
    post_key(app, "slash")
    await asyncio.sleep(0.05)
    out = []
    for key in FILTER_KEYS:
        before = len(shown())
        start = time.perf_counter()
        post_key(app, key)
        while len(shown()) == before:
            await asyncio.sleep(0.001)
        out.append(await frames.after(shown()[-1]) - start)
    return out


async def wait_workers(app: App[Any]) -> None:
    for _ in range(600):
        if not any(worker.is_running for worker in app.workers):
            return
        await asyncio.sleep(0.05)


async def orbit_log(root: Path, op_id: str) -> tuple[float, list[float]]:
    """Open the 100,000-line log and press f meanwhile: (lines per second, key latencies)."""
    from orbit_ops.workspace import Workspace
    from orbit_tui.app import OrbitApp
    from orbit_tui.screens.log import LogScreen
    from orbit_tui.widgets import OperationLog

    flips: list[float] = []
    with patched(LogScreen, "action_toggle_follow", lambda _screen: flips.append(time.perf_counter())):
        app = OrbitApp(Workspace.open(root), refresh_seconds=3600)
        async with app.run_test(size=SIZE) as pilot:
            await wait_workers(app)
            frames = Frames(app)
            start = time.perf_counter()
            app.open_log(op_id)
            while not (isinstance(app.screen, LogScreen) and app.screen.query(OperationLog)):
                await asyncio.sleep(0.001)  # keys go to the log view from its first frame on, none to the screen before
            with KeyThread(app, "f") as keys:
                while True:
                    screen = app.screen
                    logs = screen.query(OperationLog) if isinstance(screen, LogScreen) else []
                    if logs and logs[0].line_count > LOG_LINES:
                        break
                    await asyncio.sleep(0.002)
                done = time.perf_counter()
            await pilot.pause()
            await asyncio.sleep(0.1)
            lat = latencies([t for t in keys.sent if t <= done], flips, frames.times)
    return LOG_LINES / (done - start), lat


async def bare_log(lines: list[str]) -> tuple[float, list[float]]:
    app = BareLog(lines)
    async with app.run_test(size=SIZE) as pilot:
        frames = Frames(app)
        with KeyThread(app, "f") as keys:
            while not app.done_at:
                await asyncio.sleep(0.002)
        await pilot.pause()
        await asyncio.sleep(0.1)
        lat = latencies([t for t in keys.sent if t <= app.done_at], app.flipped_at, frames.times)
    return len(lines) / (app.done_at - app.started_at), lat


def table_rows(root: Path) -> tuple[list[tuple[str, ...]], list[str]]:
    """The same cell texts the console shows, computed once (the bare widget gets them ready-made)."""
    from orbit_ops.workspace import Workspace
    from orbit_tui.render import SolutionView, pin_views, solution_row

    workspace = Workspace.open(root)
    releases = workspace.release_index()
    views = [SolutionView(spec, pin_views(spec, releases)) for spec in workspace.solutions()]
    rows = [tuple(cell.text for cell in solution_row(view)) for view in views]
    return rows, [view.search_text for view in views]


def log_texts(root: Path, op_id: str) -> list[str]:
    from orbit_ops.operations.events import LogLine
    from orbit_ops.workspace import Workspace
    from orbit_tui.render import log_text

    events = Workspace.open(root).operations().read_events(op_id)
    return [log_text(event) for event in events if isinstance(event, LogLine)]


def measure(coroutine: Any) -> Any:
    """Run one measurement from a collected heap, so neither app pays for the garbage the other left."""
    gc.collect()
    return asyncio.run(coroutine)


def med(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    import os

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root, op_id = make_workspace(Path(tmp))
        rows, haystacks = table_rows(root)
        lines = log_texts(root, op_id)
        measure(orbit_start(root))  # warm-up: imports, page cache
        measure(bare_start(rows, haystacks))
        start_o, start_b, read_o, filt_o, filt_b = [], [], [], [], []
        rate_o, rate_b, lat_o, lat_b, worst_o, worst_b = [], [], [], [], [], []
        for _ in range(runs):  # interleaved, so machine noise hits both alike
            interactive, read, filters = measure(orbit_start(root))
            start_o.append(interactive)
            read_o.append(read)
            filt_o.append(med(filters))
            interactive, filters = measure(bare_start(rows, haystacks))
            start_b.append(interactive)
            filt_b.append(med(filters))
            rate, lat = measure(orbit_log(root, op_id))
            rate_o.append(rate)
            lat_o.append(med(lat))
            worst_o.append(max(lat))
            rate, lat = measure(bare_log(lines))
            rate_b.append(rate)
            lat_b.append(med(lat))
            worst_b.append(max(lat))
    ms = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731
    print("## Console (issue 6)\n")
    print(
        f"Machine: {machine()}. Medians of {runs} interleaved runs (`python bench/bench_tui.py {runs}`), "
        f"headless at {SIZE[0]}×{SIZE[1]}, each from a collected heap (`gc.collect()` first); the bare app is the "
        "same Textual widget with the same texts, measured in the same run. Target: within 1.5× of the bare widget. "
        "Load average (1 min) at the start "
        f"{load_before:.1f}, at the end {os.getloadavg()[0]:.1f} (the machine is shared).\n"
    )
    print("| what | console | bare widget, same run | ratio |")
    print("|---|---|---|---|")
    s_o, s_b = med(start_o), med(start_b)
    print(
        f"| Solutions, {SOLUTIONS:,} solutions: start → interactive | {ms(s_o)} (of which reading and judging "
        f"the solution files: {ms(med(read_o))}) | DataTable with the rows ready-made: {ms(s_b)} | "
        f"**{s_o / s_b:.2f}×**; table part only {(s_o - med(read_o)) / s_b:.2f}× |"
    )
    f_o, f_b = med(filt_o), med(filt_b)
    print(f"| Solutions: filter keystroke → table redrawn | {ms(f_o)} | {ms(f_b)} | **{f_o / f_b:.2f}×** |")
    r_o, r_b = med(rate_o), med(rate_b)
    print(
        f"| Log view: {LOG_LINES:,} lines ingested | {r_o:,.0f} lines/s | Log: {r_b:,.0f} lines/s | "
        f"**{r_b / r_o:.2f}×** (time) |"
    )
    print(
        f"| Log view: key → effect while ingesting, median | {ms(med(lat_o))} | {ms(med(lat_b))} | "
        f"**{med(lat_o) / med(lat_b):.2f}×** |"
    )
    print(
        f"| Log view: key → effect while ingesting, worst | {ms(max(worst_o))} | {ms(max(worst_b))} | "
        f"**{max(worst_o) / max(worst_b):.2f}×** |"
    )
    print()
    print(
        "Raw medians per run (console / bare): start "
        + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(start_o, start_b, strict=True))
        + " s"
    )


if __name__ == "__main__":
    main()
