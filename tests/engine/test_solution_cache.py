"""Solution files read once (issue 17, decision 0070): the cache under ``.orbit/`` gives exactly what reading the
files gives, and a file is read again whenever it, ``orbit.yaml`` or the code changed."""

from __future__ import annotations

import json
import marshal
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import MINIMAL_CONFIG

import orbit_ops.config.load as load_module
from orbit_ops.config import solution_cache
from orbit_ops.config.load import load_config, load_solution_set
from orbit_ops.config.model import SolutionSet, WorkspaceConfig

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
id: {id}
display_name: {name}
labels: {{ring: canary}}
images: {{agent_tag: "2.1.0"}}
env:
  orbit: {{PUBLIC_BASE_URL: "https://{id}.example.com", LOG_LEVEL: info}}
secrets:
  agent:
    db-password: {{keyVaultUrl: "https://orbit-kv.vault.azure.net/secrets/db-password"}}
"""
CONFIG = MINIMAL_CONFIG + "  env:\n    orbit: {LOG_LEVEL: info, FEATURE: on-by-default}\n"


def good(solution_id: str, name: str = "A customer") -> str:
    return GOOD.format(id=solution_id, name=name)


@pytest.fixture(autouse=True)
def _no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by a test are seconds young; trust them at once (the window has its own test)."""
    monkeypatch.setattr(solution_cache, "RACY_NS", 0)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the solution files a load of the set actually opened and read, in order."""
    seen: list[str] = []
    real = solution_cache.read_solution_file

    def spy(folder: Path, path: Path) -> tuple[str, os.stat_result]:
        seen.append(path.name)
        return real(folder, path)

    monkeypatch.setattr(solution_cache, "read_solution_file", spy)
    yield seen


def uncached(config: WorkspaceConfig) -> SolutionSet:
    """What reading every file gives, with no cache at all (the code before the cache, in effect)."""
    from orbit_ops.config.model import InvalidSolution, SolutionSpec
    from orbit_ops.errors import ConfigError

    invalid: list[InvalidSolution] = []
    solutions: dict[str, SolutionSpec] = {}
    for path in load_module.solution_files(config):
        stem = path.name.rsplit(".", 1)[0]
        try:
            spec = load_module.load_solution(config, path)
        except ConfigError as exc:
            invalid.append(InvalidSolution(stem, path, exc))
            continue
        if spec.id in solutions:
            invalid.append(InvalidSolution(path.name, path, ConfigError(
                path, f"duplicate solution id '{spec.id}' (also {solutions[spec.id].path.name})", line=1,
                rule="one file per solution id")))
            continue
        solutions[spec.id] = spec
    return SolutionSet([solutions[key] for key in sorted(solutions)], invalid)


def same(left: SolutionSet, right: SolutionSet) -> None:
    assert left.valid == right.valid
    assert [(entry.id, entry.path, str(entry.error), entry.error.line, entry.error.rule) for entry in left.invalid] \
        == [(entry.id, entry.path, str(entry.error), entry.error.line, entry.error.rule) for entry in right.invalid]


def cache_file(root: Path) -> Path:
    """The cache file, once the writes this process started ended (they run on a thread of their own)."""
    solution_cache.wait_for_writes()
    return root / ".orbit" / "cache" / "solutions.bin"


def entries(root: Path) -> dict[str, Any]:
    """The entries of the cache file, read as the cache reads them."""
    payload = solution_cache._entries_part(cache_file(root).read_bytes())
    assert payload is not None
    found: dict[str, Any] = marshal.loads(payload)[1]
    return found


def write_entries(root: Path, key: str, found: dict[str, Any]) -> None:
    """A cache file holding ``found`` under ``key``, and no heads."""
    cache_file(root).write_bytes(solution_cache._pack(0, marshal.dumps((key, None)), marshal.dumps((key, found))))


def workspace(make_workspace: Callable[..., Path]) -> Path:
    root = make_workspace(config=CONFIG, solutions={
        "acme-corp.yaml": good("acme-corp", "Acme"),
        "globex.yaml": good("globex", "Globex"),
        "initech.yml": good("initech"),
        "broken.yaml": "id: broken\nimages: {agent_tag: 1\n",  # YAML syntax
        "typo.yaml": "id: typo\nimagse: {agent_tag: '1.0.0'}\n",
        "twin.yaml": "id: acme-corp\n",  # id differs from its file name
    })
    folder = root / "solutions"
    (folder / "acme-corp.yml").write_text(good("acme-corp"))  # a second file claiming a taken id
    os.symlink("/etc/passwd", folder / "outside.yaml")  # a link out of solutions_dir: never read
    os.symlink("globex.yaml", folder / "alias.yaml")  # a link inside it: read, never cached
    (folder / "folder.yaml").mkdir()
    return root


def test_warm_cache_gives_what_reading_the_files_gives_and_reads_nothing(make_workspace: Callable[..., Path],
                                                                       reads: list[str]) -> None:
    root = workspace(make_workspace)
    config = load_config(root)
    cold = load_solution_set(config)
    assert cache_file(root).is_file()
    same(cold, uncached(config))
    reads.clear()
    warm = load_solution_set(config)
    same(warm, cold)
    # Only what is not a regular file is read again: the link inside solutions_dir (its target may change
    # behind it), the link out of it and the folder (each reported, never opened).
    assert sorted(reads) == ["alias.yaml", "folder.yaml", "outside.yaml"]
    assert [entry.id for entry in warm.invalid] == ["acme-corp.yml", "alias", "broken", "folder", "outside",
                                                   "twin", "typo"]
    assert os.stat(cache_file(root)).st_mode & 0o777 == 0o600


def test_a_changed_file_is_read_again(make_workspace: Callable[..., Path], reads: list[str]) -> None:
    root = make_workspace(config=CONFIG, solutions={"acme-corp.yaml": good("acme-corp"), "globex.yaml": good("globex")})
    config = load_config(root)
    load_solution_set(config)
    (root / "solutions" / "acme-corp.yaml").write_text(good("acme-corp", "Acme, renamed"))
    reads.clear()
    result = load_solution_set(config)
    assert reads == ["acme-corp.yaml"]
    assert result.valid[0].display_name == "Acme, renamed"
    same(result, uncached(config))


def test_same_content_with_a_new_mtime_is_read_again(make_workspace: Callable[..., Path], reads: list[str]) -> None:
    root = make_workspace(config=CONFIG, solutions={"acme-corp.yaml": good("acme-corp"), "globex.yaml": good("globex")})
    config = load_config(root)
    load_solution_set(config)
    path = root / "solutions" / "globex.yaml"
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))
    reads.clear()
    load_solution_set(config)
    assert reads == ["globex.yaml"]


def test_a_file_replaced_by_another_with_the_same_size_and_mtime_is_read_again(
        make_workspace: Callable[..., Path], reads: list[str]) -> None:
    root = make_workspace(config=CONFIG, solutions={"acme-corp.yaml": good("acme-corp", "Acme 1")})
    config = load_config(root)
    load_solution_set(config)
    path = root / "solutions" / "acme-corp.yaml"
    info = path.stat()
    other = root / "solutions" / ".next"
    other.write_text(good("acme-corp", "Acme 2"))  # same size
    os.utime(other, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.replace(other, path)  # a new inode (an editor's or write_pins' save)
    reads.clear()
    assert load_solution_set(config).valid[0].display_name == "Acme 2"
    assert reads == ["acme-corp.yaml"]


def test_deleted_and_added_files(make_workspace: Callable[..., Path], reads: list[str]) -> None:
    root = make_workspace(config=CONFIG, solutions={"acme-corp.yaml": good("acme-corp"), "globex.yaml": good("globex")})
    config = load_config(root)
    load_solution_set(config)
    (root / "solutions" / "acme-corp.yaml").unlink()
    (root / "solutions" / "initech.yaml").write_text(good("initech"))
    reads.clear()
    result = load_solution_set(config)
    assert [spec.id for spec in result.valid] == ["globex", "initech"]
    assert reads == ["initech.yaml"]
    assert set(entries(root)) == {"globex.yaml", "initech.yaml"}


def test_an_invalid_file_made_valid(make_workspace: Callable[..., Path], reads: list[str]) -> None:
    root = make_workspace(config=CONFIG, solutions={"acme-corp.yaml": "id: acme-corp\nshare_quota_gib: 0\n"})
    config = load_config(root)
    first = load_solution_set(config)
    assert first.valid == [] and [entry.error.line for entry in first.invalid] == [2]
    reads.clear()
    again = load_solution_set(config)
    assert reads == [] and str(again.invalid[0].error) == str(first.invalid[0].error)
    (root / "solutions" / "acme-corp.yaml").write_text(good("acme-corp"))
    fixed = load_solution_set(config)
    assert [spec.id for spec in fixed.valid] == ["acme-corp"] and fixed.invalid == []
    assert reads == ["acme-corp.yaml"]


def test_a_change_of_the_defaults_in_orbit_yaml_reads_every_file_again(make_workspace: Callable[..., Path],
                                                                     reads: list[str]) -> None:
    root = make_workspace(config=CONFIG, solutions={"acme-corp.yaml": good("acme-corp"), "globex.yaml": good("globex")})
    load_solution_set(load_config(root))
    (root / "orbit.yaml").write_text(CONFIG.replace('orbit_tag: "1.0.0"', 'orbit_tag: "1.1.0"'))
    reads.clear()
    config = load_config(root)
    result = load_solution_set(config)
    assert reads == ["acme-corp.yaml", "globex.yaml"]
    assert {spec.images["orbit_tag"] for spec in result.valid} == {"1.1.0"}
    same(result, uncached(config))


def test_a_default_env_value_comes_from_orbit_yaml(make_workspace: Callable[..., Path], reads: list[str]) -> None:
    """An inherited value is kept as a mark, so a solution's env is the current orbit.yaml's in the same order."""
    root = make_workspace(config=CONFIG, solutions={"acme-corp.yaml": good("acme-corp")})
    config = load_config(root)
    cold = load_solution_set(config)
    assert list(cold.valid[0].env["orbit"].items()) == [
        ("LOG_LEVEL", "info"), ("FEATURE", "on-by-default"), ("PUBLIC_BASE_URL", "https://acme-corp.example.com")]
    reads.clear()
    warm = load_solution_set(config)
    assert reads == [] and list(warm.valid[0].env["orbit"].items()) == list(cold.valid[0].env["orbit"].items())


def test_another_version_of_orbit_reads_every_file_again(make_workspace: Callable[..., Path], reads: list[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_workspace(config=CONFIG, solutions={"acme-corp.yaml": good("acme-corp")})
    config = load_config(root)
    load_solution_set(config)
    monkeypatch.setattr(solution_cache, "__version__", "99.0.0")
    reads.clear()
    load_solution_set(config)
    assert reads == ["acme-corp.yaml"]
    monkeypatch.setattr(solution_cache, "_code_digest", lambda: "other code")
    reads.clear()
    load_solution_set(config)
    assert reads == ["acme-corp.yaml"]


@pytest.mark.parametrize("damage", [
    b"", b"\x00\xff garbage", b"orbitsc1" + bytes(32) + b"payload", "truncated", "a bit flipped",
    "not marshal data", "another key", "entries of the wrong shape",
])
def test_a_corrupt_cache_is_ignored_and_replaced(make_workspace: Callable[..., Path], reads: list[str],
                                                 damage: bytes | str) -> None:
    root = workspace(make_workspace)
    config = load_config(root)
    expected = uncached(config)
    load_solution_set(config)
    blob = cache_file(root).read_bytes()
    key = solution_cache._key(config)
    if damage == "truncated":
        damage = blob[:len(blob) // 2]
    elif damage == "a bit flipped":
        at = len(blob) - 100  # in the entries' payload
        damage = blob[:at] + bytes([blob[at] ^ 1]) + blob[at + 1:]
    elif damage == "not marshal data":
        payload = b"\xff\xfe not marshal"
        damage = solution_cache._pack(0, payload, payload)
    elif damage == "another key":
        write_entries(root, "another key", entries(root))
        damage = cache_file(root).read_bytes()
    elif damage == "entries of the wrong shape":
        write_entries(root, key, {name: {"i": entry["i"], "s": [1, None, "x"]} if "s" in entry else
                                  {"i": entry["i"], "e": [{"no": 1}, "line", None]}
                                  for name, entry in entries(root).items()})
        damage = cache_file(root).read_bytes()
    assert isinstance(damage, bytes)
    cache_file(root).write_bytes(damage)
    reads.clear()
    same(load_solution_set(config), expected)
    assert "acme-corp.yaml" in reads and "broken.yaml" in reads
    reads.clear()
    same(load_solution_set(config), expected)  # written again, whole
    assert "acme-corp.yaml" not in reads


def test_an_unwritable_cache_location_is_no_error(make_workspace: Callable[..., Path], reads: list[str]) -> None:
    root = workspace(make_workspace)
    config = load_config(root)
    (root / ".orbit").mkdir()
    (root / ".orbit" / "cache").write_text("a file where the cache folder would be")
    same(load_solution_set(config), uncached(config))
    same(load_solution_set(config), uncached(config))
    assert (root / ".orbit" / "cache").read_text() == "a file where the cache folder would be"


def _namespaces_work() -> bool:
    done = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True) \
        if shutil.which("unshare") else None
    return done is not None and done.returncode == 0


LIST = "import json, sys; from orbit_cli.main import main; main(['-w', sys.argv[1], '--json', 'solutions'])"


@pytest.mark.skipif(not _namespaces_work(), reason="needs unshare -rm (user and mount namespaces) for a read-only "
                                                   "mount: chmod does not stop root")
@pytest.mark.parametrize("with_cache", [True, False])
def test_a_read_only_state_folder_lists_the_same(make_workspace: Callable[..., Path], with_cache: bool) -> None:
    root = workspace(make_workspace)
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}", "WS": str(root), "PY": sys.executable}
    plain = subprocess.run([sys.executable, "-c", LIST, str(root)], env=env, capture_output=True, text=True)
    (root / ".orbit").mkdir(exist_ok=True)
    if with_cache:
        load_solution_set(load_config(root))
        before = cache_file(root).read_bytes()
    else:
        shutil.rmtree(root / ".orbit" / "cache", ignore_errors=True)
    script = ('mount --bind "$WS/.orbit" "$WS/.orbit" && mount -o remount,bind,ro "$WS/.orbit" && '
              f'exec "$PY" -c "{LIST}" "$WS"')
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == plain.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads(done.stdout) == json.loads(plain.stdout)
    if with_cache:
        assert cache_file(root).read_bytes() == before
    else:
        assert not cache_file(root).exists()


def test_secret_values_never_reach_the_cache(make_workspace: Callable[..., Path], reads: list[str]) -> None:
    config_text = CONFIG.replace("FEATURE: on-by-default", "FEATURE: on-by-default, SMTP_PASSWORD: hunter2-default")
    root = make_workspace(config=config_text, solutions={
        "acme-corp.yaml": good("acme-corp"),
        "globex.yaml": "id: globex\nenv:\n  agent: {DB_PASSWORD: s3cr3t-of-globex, MODE: fast}\n",
    })
    config = load_config(root)
    cold = load_solution_set(config)
    blob = cache_file(root).read_bytes()
    assert b"s3cr3t-of-globex" not in blob and b"hunter2-default" not in blob
    assert set(entries(root)) == {"acme-corp.yaml"}  # globex holds a secret of its own: read each time
    reads.clear()
    warm = load_solution_set(config)
    same(warm, cold)
    assert reads == ["globex.yaml"]
    assert warm.valid[0].env["orbit"]["SMTP_PASSWORD"] == "hunter2-default"  # inherited, from orbit.yaml


def test_a_file_changed_just_before_the_read_is_not_trusted(make_workspace: Callable[..., Path], reads: list[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Timestamps are coarse: a file written in the same tick as the read could change again without its stamp
    changing, so it is read again until it is older than the window (git's racy entries)."""
    monkeypatch.setattr(solution_cache, "RACY_NS", 60 * 1_000_000_000)
    root = make_workspace(config=CONFIG, solutions={"acme-corp.yaml": good("acme-corp")})
    config = load_config(root)
    load_solution_set(config)
    load_solution_set(config)
    assert reads == ["acme-corp.yaml", "acme-corp.yaml"]
    monkeypatch.setattr(solution_cache, "RACY_NS", 0)
    load_solution_set(config)
    load_solution_set(config)
    assert reads == ["acme-corp.yaml"] * 3


def test_the_demo_workspace_warm_equals_cold(demo_workspace: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    config = load_config(root)
    expected = uncached(config)
    same(load_solution_set(config), expected)
    same(load_solution_set(config), expected)
    assert len(entries(root)) == len(expected.valid) + len(expected.invalid)


def test_a_warm_read_leaves_the_default_marks_in_the_cache(make_workspace: Callable[..., Path],
                                                           reads: list[str]) -> None:
    """A warm read gives the solutions their defaults' values, and the cache written again after it (a file was
    added) still holds the marks, never the values orbit.yaml gives (they may be secrets)."""
    root = make_workspace(config=CONFIG, solutions={"acme-corp.yaml": good("acme-corp")})
    config = load_config(root)
    load_solution_set(config)
    warm = load_solution_set(config)
    assert warm.valid[0].env["orbit"]["FEATURE"] == "on-by-default"
    (root / "solutions" / "globex.yaml").write_text(good("globex"))
    reads.clear()
    load_solution_set(config)
    assert reads == ["globex.yaml"]
    orbit_env = entries(root)["acme-corp.yaml"]["s"][3]["orbit"]
    assert orbit_env == {"LOG_LEVEL": None, "FEATURE": None, "PUBLIC_BASE_URL": "https://acme-corp.example.com"}


def test_every_field_of_a_solution_is_rebuilt() -> None:
    """The cache sets a rebuilt solution's fields at once: a field added to SolutionSpec must be added there."""
    import dataclasses

    from orbit_ops.config.model import SolutionSpec

    assert tuple(field.name for field in dataclasses.fields(SolutionSpec)) == solution_cache.REBUILT_FIELDS


@pytest.mark.parametrize("warm", [False, True])
def test_the_set_carries_the_stamp_of_the_files_it_was_read_from(make_workspace: Callable[..., Path],
                                                                 warm: bool) -> None:
    """The console compares it with the next look at the files: it is the stamp that look would take."""
    root = workspace(make_workspace)
    config = load_config(root)
    if warm:
        load_solution_set(config)
    loaded = load_solution_set(config)
    assert loaded.stamp == load_module.solution_files_stamp(config)
    assert {name for name, *_ in loaded.stamp} >= {"broken.yaml", "outside.yaml", "alias.yaml", "folder.yaml"}
    (root / "solutions" / "globex.yaml").write_text(good("globex", "Globex renamed"))
    assert loaded.stamp != load_module.solution_files_stamp(config)


def test_a_child_path_is_the_folder_joined_with_the_name(tmp_path: Path) -> None:
    """``child_path`` (pathlib's listing shortcut, decision 0088) makes what ``folder / name`` makes."""
    from orbit_ops.config.solution_cache import child_path

    for folder in (tmp_path / "solutions", Path("relative/solutions"), Path("/")):
        for name in ("acme-corp.yaml", "ünïcode.yml", ".hidden.yaml", "a b.yaml"):
            made = child_path(folder)(name)
            assert made == folder / name and str(made) == str(folder / name) and type(made) is type(folder / name)
            assert made.name == name and made.parent == folder and made.suffix == (folder / name).suffix


def test_a_read_in_another_thread_while_a_cache_write_is_being_started_waits_for_it(
        make_workspace: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads reading the solution set at once (the console's load and its platform read): one may look for
    this process's cache writes while the other's writer is being started. It waits for that write, never fails
    (it once raised "cannot join thread before it is started" into the console's load)."""
    import threading
    import time

    root = make_workspace(config=CONFIG, solutions={"acme-corp.yaml": good("acme-corp")})
    config = load_config(root)
    starting = threading.Event()
    real_start = threading.Thread.start

    class SlowToStart(threading.Thread):
        def start(self) -> None:
            if self.name != "orbit-solution-cache":
                real_start(self)
                return
            starting.set()
            time.sleep(0.2)  # the window between a writer made and running, widened
            real_start(self)

    failures: list[BaseException] = []

    def other_read() -> None:
        starting.wait(10)
        try:
            solution_cache.wait_for_writes()
            load_solution_set(config)
        except BaseException as exc:  # what the other thread met is the finding
            failures.append(exc)

    other = threading.Thread(target=other_read)
    other.start()
    monkeypatch.setattr(solution_cache.threading, "Thread", SlowToStart)  # the cache writer's, from now on
    first = load_solution_set(config)  # a cold read: its cache write is started at its end
    other.join(10)
    assert failures == []
    assert [spec.id for spec in first.valid] == ["acme-corp"] and cache_file(root).is_file()
