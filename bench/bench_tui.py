"""Console benchmarks: the Solutions screen at 40, 1,000 and 10,000 solutions, the table widgets side by side,
and the log view ingesting 100,000 lines next to Textual's ``Log`` (issues 6 and 17).

Run: ``python bench/bench_tui.py [runs]`` (prints a markdown section for bench/RESULTS.md).

How it measures (headless ``App.run_test``, which lays out and renders every frame but writes it nowhere):
- *frames*: ``App._display`` is wrapped to timestamp each rendered frame; an effect counts once the first frame
  after it has been rendered.
- *keys* are posted the way the terminal driver posts them (``call_soon_threadsafe`` from another thread), so a
  key sent while the event loop is busy waits, and that wait is counted.
- *start to interactive*: from creating the app (the console: ``Workspace.open`` included, then ``2``) until the
  first ``down`` key handled while the table holds every solution has been drawn. Keys are sent every 20 ms from
  the start. The console at 10,000 solutions and at 40 is measured in the same run (issue 17: ≤ 1.3×).
- *filter keystroke*: a character typed into the open filter box until the first frame after the table was
  redrawn with the rows that match (the bare apps filter the same row texts by substring).
- *scroll by a page*: ``pagedown`` posted until the first frame after the table handled it, 10 pages from the top.
- *cold*: the same start with ``.orbit/cache/solutions.bin`` removed just before (every file read and parsed).
- *peak memory*: the console started in a fresh process (``--memory``) until interactive at 10,000 and at 1,000
  solutions; its peak RSS (``VmHWM``).
- *widgets*: the same 10,000 rows of text in a bare app holding Textual's ``DataTable``, Orbit's ``LineTable``
  (decision 0075) and, when it is importable, ``textual-fastdatatable`` (``FASTDATATABLE_PATH`` may name a folder
  holding it and pyarrow: it is not a dependency of Orbit). fastdatatable cannot replace its rows (``clear()``
  raises), so its filter is a new table mounted in place of the old, as its documentation says to do.
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
from collections.abc import Callable, Iterable, Iterator
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
FLEETS = (40, 1_000, SOLUTIONS)
PAGES = 10
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
    char = {"backspace": None, "down": None, "pagedown": None, "slash": "/"}.get(key, key)
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

COLUMNS = ("", "id", "name", "orbit", "agent", "mc", "freshness", "sync", "health", "last operation")


class BareTable(App[None]):
    """Textual's DataTable with the same rows of text, and a filter box that redraws it by substring."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("slash", "filter", "Filter")]

    def __init__(self, rows: list[tuple[str, ...]], haystacks: list[str]) -> None:
        super().__init__()
        self.rows, self.haystacks = rows, haystacks
        self.shown_at: list[float] = []

    def compose(self) -> ComposeResult:
        box = Input(id="filter", compact=True)
        box.display = False
        yield box
        yield self.make_table()

    def make_table(self) -> Any:
        return DataTable(cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:  # Textual runs every class's on_mount: subclasses override ``setup`` instead
        self.setup()

    def setup(self) -> None:
        self.fill(range(len(self.rows)))
        self.query_one(DataTable).focus()

    def fill(self, indexes: Iterable[int]) -> None:
        table = self.query_one(DataTable)
        if not table.columns:
            table.add_columns(*COLUMNS)
        for index in indexes:
            table.add_row(*self.rows[index], key=str(index))

    def refill(self, indexes: list[int]) -> None:
        self.query_one(DataTable).clear()
        self.fill(indexes)

    def action_filter(self) -> None:
        box = self.query_one(Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        needle = event.value.lower()
        self.refill([index for index, haystack in enumerate(self.haystacks) if needle in haystack])
        self.shown_at.append(time.perf_counter())


class BareLineTable(BareTable):
    """Orbit's LineTable (decision 0075) with the same rows, replaced whole by the filter."""

    def make_table(self) -> Any:
        from orbit_tui.line_table import LineTable

        return LineTable(COLUMNS)

    def setup(self) -> None:
        from orbit_ops.bulk import bulk_built
        from orbit_tui.render import Cell

        with bulk_built():
            self.cells = [(str(index), tuple(Cell(text) for text in row)) for index, row in enumerate(self.rows)]
        self.refill(list(range(len(self.rows))))
        self.query_one("LineTable").focus()

    def refill(self, indexes: list[int]) -> None:
        table: Any = self.query_one("LineTable")
        table.show_rows([self.cells[index] for index in indexes])


class BareFastTable(BareTable):
    """textual-fastdatatable over an Arrow table of the same rows; a filter mounts a new table (``clear()``
    raises NotImplementedError: "Unmount this table and mount a new one instead")."""

    def make_table(self) -> Any:
        return self.fast(list(range(len(self.rows))))

    def fast(self, indexes: list[int]) -> Any:
        from textual_fastdatatable import DataTable as FastDataTable

        records = [self.rows[index] for index in indexes] or [("",) * len(COLUMNS)]
        return FastDataTable(data=records, column_labels=list(COLUMNS), cursor_type="row", zebra_stripes=True)

    def setup(self) -> None:
        self.query_one(fast_table_class()).focus()

    def refill(self, indexes: list[int]) -> None:
        old = self.query_one(fast_table_class())
        new = self.fast(indexes)
        self.mount(new, after=old)
        old.remove()


def fast_table_class() -> type | None:
    """textual-fastdatatable's DataTable, when it can be imported (``FASTDATATABLE_PATH`` may name its folder)."""
    import os

    if folder := os.environ.get("FASTDATATABLE_PATH"):
        sys.path.append(folder)
    try:
        from textual_fastdatatable import DataTable as FastDataTable
    except ImportError:
        return None
    return FastDataTable


BARE_APPS: dict[str, type[BareTable]] = {
    "DataTable (Textual)": BareTable,
    "LineTable (Orbit, line API)": BareLineTable,
    "textual-fastdatatable 0.19": BareFastTable,
}


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


# --- the workspaces -------------------------------------------------------------------------------------------


def make_workspaces(folder: Path) -> tuple[dict[int, Path], str]:
    """The demo workspace (real builds, 37 provisioned; 40 solutions), and copies of it grown to 1,000 and
    10,000 solutions; the largest also holds a finished operation whose log holds 100,000 lines."""
    import os
    import shutil

    from orbit_ops.demo import _write_solutions, create_demo
    from orbit_ops.operations.runner import OperationRunner
    from orbit_ops.workspace import Workspace

    os.environ.update(GIT_ENV)
    roots = {size: folder / f"ws{size}" for size in FLEETS}
    for _ in create_demo(roots[40]):
        pass
    for size in FLEETS[1:]:
        shutil.copytree(roots[40], roots[size], symlinks=True)
        for _ in _write_solutions(roots[size], size, random.Random(7)):
            pass
    for size, root in roots.items():
        assert len(Workspace.open(root).solutions()) == size, (size, root)
    workspace = Workspace.open(roots[SOLUTIONS])

    async def body(ctx: Any) -> dict[str, Any]:
        for index in range(LOG_LINES):
            ctx.log(f"Step {index % 40 + 1}/40 : RUN make -C src target-{index} CFLAGS=-O2 # layer {index:06d}")
        return {"status": "built"}

    async def run() -> str:
        runner = OperationRunner(workspace.operations(), "build", "agent@9.9.9", body)
        async for _event in runner.events():
            pass
        return runner.op_id

    return roots, asyncio.run(run())


# --- measurements ---------------------------------------------------------------------------------------------


async def until_interactive(
    app: App[Any], table: type, count: int, t0: float, *, console: bool
) -> tuple[float, Frames]:
    """Post ``down`` every 20 ms until one is handled by a ``table`` holding ``count`` rows; the first frame after."""
    handled: list[tuple[float, int]] = []
    with patched(table, "action_cursor_down", lambda widget: handled.append((time.perf_counter(), widget.row_count))):
        frames = Frames(app)
        if console:
            post_key(app, "2")
        with KeyThread(app, "down"):
            while not any(rows == count for _, rows in handled):
                await asyncio.sleep(0.005)
    ready = next(t for t, rows in handled if rows == count)
    return await frames.after(ready) - t0, frames


async def page_down(app: App[Any], frames: Frames, table: type) -> list[float]:
    """``pagedown`` posted → the table handled it → the next frame, PAGES times."""
    handled: list[float] = []
    out = []
    with patched(table, "action_page_down", lambda _widget, *_: handled.append(time.perf_counter())):
        for _ in range(PAGES):
            before = len(handled)
            start = time.perf_counter()
            post_key(app, "pagedown")
            while len(handled) == before:
                await asyncio.sleep(0.001)
            out.append(await frames.after(handled[-1]) - start)
            await asyncio.sleep(0.02)
    return out


async def orbit_solutions(root: Path, count: int, *, more: bool = True) -> dict[str, float]:
    """The console over ``root``: start → interactive (and the engine's read of it); then, when ``more``, a page
    scroll and filter keystrokes (medians)."""
    from orbit_ops.workspace import Workspace
    from orbit_tui.app import OrbitApp
    from orbit_tui.fleet_model import FleetModel
    from orbit_tui.line_table import LineTable
    from orbit_tui.screens.solutions import SolutionsScreen

    reads: list[float] = []
    shown: list[float] = []
    # The engine's first read of the fleet: of the cache's heads (decision 0094), or of the set (a reference's code).
    originals = {name: getattr(FleetModel, name) for name in ("read_views", "read_head_views")
                 if hasattr(FleetModel, name)}

    def timed(name: str) -> Callable[[Any], Any]:
        def timed_read(self: Any) -> Any:
            start = time.perf_counter()
            try:
                return originals[name](self)
            finally:
                reads.append(time.perf_counter() - start)

        return timed_read

    for name in originals:
        setattr(FleetModel, name, timed(name))
    try:
        with patched(SolutionsScreen, "show", lambda _screen, *_a: shown.append(time.perf_counter())):
            t0 = time.perf_counter()
            app = OrbitApp(Workspace.open(root), refresh_seconds=3600)
            async with app.run_test(size=SIZE) as pilot:
                interactive, frames = await until_interactive(app, LineTable, count, t0, console=True)
                out = {"start": interactive, "read": reads[0]}
                if more:
                    await wait_workers(app)
                    assert isinstance(app.screen, SolutionsScreen)
                    out["page"] = med(await page_down(app, frames, LineTable))
                    out["filter"] = med(await type_filter(app, frames, lambda: shown))
                await pilot.pause()
    finally:
        for name, original in originals.items():
            setattr(FleetModel, name, original)
    return out


async def bare_solutions(kind: type[BareTable], rows: list[tuple[str, ...]], haystacks: list[str]) -> dict[str, float]:
    table: Any = {BareTable: DataTable, BareFastTable: fast_table_class()}.get(kind)
    if table is None:
        from orbit_tui.line_table import LineTable

        table = LineTable
    t0 = time.perf_counter()
    app = kind(rows, haystacks)
    async with app.run_test(size=SIZE) as pilot:
        interactive, frames = await until_interactive(app, table, len(rows), t0, console=False)
        page = med(await page_down(app, frames, table))
        filters = med(await type_filter(app, frames, lambda: app.shown_at))
        await pilot.pause()
    return {"start": interactive, "page": page, "filter": filters}


def peak_memory(root: Path, count: int) -> float:
    """Peak RSS (MiB) of a fresh process that starts the console over ``root`` until interactive and its
    platform read and integrity check are done."""
    import subprocess

    done = subprocess.run(
        [sys.executable, __file__, "--memory", str(root), str(count)], capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def memory_main(root: str, count: int) -> None:
    """Print this process's peak RSS in MiB: ``VmHWM`` (``ru_maxrss`` would be the parent's at the fork: Linux
    keeps the larger across fork and exec)."""
    asyncio.run(orbit_solutions(Path(root), count, more=False))
    with open("/proc/self/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(peak_kib / 1024)




async def wait_workers(app: App[Any]) -> None:
    for _ in range(600):
        if not any(worker.is_running for worker in app.workers):
            return
        await asyncio.sleep(0.05)


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
    """The same cell texts the console shows, computed once (the bare widgets get them ready-made)."""
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

    if len(sys.argv) > 1 and sys.argv[1] == "--memory":
        memory_main(sys.argv[2], int(sys.argv[3]))
        return
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    load_before = os.getloadavg()[0]
    bare = {name: kind for name, kind in BARE_APPS.items() if kind is not BareFastTable or fast_table_class()}
    console: dict[int, list[dict[str, float]]] = {size: [] for size in FLEETS}
    widgets: dict[str, list[dict[str, float]]] = {name: [] for name in bare}
    memory: dict[int, list[float]] = {1_000: [], SOLUTIONS: []}
    cold: dict[int, list[dict[str, float]]] = {40: [], SOLUTIONS: []}
    rate_o, rate_b, lat_o, lat_b, worst_o, worst_b = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        roots, op_id = make_workspaces(Path(tmp))
        rows, haystacks = table_rows(roots[SOLUTIONS])
        lines = log_texts(roots[SOLUTIONS], op_id)
        first = measure(orbit_solutions(roots[SOLUTIONS], SOLUTIONS, more=False))  # the first start of all
        for kind in bare.values():  # warm-up: imports, page cache
            measure(bare_solutions(kind, rows, haystacks))
        for _ in range(runs):  # interleaved, so machine noise hits all alike
            for size in FLEETS:
                console[size].append(measure(orbit_solutions(roots[size], size, more=size != 1_000)))
            for size in (40, SOLUTIONS):  # cold: the solution cache removed first (it is written again meanwhile)
                (roots[size] / ".orbit" / "cache" / "solutions.bin").unlink(missing_ok=True)
                cold[size].append(measure(orbit_solutions(roots[size], size, more=False)))
            for name, kind in bare.items():
                widgets[name].append(measure(bare_solutions(kind, rows, haystacks)))
            for size in memory:
                memory[size].append(peak_memory(roots[size], size))
            rate, lat = measure(orbit_log(roots[SOLUTIONS], op_id))
            rate_o.append(rate)
            lat_o.append(med(lat))
            worst_o.append(max(lat))
            rate, lat = measure(bare_log(lines))
            rate_b.append(rate)
            lat_b.append(med(lat))
            worst_b.append(max(lat))
    ms = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731
    ms1 = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731

    def of(samples: list[dict[str, float]], key: str) -> float:
        return med([sample[key] for sample in samples])

    print("## Console at fleet scale (issue 17)\n")
    print(
        f"Machine: {machine()}. Medians of {runs} interleaved runs (`python bench/bench_tui.py {runs}`), "
        f"headless at {SIZE[0]}×{SIZE[1]}, each from a collected heap (`gc.collect()` first). "
        "Load average (1 min) at the start "
        f"{load_before:.1f}, at the end {os.getloadavg()[0]:.1f} (the machine is shared: read the ratios).\n"
    )
    big, small = console[SOLUTIONS], console[40]
    print("| what | 40 solutions | 1,000 | 10,000 | 10,000 ÷ 40 | target |")
    print("|---|---|---|---|---|---|")
    print(
        f"| start → interactive | {ms(of(small, 'start'))} | {ms(of(console[1_000], 'start'))} | "
        f"{ms(of(big, 'start'))} | **{of(big, 'start') / of(small, 'start'):.2f}×** | ≤ 1.3× |"
    )
    print(
        f"| of which reading and judging the solution files | {ms(of(small, 'read'))} | "
        f"{ms(of(console[1_000], 'read'))} | {ms(of(big, 'read'))} | {of(big, 'read') / of(small, 'read'):.1f}× | "
        "warm solution cache (decision 0070) |"
    )
    cs, cb = cold[40], cold[SOLUTIONS]
    print(
        f"| start → interactive, cold solution cache (removed first) | {ms(of(cs, 'start'))} | — | "
        f"{ms(of(cb, 'start'))} | {of(cb, 'start') / of(cs, 'start'):.2f}× (cold ÷ cold); "
        f"10,000 cold ÷ 10,000 warm {of(cb, 'start') / of(big, 'start'):.2f}× | reported |"
    )
    print(
        f"| of which the read, cold | {ms(of(cs, 'read'))} | — | {ms(of(cb, 'read'))} | "
        f"{of(cb, 'read') / of(cs, 'read'):.1f}× | |"
    )
    print(
        f"| start minus that read | {ms(of(small, 'start') - of(small, 'read'))} | — | "
        f"{ms(of(big, 'start') - of(big, 'read'))} | "
        f"**{(of(big, 'start') - of(big, 'read')) / (of(small, 'start') - of(small, 'read')):.2f}×** | |"
    )
    print(
        f"| filter keystroke → redrawn (median) | {ms1(of(small, 'filter'))} | — | {ms1(of(big, 'filter'))} | "
        f"{of(big, 'filter') / of(small, 'filter'):.2f}× | ≤ 50 ms at 10,000 |"
    )
    print(
        f"| scroll by a page → redrawn (median) | {ms1(of(small, 'page'))} | — | {ms1(of(big, 'page'))} | "
        f"{of(big, 'page') / of(small, 'page'):.2f}× | ≤ 30 ms at 10,000 |"
    )
    m1, m10 = med(memory[1_000]), med(memory[SOLUTIONS])
    print(f"| peak RSS, fresh process, start + platform read | — | {m1:.0f} MiB | {m10:.0f} MiB | "
          f"10,000 ÷ 1,000: **{m10 / m1:.2f}×** | ≤ 2× |")
    print(f"\nThe very first start at 10,000 (no earlier run in this process; page cache warm from making the "
          f"workspace): {ms(first['start'])}, of which the read {ms(first['read'])}.\n")
    print(f"Widgets side by side, the same {SOLUTIONS:,} rows of text ready-made, same run:\n")
    print("| widget | start → interactive | filter keystroke (median) | page down (median) |")
    print("|---|---|---|---|")
    for name, samples in widgets.items():
        print(f"| {name} | {ms(of(samples, 'start'))} | {ms1(of(samples, 'filter'))} | {ms1(of(samples, 'page'))} |")
    print()
    print("| log view | console | bare widget, same run | ratio |")
    print("|---|---|---|---|")
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
        "Raw per run (start at 40 / 10,000, s): "
        + ", ".join(f"{a['start']:.2f}/{b['start']:.2f}" for a, b in zip(small, big, strict=True))
        + "; peak RSS at 1,000 / 10,000 (MiB): "
        + ", ".join(f"{a:.0f}/{b:.0f}" for a, b in zip(memory[1_000], memory[SOLUTIONS], strict=True))
    )


if __name__ == "__main__":
    main()
