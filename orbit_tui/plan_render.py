"""Plans, rolls and resources → what the console shows of them (the confirmations' plan text, the detail's
resources table): pure, as the rest of ``orbit_tui.render``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orbit_ops.fleet.planned import PlannedSolution
from orbit_ops.fleet.preflight import Preflight
from orbit_tui.render import NOT_KNOWN, Cell, state_cell

RESOURCE_COLUMNS = ("kind", "name", "sync", "diff")


def resource_row(kind: str, name: str, sync: str, diff: Iterable[str]) -> tuple[Cell, ...]:
    """One resource of a solution, desired vs live: ``diff`` lists the field-level differences."""
    return (Cell(kind), Cell(name), state_cell(sync), Cell("; ".join(diff) or ("" if sync == "synced" else NOT_KNOWN)))


@dataclass(frozen=True)
class PlanEntry:
    """One resource a plan writes: ``create``/``update``, kind, name, and the field-level changes."""

    action: str
    kind: str
    name: str
    changes: tuple[str, ...]


@dataclass(frozen=True)
class PlanBlock:
    """One solution of a plan: its summary, the resources it writes, notes, or why it is refused."""

    solution: str
    summary: str
    state: str  # plan--create, plan--update, plan--muted (nothing to do) or plan--refused: the header's style
    entries: tuple[PlanEntry, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanModel:
    """A whole plan laid out for reading: blocks per solution, the ``orbit plan`` totals line, and the preflight
    block (the solutions lacking a variable their new image requires, as the engine words it) shown first."""

    blocks: tuple[PlanBlock, ...]
    totals: str
    preflight: tuple[str, ...] = ()

    @property
    def name_width(self) -> int:
        """The width of the name column, the same in every block so all of them line up."""
        return max((len(entry.name) for block in self.blocks for entry in block.entries), default=0)

    def lines(self) -> list[str]:
        """The plan as plain text, aligned as the modal shows it (creates on one line, updates one change a line)."""
        width = self.name_width
        lines: list[str] = list(self.preflight)
        for block in self.blocks:
            lines.append(f"{block.solution}  {block.summary}")
            lines += [f"    {note}" for note in block.notes]
            for entry in block.entries:
                changes = entry_changes(entry)
                head = f"    {entry.action:<6}  {entry.kind:<7}  {entry.name:<{width}}  "
                lines.append(head + (changes[0] if changes else ""))
                lines += [" " * len(head) + change for change in changes[1:]]
        return lines


def entry_changes(entry: PlanEntry) -> list[str]:
    """A create's description fits one line; an update lists each changed field on a line of its own."""
    if entry.action == "create":
        return [", ".join(entry.changes)] if entry.changes else []
    return list(entry.changes)


def plan_model(planned: Iterable[PlannedSolution], preflight: Preflight | None = None) -> PlanModel:
    """What provisioning would do, per solution (refusals with their reason), and the totals line.

    ``planned`` is ``orbit_ops.fleet.sweeps.plan_many``'s answer, or the solutions of a sweep's plan;
    ``preflight`` the plan's (a sweep's, or a roll's) preflight, whose lines head the plan.
    """
    blocks: list[PlanBlock] = []
    creates = updates = refused = count = 0
    for solution in planned:
        count += 1
        plan = solution.plan
        if plan is None:
            refused += 1
            blocks.append(PlanBlock(solution.id, "refused", "plan--refused", notes=(solution.refused or "",)))
            continue
        creates += plan.creates
        updates += plan.updates
        entries = tuple(
            PlanEntry(action.action, action.kind, action.name, tuple(action.changes))
            for action in plan.actions
            if action.action != "none"
        )
        state = "plan--update" if plan.updates else ("plan--create" if entries else "plan--muted")
        notes = tuple(f"note: {note}" for note in plan.notes)
        blocks.append(PlanBlock(solution.id, plan.summary(), state, entries, notes))
    return PlanModel(tuple(blocks), plan_totals(count, creates, updates, refused),
                     tuple(preflight.lines()) if preflight is not None else ())


def plan_lines(planned: Iterable[PlannedSolution], preflight: Preflight | None = None) -> list[str]:
    """The plan as plain text lines (its preflight first), the totals line last."""
    model = plan_model(planned, preflight)
    return [*model.lines(), model.totals]


def plan_totals(count: int, creates: int, updates: int, refused: int) -> str:
    return f"plan: {count} solution(s), {creates} to create, {updates} to update" + (
        f", {refused} refused" if refused else ""
    )


def roll_lines(changes: Iterable[tuple[str, str, str, str]], unchanged: Iterable[str], version: str) -> list[str]:
    """A roll's pin changes (id, component, before, after), aligned in columns, and the solutions already on
    ``version``. Before and after are the texts the engine gives (``PinChange.before_text``/``after_text``), so a
    pin that starts or stops floating says so here exactly as on the CLI."""
    rows = list(changes)
    id_width = max((len(row[0]) for row in rows), default=0)
    before_width = max((len(row[2]) for row in rows), default=0)
    lines = [
        f"{solution:<{id_width}}  {component}  {before:>{before_width}} → {after}"
        for solution, component, before, after in rows
    ]
    already = list(unchanged)
    if already:
        lines.append(f"already on {version}: {', '.join(already)}")
    return lines or ["nothing to change"]
