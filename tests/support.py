"""Helpers shared by the tests: git with an isolated config, a minimal orbit.yaml, a console screen's text, a
platform that records the calls made through it."""

from __future__ import annotations

import asyncio
import html
import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orbit_ops.backends.base import AppPlatform, BuildRequest, BuiltImage, ShareStore
from orbit_ops.backends.local.builder import LocalBuilder
from orbit_ops.build.context import pack_context
from orbit_ops.workspace import Workspace

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@orbit.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@orbit.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}

MINIMAL_CONFIG = """\
platform_repo: .
components:
  orbit: {context: apps/orbit}
  agent: {context: apps/agent}
  mc: {context: apps/mc}
defaults:
  images: {orbit_tag: "1.0.0", agent_tag: "1.0.0", mc_tag: "1.0.0"}
"""


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


class BlockingBuilder(LocalBuilder):
    """The local builder, but it waits inside the build until the test lets it go (or cancels it)."""

    def __init__(self, state_dir: Path, message: str = "builder: waiting for the test") -> None:
        super().__init__(state_dir)
        self.message = message
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def build(self, request: BuildRequest, log: Callable[[str], None]) -> BuiltImage:
        log(self.message)
        self.entered.set()
        await self.release.wait()
        return await super().build(request, log)


def report(name: str, **figures: object) -> None:
    """Print one scenario's figures for ``docs/reliability.md`` as a JSON line (also appended to the file named
    by ``ORBIT_RELIABILITY_OUT``, when set): the resilience tests' report."""
    line = json.dumps({"scenario": name, **figures})
    print(line, file=sys.__stdout__, flush=True)
    if os.environ.get("ORBIT_RELIABILITY_OUT"):
        with Path(os.environ["ORBIT_RELIABILITY_OUT"]).open("a") as handle:
            handle.write(line + "\n")


def screen_text(app: Any) -> str:
    """The text of a Textual app's screen as it would be painted now (its SVG screenshot, tags dropped)."""
    return html.unescape(re.sub(r"<[^>]+>", "", app.export_screenshot())).replace("\xa0", " ")


PROTOCOL_METHODS = frozenset(
    name for protocol in (AppPlatform, ShareStore) for name, member in vars(protocol).items()
    if inspect.iscoroutinefunction(member)
)
WRITE_PREFIXES = ("create_", "update_")


class RecordingPlatform:
    """A platform that records every ``AppPlatform``/``ShareStore`` call made through it as ``(method, name)``
    (``"*"`` for a listing), failed calls included, like the Azure emulator's request log; every other
    attribute is the wrapped platform's."""

    def __init__(self, platform: Any) -> None:
        self.platform = platform
        self.calls: list[tuple[str, str]] = []

    @property
    def writes(self) -> int:
        """How many create/update calls were made through this wrapper (failed ones included)."""
        return sum(1 for method, _ in self.calls if method.startswith(WRITE_PREFIXES))

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.platform, name)
        if name not in PROTOCOL_METHODS:
            return attribute

        async def recorded(*args: Any) -> Any:
            subject = "*" if not args else args[0] if isinstance(args[0], str) else args[0].name
            self.calls.append((name, subject))
            return await attribute(*args)

        return recorded


def record_platform_calls(workspace: Workspace) -> RecordingPlatform:
    """Wrap the workspace's platform in a :class:`RecordingPlatform`: the engine's calls through the workspace are
    recorded from now on."""
    recorder = RecordingPlatform(workspace.platform())
    workspace._platform = recorder
    return recorder


def build_agent_image(state_dir: Path, tmp_path: Path, version: str, dockerfile: str) -> str:
    """Build ``agent:<version>`` from ``dockerfile`` with the real local builder; returns the image it pushed."""
    context = tmp_path / f"context-{version}"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    (context / "app.py").write_text("print('agent')\n")
    packed = pack_context(context, context / "Dockerfile", tmp_path / f"agent-{version}.tar.gz")
    request = BuildRequest("agent", version, f"agent/v{version}", "0" * 40, packed, context / "Dockerfile",
                           "test", f"build-{version}")
    return asyncio.run(LocalBuilder(state_dir).build(request, lambda _line: None)).image
