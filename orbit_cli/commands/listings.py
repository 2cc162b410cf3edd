"""The listings: ``components``, ``tags``, ``releases``, ``solutions`` and ``names`` (SPEC §6.1)."""

from __future__ import annotations

import sys
from typing import Any

import click

from orbit_cli.options import Settings, json_option, pass_settings, report_ignored, report_invalid
from orbit_cli.output import echo, print_json, print_table, warn


@click.command()
@json_option
@pass_settings
def components(settings: Settings) -> None:
    """Components with their newest tag and release, unreleased tags and adoption."""
    from orbit_ops.workspace import summarize_components

    workspace = settings.open()
    workspace.look_ahead()  # the solution files looked at (a helper, for thousands) while git lists the tags
    rows = summarize_components(workspace)
    report_ignored(workspace)
    report_invalid(workspace.solution_heads().invalid)  # from the cache's heads when they hold: no spec built
    if settings.json:
        print_json([row.to_json() for row in rows])
        return
    print_table(
        ["component", "latest tag", "latest release", "unreleased", "on latest"],
        [
            [
                row.name,
                row.latest_tag or "-",
                row.latest_release or "-",
                ", ".join(row.unreleased) or "-",
                f"{row.solutions_on_latest}/{row.solutions}",
            ]
            for row in rows
        ],
    )


@click.command()
@click.argument("component")
@json_option
@pass_settings
def tags(settings: Settings, component: str) -> None:
    """Release tags of COMPONENT, newest first (SemVer order)."""
    from orbit_ops.workspace import pin_counts

    workspace = settings.open()
    workspace.config.component(component)
    workspace.look_ahead()
    scan = workspace.tags()
    report_ignored(workspace)
    counts = pin_counts(workspace, component)
    report_invalid(workspace.solution_heads().invalid)
    rows = []
    for tag in scan.of(component):
        record = workspace.release_of(component, tag.version)
        rows.append(
            {
                "version": tag.version,
                "tag": tag.tag,
                "commit": tag.commit,
                "annotated": tag.annotated,
                "prerelease": tag.prerelease,
                "released": record is not None,
                "date": tag.date,
                "digest": record.digest if record else None,
                "built_at": record.built_at if record else None,
                "solutions": counts.get(tag.version, 0),
            }
        )
    if settings.json:
        print_json(rows)
        return
    print_table(
        ["version", "commit", "date", "kind", "released", "solutions"],
        [
            [
                row["version"],
                str(row["commit"])[:12],
                str(row["date"])[:10],
                "annotated" if row["annotated"] else "lightweight",
                str(row["built_at"] or "no")[:16].replace("T", " "),
                row["solutions"] or "",
            ]
            for row in rows
        ],
        title=f"{component}: {len(rows)} tags",
    )


@click.command()
@click.argument("component", required=False)
@click.option("--verify", is_flag=True, help="Also check every record against its tag (moved tags are reported).")
@json_option
@pass_settings
def releases(settings: Settings, component: str | None, verify: bool) -> None:
    """Release records of COMPONENT (or of every component), oldest first."""
    from orbit_ops.fleet.integrity import verify_records

    workspace = settings.open()
    names = [workspace.config.component(component).name] if component else sorted(workspace.config.components)
    records = [record for name in names for record in workspace.records().get(name, [])]
    problems = verify_records(workspace, names) if verify else []
    if settings.json:
        print_json([record.to_json() for record in records])
    else:
        print_table(
            ["component", "version", "commit", "digest", "built at", "builder"],
            [
                [r.component, r.version, r.commit[:12], r.digest.removeprefix("sha256:")[:12], r.built_at, r.builder]
                for r in records
            ],
        )
    for problem in problems:
        warn(f"{problem.record.tag}: {problem.problem}")
    if problems:
        sys.exit(1)


@click.command()
@json_option
@pass_settings
def solutions(settings: Settings) -> None:
    """Solutions with their pinned image tags (``latest`` shown as floating)."""
    workspace = settings.open()
    specs = workspace.solutions()
    invalid = workspace.invalid_solutions()
    entries: list[tuple[str, dict[str, Any], list[str]]] = [
        (
            spec.id,
            {"id": spec.id, "display_name": spec.display_name, "images": dict(spec.images), "file": str(spec.path),
             "labels": dict(spec.labels)},
            [spec.id, spec.display_name, spec.images["orbit_tag"], spec.images["agent_tag"], spec.images["mc_tag"],
             ",".join(f"{key}={value}" for key, value in sorted(spec.labels.items()))],
        )
        for spec in specs
    ]
    # The keys of a valid entry are there too (empty), so a script reading them meets no missing key.
    entries += [(entry.id, {**entry.to_json(), "display_name": None, "images": {}, "labels": {}},
                 [entry.id, "(invalid: see the warning)", "", "", "", ""]) for entry in invalid]
    entries.sort(key=lambda entry: entry[0])
    if settings.json:
        print_json([body for _, body, _ in entries])
        return
    report_invalid(invalid)
    print_table(
        ["id", "name", "orbit", "agent", "mc", "labels"],
        [row for _, _, row in entries],
        title=f"{len(specs)} solutions" + (f" and {len(invalid)} invalid file(s)" if invalid else ""),
    )


@click.command()
@click.argument("solution_id")
@json_option
@pass_settings
def names(settings: Settings, solution_id: str) -> None:
    """Azure names of SOLUTION_ID (apps, shares, environment storages)."""
    from orbit_ops.errors import InputError
    from orbit_ops.names import SOLUTION_ID_RULE, azure_names, is_valid_solution_id

    if not is_valid_solution_id(solution_id):
        raise InputError(f"invalid solution id '{solution_id}' ({SOLUTION_ID_RULE})")
    result = azure_names(solution_id)
    if settings.json:
        print_json(result.to_json())
        return
    echo(f"id        {result.id}")
    echo(f"h         {result.h}")
    for component, name in result.apps.items():
        echo(f"app       {name}  ({component})")
    for role, name in result.shares.items():
        echo(f"share     {name}  ({role})")
    for link, name in result.storages.items():
        echo(f"storage   {name}  ({link.replace('_', ' ')})")
