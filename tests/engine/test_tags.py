"""Release tag discovery: one for-each-ref, peeled commits, SemVer order, bad tags reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import git

from orbit_ops.catalog.tags import scan_tags
from orbit_ops.errors import InputError, NotFoundError


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "platform"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commits: dict[str, str] = {}
    for version, annotated in [("1.0.0", True), ("1.9.0", False), ("1.10.0", True), ("2.0.0-rc.1", False),
                               ("2.0.0", True)]:
        (root / "VERSION").write_text(version)
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"agent {version}")
        commits[version] = git(root, "rev-parse", "HEAD")
        if annotated:
            git(root, "tag", "-a", f"agent/v{version}", "-m", version)
        else:
            git(root, "tag", f"agent/v{version}")
    git(root, "tag", "mc/v1.0.0")
    git(root, "tag", "agent/v2.1")  # not SemVer
    git(root, "tag", "agent/vnext")  # not SemVer
    git(root, "tag", "unrelated-tag")  # not a component tag: not ours to report
    git(root, "tag", "-a", "agent/v3.0.0", "-m", "tag of a tag", "agent/v2.0.0")  # annotated tag of a tag
    (root / "commits.txt").write_text("\n".join(f"{k} {v}" for k, v in commits.items()))
    return root


def _commits(repo: Path) -> dict[str, str]:
    return dict(line.split() for line in (repo / "commits.txt").read_text().splitlines())


def test_tags_are_newest_first_by_semver_with_peeled_commits(repo: Path) -> None:
    scan = scan_tags(repo, ["agent", "mc", "orbit"])
    agent = scan.of("agent")
    assert [tag.version for tag in agent] == ["3.0.0", "2.0.0", "2.0.0-rc.1", "1.10.0", "1.9.0", "1.0.0"]
    commits = _commits(repo)
    for tag in agent:
        expected = commits["2.0.0"] if tag.version == "3.0.0" else commits[tag.version]
        assert tag.commit == expected, tag.tag
    assert {tag.version: tag.annotated for tag in agent} == {
        "3.0.0": True, "2.0.0": True, "2.0.0-rc.1": False, "1.10.0": True, "1.9.0": False, "1.0.0": True,
    }
    assert [tag.prerelease for tag in agent].count(True) == 1
    assert scan.of("orbit") == []
    assert [tag.tag for tag in scan.of("mc")] == ["mc/v1.0.0"]


def test_unparsable_tags_are_reported_once(repo: Path) -> None:
    scan = scan_tags(repo, ["agent", "mc"])
    assert sorted(item.tag for item in scan.ignored) == ["agent/v2.1", "agent/vnext"]
    message = scan.ignored_message()
    assert message is not None and "2 tag(s)" in message


def test_discovery_is_one_git_process(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import git.cmd as git_cmd

    spawned: list[list[str]] = []
    real_popen = git_cmd.safer_popen

    def counting_popen(command: list[str], *args: object, **kwargs: object) -> object:
        spawned.append(list(command))
        return real_popen(command, *args, **kwargs)

    git(repo, "tag", "-d", "agent/v3.0.0")  # no tag-of-a-tag: nothing needs a second peel
    monkeypatch.setattr(git_cmd, "safer_popen", counting_popen)
    scan = scan_tags(repo, ["agent", "mc", "orbit"])
    assert [command[1] for command in spawned] == ["for-each-ref"]
    assert len(scan.of("agent")) == 5


def test_latest_skips_prereleases_and_missing_versions_list_nearest(repo: Path) -> None:
    scan = scan_tags(repo, ["agent"])
    git(repo, "tag", "-d", "agent/v3.0.0")
    scan = scan_tags(repo, ["agent"])
    assert scan.resolve("agent", None).version == "2.0.0"
    assert scan.resolve("agent", "latest").version == "2.0.0"
    assert scan.resolve("agent", "2.0.0-rc.1").prerelease
    with pytest.raises(NotFoundError, match=r"no tag agent/v1\.5\.0; nearest: 1\.10\.0, 1\.9\.0, 1\.0\.0"):
        scan.resolve("agent", "1.5.0")
    with pytest.raises(NotFoundError, match="not a version"):
        scan.resolve("agent", "v2")


def test_a_tag_on_a_tree_or_a_blob_is_named_as_such(repo: Path) -> None:
    tree = git(repo, "rev-parse", "HEAD^{tree}")
    blob = git(repo, "rev-parse", "HEAD:VERSION")
    git(repo, "tag", "agent/v9.9.9", tree)  # lightweight, on a tree
    git(repo, "tag", "-a", "agent/v9.9.8", "-m", "annotated, on a tree", tree)
    git(repo, "tag", "mc/v9.9.7", blob)
    git(repo, "tag", "-a", "agent/v9.9.6", "-m", "a tag of a tag on a tree", "agent/v9.9.8")
    scan = scan_tags(repo, ["agent", "mc"])
    reasons = {item.tag: item.reason for item in scan.ignored}
    rule = "not a commit (tags must name commits)"
    assert reasons == {
        "agent/v2.1": "not <component>/v<semver>",
        "agent/vnext": "not <component>/v<semver>",
        "agent/v9.9.9": f"points at a tree, {rule}",
        "agent/v9.9.8": f"points at a tree, {rule}",
        "agent/v9.9.6": f"points at a tree, {rule}",
        "mc/v9.9.7": f"points at a blob, {rule}",
    }
    assert [tag.version for tag in scan.of("agent")][:2] == ["3.0.0", "2.0.0"]  # the release tags are all there
    message = scan.ignored_message()
    assert message is not None
    assert "ignored 2 tag(s) that are not <component>/v<semver>: agent/v2.1, agent/vnext" in message
    assert f"agent/v9.9.9 points at a tree, {rule}" in message
    assert f"mc/v9.9.7 points at a blob, {rule}" in message
    with pytest.raises(InputError, match=r"^agent/v9\.9\.9 points at a tree, not a commit \(tags must name commits\)"):
        scan.resolve("agent", "9.9.9")
