"""How the CLI prints: JSON for scripts, rich tables on a terminal, plain aligned columns when piped."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click


def print_json(value: Any) -> None:
    """Indented on a terminal; compact when piped (scripts parse it, and the C encoder is ~5× faster)."""
    if sys.stdout.isatty():
        click.echo(json.dumps(value, indent=2, sort_keys=False))
    else:
        click.echo(json.dumps(value, separators=(",", ":")))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None) -> None:
    """A table: rich on a terminal, tab-free aligned text otherwise (stable for grep and awk)."""
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, box=None, header_style="bold", pad_edge=False)
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in cells:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)]
    if title:
        click.echo(title)
    click.echo("  ".join(header.upper().ljust(width) for header, width in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)
