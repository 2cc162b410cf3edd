"""A cold read of many solution files shared with helper processes (decision 0090) gives exactly what reading
them here gives: the same specs, the same errors on the same lines, the same cache, the same secrets masked."""

from __future__ import annotations

import os
import pickle
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from support import MINIMAL_CONFIG

import orbit_ops.config.load as load_module
from orbit_ops.config import parallel_read, solution_cache
from orbit_ops.config.load import load_config, load_solution_set
from orbit_ops.config.model import SolutionSet
from orbit_ops.errors import ConfigError
from orbit_ops.redact import redact

COUNT = 24  # valid files; the helpers' shares hold the invalid ones too
READER = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/orbit/providers/"
          "Microsoft.ManagedIdentity/userAssignedIdentities/reader")


def spec_text(solution_id: str, secret: str | None) -> str:
    """A valid solution file; ``secret``: a secret value of its own (such a file is never cached)."""
    password = f"DB_PASSWORD: \"{secret}\", " if secret else ""
    return (f"id: {solution_id}\ndisplay_name: Customer {solution_id}\nlabels: {{ring: canary}}\n"
            f"images: {{agent_tag: \"2.1.0\"}}\n"
            f"env:\n  agent: {{{password}LOG_LEVEL: debug, N: \"012\"}}\n"
            "secrets:\n  agent:\n    api-key: {keyVaultUrl: \"https://kv.vault.azure.net/secrets/api-key\", "
            f"identity: \"{READER}\"}}\n")


@pytest.fixture
def fleet(make_workspace: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """A workspace of COUNT valid files (the odd ones with a secret value of their own) and, late in the name
    order so that helpers read them, files that break rules in different ways; and the secret values."""
    monkeypatch.setattr(solution_cache, "RACY_NS", 0)  # files written by the test are trusted at once
    secrets = [f"s3cr3t-{uuid.uuid4().hex}" if index % 2 else "" for index in range(COUNT)]
    solutions = {f"c{index:03d}.yaml": spec_text(f"c{index:03d}", secret) for index, secret in enumerate(secrets)}
    solutions.update({
        "x-broken.yaml": "id: x-broken\nimages: {agent_tag: 1\n",  # YAML syntax
        "y-typo.yaml": "id: y-typo\nimagse: {agent_tag: '1.0.0'}\n",  # an unknown key, on its line
        "z-twin.yaml": "id: c001\n",  # its id differs from its file name
        # A value YAML reads as a number, under a name orbit.yaml's secret_env_names makes secret: never quoted.
        "y-pin.yaml": "id: y-pin\nenv: {agent: {BANK_PIN: 987654}}\n",
    })
    root = make_workspace(config=MINIMAL_CONFIG + 'secret_env_names: ["*_PIN"]\n', solutions=solutions)
    folder = root / "solutions"
    (folder / "c002.yml").write_text(spec_text("c002", None))  # a second file claiming a taken id
    (folder / "z-folder.yaml").mkdir()
    os.symlink("/etc/passwd", folder / "z-outside.yaml")  # a link out of the folder: never read
    return root, secrets


@pytest.fixture
def read_here(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Helpers from 10 files on, two of them (three cores), 3 files a chunk; the names of the files this process
    read itself."""
    monkeypatch.setattr(parallel_read, "PARALLEL_FILES", 10)
    monkeypatch.setattr(parallel_read, "CHUNK_FILES", 3)
    monkeypatch.setattr(parallel_read, "cores", lambda: 3)
    names: list[str] = []
    real = parallel_read.read_files

    def spy(config: object, folder: Path, some: list[str]) -> list[parallel_read.Read]:
        names.extend(some)
        return real(config, folder, some)  # type: ignore[arg-type]

    monkeypatch.setattr(parallel_read, "read_files", spy)
    return names


@pytest.fixture
def shared(read_here: list[str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """As ``read_here``, with this process as busy as the console makes it, and more: it reads its first chunk (the
    first CHUNK_FILES names) only once the helpers have read every other one."""
    answered = threading.Semaphore(0)
    real_back = parallel_read._read_back

    def back(plain: tuple[object, ...], path: Path) -> parallel_read.Read:
        answered.release()
        return real_back(plain, path)

    monkeypatch.setattr(parallel_read, "_read_back", back)
    spy, real_read = parallel_read.read_files, load_module.read_in_processes
    given: list[int] = []  # how many files the load handed over

    def counted(config: object, folder: Path, names: list[str]) -> list[parallel_read.Read] | None:
        given.append(len(names))
        return real_read(config, folder, names)  # type: ignore[arg-type]

    def busy(config: object, folder: Path, some: list[str]) -> list[parallel_read.Read]:
        for _ in range(given[-1] - len(some)):
            assert answered.acquire(timeout=60), "the helpers did not read the rest"
        return spy(config, folder, some)  # type: ignore[arg-type]

    monkeypatch.setattr(load_module, "read_in_processes", counted)
    monkeypatch.setattr(parallel_read, "read_files", busy)
    return read_here


def one_by_one(root: Path, monkeypatch: pytest.MonkeyPatch) -> SolutionSet:
    """The cold read with no helper at all (the cache removed first)."""
    shutil.rmtree(root / ".orbit" / "cache", ignore_errors=True)
    with monkeypatch.context() as patch:
        patch.setattr(parallel_read, "PARALLEL_FILES", 10**9)
        return load_solution_set(load_config(root))


def facts(loaded: SolutionSet) -> tuple[object, ...]:
    return (loaded.valid, [(entry.id, entry.path, str(entry.error), entry.error.line, entry.error.rule)
                           for entry in loaded.invalid], loaded.stamp)


def test_helpers_read_what_this_process_would_read(fleet: tuple[Path, list[str]], shared: list[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = fleet
    loaded = load_solution_set(load_config(root))
    names = sorted(path.name for path in (root / "solutions").iterdir())
    assert shared == names[:3]  # the rest was read by the helpers
    expected = one_by_one(root, monkeypatch)
    assert facts(loaded) == facts(expected)
    assert len(loaded.valid) == COUNT  # c002.yml claims a taken id, z-twin.yaml's id is not its name: both invalid
    assert {entry.id for entry in loaded.invalid} >= {"x-broken", "y-typo", "z-twin", "c002.yml", "z-folder", "y-pin"}
    pin = next(entry for entry in loaded.invalid if entry.id == "y-pin")
    assert "not shown" in str(pin.error) and "987654" not in str(pin.error)  # worded as here, by the helper
    typo = next(entry for entry in loaded.invalid if entry.id == "y-typo")
    assert typo.error.line == 2 and "imagse" in str(typo.error)
    spec = next(spec for spec in loaded.valid if spec.id == "c005")
    assert spec.env["agent"]["N"] == "012" and spec.secrets["agent"]["api-key"].identity == READER


def test_the_cache_written_from_helpers_reads_back_the_same(fleet: tuple[Path, list[str]], shared: list[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = fleet
    first = load_solution_set(load_config(root))
    solution_cache.wait_for_writes()
    asked: list[str] = []  # the files the warm read had no entry for
    real = load_module.read_in_processes
    monkeypatch.setattr(load_module, "read_in_processes",
                        lambda config, folder, names: asked.extend(names) or real(config, folder, names))
    warm = load_solution_set(load_config(root))
    assert facts(warm) == facts(first)
    # The entries made from what the helpers read are trusted: only the files with a secret value of their own
    # (never cached) are read again, with the invalid ones (re-read each time, as without helpers).
    cached = {f"c{index:03d}.yaml" for index in range(0, COUNT, 2)}
    assert {f"c{index:03d}.yaml" for index in range(1, COUNT, 2)} <= set(asked)
    assert not cached & set(asked)


def test_secret_values_a_helper_read_are_masked_here(fleet: tuple[Path, list[str]], shared: list[str]) -> None:
    root, secrets = fleet
    load_solution_set(load_config(root))
    by_helpers = [secret for index, secret in enumerate(secrets) if secret and f"c{index:03d}.yaml" not in shared]
    assert by_helpers
    for secret in by_helpers:
        assert secret not in redact(f"connecting with {secret}")


ANSWER = ("import marshal, struct, sys; body = {body}; out = sys.stdout.buffer; "
          "out.write(struct.pack('>Q', 0) + struct.pack('>Q', {size}) + body); out.flush(); sys.stdin.buffer.read()")


@pytest.mark.parametrize("serve", [
    "import sys; sys.exit(3)",  # a helper that fails
    ANSWER.format(body="b'not marshal data'", size="len(body)"),  # one that answers nonsense
    ANSWER.format(body="marshal.dumps([('s', 'x')])", size="len(body)"),  # one that answers one read for 3 files
    ANSWER.format(body="b''", size="2 ** 62"),  # one whose frame claims more than a helper could send
])
def test_a_helper_that_gives_nothing_usable_has_its_share_read_here(
        serve: str, fleet: tuple[Path, list[str]], read_here: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = fleet
    monkeypatch.setattr(parallel_read, "_SERVE", serve)
    shared = load_solution_set(load_config(root))
    assert sorted(read_here) == sorted(path.name for path in (root / "solutions").iterdir())
    assert facts(shared) == facts(one_by_one(root, monkeypatch))


def test_a_helper_that_hangs_is_stopped_and_its_chunk_read_here(
        fleet: tuple[Path, list[str]], read_here: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = fleet
    monkeypatch.setattr(parallel_read, "_SERVE", "import time; time.sleep(120)")
    monkeypatch.setattr(parallel_read, "cores", lambda: 4)  # three helpers that hang, each holding a chunk
    started = time.monotonic()
    loaded = load_solution_set(load_config(root))
    assert time.monotonic() - started < 10  # one short wait for them all, then stopped
    assert sorted(read_here) == sorted(path.name for path in (root / "solutions").iterdir())
    assert facts(loaded) == facts(one_by_one(root, monkeypatch))


def test_a_helper_runs_this_code_not_what_the_working_folder_holds(
        fleet: tuple[Path, list[str]], shared: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = fleet
    marker = tmp_path / "ran"
    other = tmp_path / "elsewhere" / "orbit_ops"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise SystemExit(9)\n")
    monkeypatch.chdir(other.parent)
    loaded = load_solution_set(load_config(root))  # the helpers answered (``shared`` waits for them)
    assert not marker.exists()
    assert facts(loaded) == facts(one_by_one(root, monkeypatch))


def test_an_interrupt_here_stops_the_helpers(fleet: tuple[Path, list[str]], read_here: list[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = fleet
    helpers: list[parallel_read._Helper] = []
    real_init = parallel_read._Helper.__init__

    def track(self: parallel_read._Helper, chunks: object) -> None:
        helpers.append(self)
        real_init(self, chunks)  # type: ignore[arg-type]

    def interrupted(*_: object) -> list[parallel_read.Read]:
        raise KeyboardInterrupt

    monkeypatch.setattr(parallel_read._Helper, "__init__", track)
    monkeypatch.setattr(parallel_read, "read_files", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_solution_set(load_config(root))
    assert len(helpers) == 2
    for helper in helpers:
        assert not helper.thread.is_alive()
        assert helper.process is None or helper.process.poll() is not None


def test_no_helper_for_few_files_one_core_or_a_frozen_program(
        fleet: tuple[Path, list[str]], read_here: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = fleet
    config = load_config(root)
    names = sorted(path.name for path in config.solutions_dir.iterdir())
    assert parallel_read.read_in_processes(config, config.solutions_dir, names[:9]) is None  # under 10 files
    monkeypatch.setattr(parallel_read, "cores", lambda: 1)
    assert parallel_read.read_in_processes(config, config.solutions_dir, names) is None
    monkeypatch.setattr(parallel_read, "cores", lambda: 3)
    monkeypatch.setattr(parallel_read.sys, "frozen", True, raising=False)  # sys.executable is not a Python
    assert parallel_read.read_in_processes(config, config.solutions_dir, names) is None
    assert read_here == []


def test_a_config_error_survives_a_pipe_as_it_was() -> None:
    error = ConfigError(Path("/w/solutions/a.yaml"), "key 'x' appears twice", line=3, rule="each key once")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is ConfigError
    assert (str(again), again.path, again.line, again.rule, again.problem) == (
        str(error), error.path, 3, "each key once", "key 'x' appears twice")
