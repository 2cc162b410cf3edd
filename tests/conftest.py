"""Shared fixtures: git platform repos and workspaces built in tmp_path."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from support import GIT_ENV, MINIMAL_CONFIG, git


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """Git in tests never reads the developer's config and always has an identity."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ORBIT_WORKSPACE", raising=False)


@pytest.fixture
def make_workspace(tmp_path: Path) -> Callable[..., Path]:
    """A git-initialised workspace with orbit.yaml (``config``) and solution files (``solutions``)."""

    def make(config: str = MINIMAL_CONFIG, solutions: dict[str, str] | None = None) -> Path:
        root = tmp_path / "ws"
        root.mkdir()
        git(root, "init", "-q", "-b", "main")
        (root / "orbit.yaml").write_text(config)
        folder = root / "solutions"
        folder.mkdir()
        for name, text in (solutions or {}).items():
            (folder / name).write_text(text)
        return root

    return make


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``orbit ARGS`` in-process through the real entry point; returns (exit code, stdout, stderr)."""
    from orbit_cli.main import main

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo workspace for the whole session; tests that change things copy it first."""
    from orbit_ops.demo import create_demo

    root = tmp_path_factory.mktemp("demo") / "ws"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in GIT_ENV.items():
            patch.setenv(key, value)
        for _ in create_demo(root):
            pass
    return root


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that passed removes its base temporary folder (~1 GB for the whole suite) itself (decision 0055).

    Left behind, it was removed by pytest's at-exit clean-up of whichever pytest process exited next (it keeps the
    newest three), up to 80 s after that process's summary. A run that failed keeps everything, to look at. Only
    the process that made the folder removes it: an xdist worker's is inside its controller's; a ``--basetemp``
    given on the command line is left to its owner. (pytest's ``tmp_path_retention_policy = "failed"`` would also
    remove each passing test's folder at its teardown, while fixtures that patch ``os`` are still active.)
    """
    factory = getattr(session.config, "_tmp_path_factory", None)
    basetemp = getattr(factory, "_basetemp", None)
    if exitstatus != 0 or basetemp is None or getattr(factory, "_given_basetemp", None) is not None:
        return
    shutil.rmtree(basetemp, ignore_errors=True)
