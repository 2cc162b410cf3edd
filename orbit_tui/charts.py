"""The Components screen's chart: how the fleet's pins spread over each app component's versions.

One bar per version a solution's pin resolves to (a floating ``latest`` counted under what it runs), newest first,
its length the share of the fleet: "how far has 2.1.0 got" is seen, not computed. Rich's ``Bar`` draws it (half
blocks, so a share shows to half a cell); the newest release's bar is green, older ones yellow, a prerelease's
magenta.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.bar import Bar
from rich.table import Table
from rich.text import Text

from orbit_ops.versions import is_prerelease, parse_version
from orbit_ops.workspace import ComponentSummary

BAR_WIDTH = 40


def version_chart(summaries: Iterable[ComponentSummary]) -> Table:
    """A table: component, version, bar, count and share, for every app component that solutions pin."""
    table = Table.grid(padding=(0, 1))
    for column in ("component", "version", "bar", "count", "share"):
        table.add_column(column, justify="right" if column in ("count", "share") else "left")
    for summary in summaries:
        if not summary.solutions:
            continue
        first = True
        for version, count in summary.versions.items():
            parsed = parse_version(version)
            colour = ("magenta" if parsed is not None and is_prerelease(parsed)
                      else "green" if version == summary.latest_release else "yellow")
            table.add_row(Text(summary.name if first else "", style="bold"), Text(version),
                          Bar(summary.solutions, 0, count, width=BAR_WIDTH, color=colour),
                          str(count), f"{count * 100 // summary.solutions}%")
            first = False
        unresolved = summary.solutions - sum(summary.versions.values())
        if unresolved:
            table.add_row(Text(summary.name if first else "", style="bold"), Text("(nothing released)", style="dim"),
                          Bar(summary.solutions, 0, unresolved, width=BAR_WIDTH, color="red"), str(unresolved),
                          f"{unresolved * 100 // summary.solutions}%")
    return table
