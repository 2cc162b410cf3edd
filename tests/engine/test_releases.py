"""Release records (append-only, atomic, comments kept) and platform manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from orbit_ops.catalog.releases import (
    ReleaseRecord,
    append_record,
    latest_record,
    list_manifests,
    load_manifest,
    load_records,
    newest_release,
    records_path,
    write_manifest,
)
from orbit_ops.errors import ConfigError, NotFoundError


def record(version: str, commit: str = "a" * 40) -> ReleaseRecord:
    return ReleaseRecord(
        component="agent",
        version=version,
        tag=f"agent/v{version}",
        commit=commit,
        image=f"oci:.orbit/registry/agent:{version}",
        digest="sha256:" + "b" * 64,
        registry="oci:.orbit/registry",
        run_id="run-1",
        built_at="2026-11-24T10:00:00Z",
        builder="local",
    )


def test_append_keeps_existing_text_and_orders_newest_last(tmp_path: Path) -> None:
    append_record(tmp_path, record("1.0.0"))
    path = records_path(tmp_path, "agent")
    path.write_text(path.read_text() + "# a note an operator wrote\n")
    append_record(tmp_path, record("1.1.0"))
    text = path.read_text()
    assert "# a note an operator wrote" in text
    assert [r.version for r in load_records(tmp_path, "agent")] == ["1.0.0", "1.1.0"]
    assert list(path.parent.glob(".*.tmp")) == []


def test_forced_rebuild_appends_and_the_newest_record_wins(tmp_path: Path) -> None:
    append_record(tmp_path, record("1.0.0", commit="a" * 40))
    append_record(tmp_path, record("1.0.0", commit="c" * 40))
    found = latest_record(load_records(tmp_path, "agent"), "1.0.0")
    assert found is not None and found.commit == "c" * 40


def test_newest_release_ignores_prereleases(tmp_path: Path) -> None:
    for version in ["1.9.0", "1.10.0", "2.0.0-rc.1"]:
        append_record(tmp_path, record(version))
    records = load_records(tmp_path, "agent")
    assert newest_release(records) == records[1]
    assert newest_release(records, include_prerelease=True) == records[2]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("- component: agent\n  version: 1.0.0\n", "record keys"),
        ("component: agent\n", "is a YAML list"),
        ("- [1, 2]\n", "record keys"),
    ],
)
def test_malformed_record_file_is_refused_and_left_untouched(tmp_path: Path, text: str, rule: str) -> None:
    path = records_path(tmp_path, "agent")
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        append_record(tmp_path, record("2.0.0"))
    assert rule in str(caught.value.rule)
    assert caught.value.path == path and caught.value.line == 1
    assert path.read_text() == text


def test_record_with_wrong_tag_names_its_line(tmp_path: Path) -> None:
    append_record(tmp_path, record("1.0.0"))
    path = records_path(tmp_path, "agent")
    path.write_text(path.read_text().replace("tag: agent/v1.0.0", "tag: agent/v9.9.9"))
    with pytest.raises(ConfigError, match=r"does not match agent/v1\.0\.0") as caught:
        load_records(tmp_path, "agent")
    line = path.read_text().splitlines()[caught.value.line - 1]  # type: ignore[operator]
    assert line.strip().startswith("tag:")


def test_manifest_round_trip_and_rules(tmp_path: Path) -> None:
    write_manifest(tmp_path, "2026.11", {"orbit": "1.2.1", "agent": "2.1.0"})
    manifest = load_manifest(tmp_path, "2026.11", ["orbit", "agent", "mc"])
    assert manifest.components == {"orbit": "1.2.1", "agent": "2.1.0"}
    assert load_manifest(tmp_path, "v2026.11", ["orbit", "agent", "mc"]).version == "2026.11"
    assert list_manifests(tmp_path) == ["2026.11"]
    with pytest.raises(NotFoundError, match=r"platform versions: 2026\.11"):
        load_manifest(tmp_path, "1", ["orbit"])
    with pytest.raises(ConfigError, match="unknown component 'agent'"):
        load_manifest(tmp_path, "2026.11", ["orbit"])
    path = tmp_path / "platform" / "v3.yaml"
    path.write_text("components:\n  orbit: latest\n")
    with pytest.raises(ConfigError, match="manifests pin exact versions") as caught:
        load_manifest(tmp_path, "3", ["orbit"])
    assert caught.value.line == 2
