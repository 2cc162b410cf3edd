"""The solution cache's heads (issue 17, decision 0094): what a list shows of every solution file (ids, names, pins,
labels, the invalid files' errors), given back without a file read or a spec built only while every file is as the
read that made them found it; otherwise nothing, and the set is read as before."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_solution_cache import CONFIG, cache_file, good

from orbit_ops.config import file_scan, solution_cache, solution_heads
from orbit_ops.config.load import load_config, load_solution_set
from orbit_ops.config.model import SolutionHead, SolutionHeads, SolutionSet, SolutionSpec, WorkspaceConfig
from orbit_ops.workspace import Workspace, pin_counts, summarize_components

SOLUTIONS = {
    "acme-corp.yaml": good("acme-corp", "Acme"),
    "globex.yaml": good("globex", "Globex").replace("ring: canary", "ring: main, tier: gold"),
    "initech.yml": good("initech").replace('agent_tag: "2.1.0"', 'agent_tag: "1.0.0"'),
    "broken.yaml": "id: broken\nimages: {agent_tag: 1\n",  # YAML syntax
    "twin.yaml": "id: acme-corp\n",  # id differs from its file name
    "acme-corp.yml": good("acme-corp"),  # a second file claiming a taken id
}


@pytest.fixture(autouse=True)
def _no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by a test are seconds young; trust them at once (the window has its own test)."""
    monkeypatch.setattr(solution_cache, "RACY_NS", 0)


def shown(listed: SolutionSet | SolutionHeads) -> tuple[object, ...]:
    """Everything a list shows of a set or of its heads."""
    return (
        [(item.id, item.display_name, item.images, item.labels) for item in listed.valid],
        [(entry.id, entry.path, str(entry.error), entry.error.line, entry.error.rule) for entry in listed.invalid],
        listed.stamp,
    )


def loaded(make_workspace: Callable[..., Path], solutions: dict[str, str] | None = None) -> WorkspaceConfig:
    """A workspace whose set has been read once (the cache written)."""
    config = load_config(make_workspace(config=CONFIG, solutions=SOLUTIONS if solutions is None else solutions))
    load_solution_set(config)
    solution_cache.wait_for_writes()
    return config


def test_the_heads_are_what_the_set_shows(make_workspace: Callable[..., Path]) -> None:
    config = loaded(make_workspace)
    heads = solution_heads.read_cached_heads(config)
    assert heads is not None and all(isinstance(head, SolutionHead) for head in heads.valid)  # no spec built
    expected = load_solution_set(config)
    assert shown(heads) == shown(expected)
    assert [entry.id for entry in heads.invalid] == ["acme-corp.yml", "broken", "twin"]
    assert heads.valid[1].pin("agent") == "2.1.0" and heads.valid[2].pin("agent") == "1.0.0"


@pytest.mark.parametrize("change", ["written", "touched", "added", "removed", "replaced", "made a link"])
def test_no_heads_once_a_file_changed(make_workspace: Callable[..., Path], change: str) -> None:
    config = loaded(make_workspace)
    folder = config.solutions_dir
    path = folder / "globex.yaml"
    if change == "written":
        path.write_text(good("globex", "Globex, renamed"))
    elif change == "touched":
        info = path.stat()
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))
    elif change == "added":
        (folder / "hooli.yaml").write_text(good("hooli"))
    elif change == "removed":
        path.unlink()
    elif change == "replaced":  # same size and mtime, another inode (an editor's save)
        info = path.stat()
        other = folder / ".next"
        other.write_text(path.read_text())
        os.utime(other, ns=(info.st_atime_ns, info.st_mtime_ns))
        os.replace(other, path)
    else:
        target = folder / "globex.real"
        path.rename(target)
        path.symlink_to(target.name)
    assert solution_heads.read_cached_heads(config) is None
    load_solution_set(config)  # read again: the heads are those of the files now, unless a link is among them
    heads = solution_heads.read_cached_heads(config)
    if change == "made a link":
        assert heads is None  # a link's target may change behind it: never trusted
    else:
        assert heads is not None and shown(heads) == shown(load_solution_set(config))


def test_no_heads_of_files_too_young_to_be_trusted(make_workspace: Callable[..., Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solution_cache, "RACY_NS", 3600 * 10**9)  # every file changed "just now"
    config = loaded(make_workspace)
    assert solution_heads.read_cached_heads(config) is None
    monkeypatch.setattr(solution_cache, "RACY_NS", 0)  # the window has passed
    load_solution_set(config)
    solution_cache.wait_for_writes()
    assert solution_heads.read_cached_heads(config) is not None


def test_no_heads_under_another_orbit_yaml(make_workspace: Callable[..., Path]) -> None:
    config = loaded(make_workspace)
    (config.root / "orbit.yaml").write_text(CONFIG.replace("FEATURE: on-by-default", "FEATURE: off-by-default"))
    assert solution_heads.read_cached_heads(load_config(config.root)) is None


def test_no_heads_kept_of_an_error_that_would_show_a_secret(make_workspace: Callable[..., Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (solution_cache, solution_heads):  # the entries' and the heads' writers
        monkeypatch.setattr(module, "redact", lambda text: text.replace("syntax", "***"))
    config = loaded(make_workspace)
    assert b"syntax" not in cache_file(config.root).read_bytes()
    assert solution_heads.read_cached_heads(config) is None


@pytest.mark.parametrize("damage", ["a bit flipped in the heads", "truncated in the heads"])
def test_damaged_heads_are_not_used_and_written_again(make_workspace: Callable[..., Path], damage: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    config = loaded(make_workspace)
    file = cache_file(config.root)
    blob = file.read_bytes()
    at = solution_cache._HEAD + 10
    file.write_bytes(blob[:at] + bytes([blob[at] ^ 1]) + blob[at + 1:] if "flipped" in damage else blob[:at])
    assert solution_heads.read_cached_heads(config) is None
    read: list[str] = []
    real = solution_cache.read_solution_file
    monkeypatch.setattr(solution_cache, "read_solution_file", lambda folder, path: (read.append(path.name),
                                                                                    real(folder, path))[1])
    expected = load_solution_set(config)
    if "flipped" in damage:
        assert "acme-corp.yaml" not in read  # the entries were whole: used
    solution_cache.wait_for_writes()
    heads = solution_heads.read_cached_heads(config)
    assert heads is not None and shown(heads) == shown(expected)


def test_a_helper_process_looks_at_thousands_of_files(make_workspace: Callable[..., Path],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    config = loaded(make_workspace)
    monkeypatch.setattr(file_scan, "HELPER_FILES", 1)
    monkeypatch.setattr(file_scan, "cores", lambda: 2)
    started: list[list[str]] = []
    real = file_scan.subprocess.Popen

    def spy(args: list[str], **kwargs: object) -> object:
        started.append(args)
        return real(args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(file_scan.subprocess, "Popen", spy)
    heads = solution_heads.read_cached_heads(config)
    assert len(started) == 1 and started[0][-1] == str(config.solutions_dir)
    assert heads is not None and shown(heads) == shown(load_solution_set(config))
    (config.solutions_dir / "globex.yaml").write_text(good("globex", "Globex, renamed"))
    assert solution_heads.read_cached_heads(config) is None  # the helper saw the change


HELPERS = {
    "cannot start": "",
    "fails": "#!/bin/sh\nexit 3\n",
    "answers nonsense": "#!/bin/sh\necho nonsense\n",
    "answers a number": "#!/bin/sh\nprintf 'i\\001\\000\\000\\000'\n",  # marshal's 1
    "hangs": "#!/bin/sh\nexec sleep 30\n",
}


@pytest.mark.parametrize("helper", list(HELPERS))
def test_a_helper_that_fails_is_done_without(make_workspace: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path, helper: str) -> None:
    config = loaded(make_workspace)
    monkeypatch.setattr(file_scan, "HELPER_FILES", 1)
    monkeypatch.setattr(file_scan, "cores", lambda: 2)
    monkeypatch.setattr(file_scan, "HELPER_SECONDS", 0.5)
    fake = tmp_path / "python"
    fake.write_text(HELPERS[helper])
    fake.chmod(0o600 if helper == "cannot start" else 0o700)
    monkeypatch.setattr(sys, "executable", str(fake))
    started = time.monotonic()
    heads = solution_heads.read_cached_heads(config)
    assert heads is not None and shown(heads) == shown(load_solution_set(config))
    assert time.monotonic() - started < 5


def test_a_look_begun_early_sees_the_files_as_they_were_then(make_workspace: Callable[..., Path]) -> None:
    config = loaded(make_workspace)
    workspace = Workspace(config)
    workspace.look_ahead()
    heads = workspace.cached_heads()
    assert heads is not None and shown(heads) == shown(load_solution_set(config))
    assert workspace.solution_heads() is heads  # asked once per refresh
    (config.solutions_dir / "globex.yaml").write_text(good("globex", "Globex, renamed"))
    workspace.refresh_solutions()
    assert workspace.cached_heads() is None
    assert all(isinstance(spec, SolutionSpec) for spec in workspace.solution_heads().valid)  # the set, read
    assert workspace.cached_heads() is None  # the set is at hand: no heads are looked for


def test_component_summaries_and_pin_counts_are_the_same_from_the_heads(make_workspace: Callable[..., Path]) -> None:
    config = loaded(make_workspace)
    from_heads = Workspace(config)
    assert all(isinstance(head, SolutionHead) for head in from_heads.solution_heads().valid)
    from_specs = Workspace(config)
    from_specs.solution_set()
    assert summarize_components(from_heads) == summarize_components(from_specs)
    assert pin_counts(from_heads, "agent") == pin_counts(from_specs, "agent") == {"2.1.0": 2, "1.0.0": 1}
    assert from_heads._solutions is None  # no spec was built for them
