"""Helpers shared by the tests: git with an isolated config, a minimal orbit.yaml, a console screen's text."""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orbit_ops.backends.base import BuildRequest, BuiltImage
from orbit_ops.backends.local.builder import LocalBuilder

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
