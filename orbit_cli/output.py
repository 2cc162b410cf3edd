"""How the CLI prints: JSON for scripts, rich tables on a terminal, plain aligned columns when piped.

Every line leaves through this module, and every value in it through ``orbit_ops.text.visible``: a value
read from a file, git, Azure or a log may hold terminal control sequences, which are shown, never acted on.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from orbit_ops.text import json_text, visible


def echo(message: str = "", *, err: bool = False, multiline: bool = True) -> None:
    """One line (or a block of lines) on stdout, or stderr with ``err``, control characters shown visibly."""
    click.echo(visible(message, multiline=multiline), err=err)


def print_json(value: Any) -> None:
    """Indented on a terminal; compact when piped (scripts parse it, and the C encoder is ~5× faster)."""
    if sys.stdout.isatty():
        click.echo(json_text(value, indent=2, sort_keys=False))
    else:
        click.echo(json_text(value, separators=(",", ":")))


class JsonList:
    """A JSON list printed as :func:`print_json` prints it, each item encoded as soon as it is made when stdout
    is piped (a command that makes its items while it waits for the platform then only joins them at the end)."""

    def __init__(self) -> None:
        self.indented = sys.stdout.isatty()

    def item(self, value: Any) -> Any:
        """What :meth:`print` takes for ``value``: its compact text when piped, else ``value`` itself."""
        return value if self.indented else json_text(value, separators=(",", ":"))

    def print(self, items: Sequence[Any]) -> None:
        """The list of ``items`` (each made by :meth:`item`), as ``print_json`` of their values."""
        if self.indented:
            click.echo(json_text(list(items), indent=2, sort_keys=False))
        else:
            click.echo("[" + ",".join(items) + "]")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None) -> None:
    """A table: rich on a terminal, tab-free aligned text otherwise (stable for grep and awk)."""
    cells = [["" if cell is None else visible(str(cell)) for cell in row] for row in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(visible(title)) if title else None, box=None, header_style="bold", pad_edge=False)
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in cells:
            # Text, not str: a value is never read as rich markup ('[link=…]' would make a hyperlink).
            table.add_row(*(Text(cell) for cell in row))
        Console().print(table)
        return
    widths = [max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)]
    if title:
        echo(title, multiline=False)
    click.echo("  ".join(header.upper().ljust(width) for header, width in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def warn(message: str) -> None:
    echo(f"warning: {message}", err=True)
