"""The preflight on the local backend: image config labels read from the local registry, once per image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType

import pytest
from support import build_agent_image as build

from orbit_ops.backends.base import ImageLabels, RecordedImage, required_env
from orbit_ops.backends.local.builder import LocalBuilder
from orbit_ops.errors import BackendError
from orbit_ops.fleet.preflight import check_apps
from orbit_ops.fleet.resources import App
from orbit_ops.redact import clear_registered_secrets, register_secret

REQUIRING = 'FROM python:3.12-slim\nLABEL org.orbit.env.required="SERIAL, REGION,SERIAL"\nCOPY app.py /app.py\n'
PLAIN = "FROM python:3.12-slim\nCOPY app.py /app.py\n"


class CountingBuilder(LocalBuilder):
    """The local builder, recording what each ``image_labels`` call asked for."""

    asked: list[list[RecordedImage]]

    async def image_labels(self, images: Sequence[RecordedImage]) -> dict[RecordedImage, ImageLabels]:
        self.asked.append(list(images))
        return await super().image_labels(images)


@pytest.fixture
def builder(tmp_path: Path) -> CountingBuilder:
    state_dir = tmp_path / ".orbit"
    build(state_dir, tmp_path, "1.0.0", PLAIN)
    build(state_dir, tmp_path, "2.0.0", REQUIRING)
    counting = CountingBuilder(state_dir)
    counting.asked = []
    return counting


def agent(builder: LocalBuilder, version: str, secret_env: dict[str, str] | None = None, **env: str) -> App:
    return App(name="agent-1a2b3c", image=f"{builder.registry}/agent:{version}", env=MappingProxyType(env),
               registry_server=builder.registry, secret_env=MappingProxyType(secret_env or {}))


def test_required_env_reads_the_label_in_order_once_each() -> None:
    assert required_env({"org.orbit.env.required": " SERIAL, REGION,,SERIAL "}) == ["SERIAL", "REGION"]
    assert required_env({"other": "X"}) == []


async def test_names_each_solution_lacking_a_variable_reading_each_image_once(builder: CountingBuilder) -> None:
    apps = [(f"s{n:02d}", "agent", agent(builder, "2.0.0", SERIAL=str(n))) for n in range(40)]
    apps += [("full", "agent", agent(builder, "2.0.0", SERIAL="1", REGION="eu")),
             ("by-secret", "agent", agent(builder, "2.0.0", {"REGION": "region-secret"}, SERIAL="1")),
             ("bare", "agent", agent(builder, "2.0.0")),
             ("old", "agent", agent(builder, "1.0.0"))]

    found = await check_apps(builder, apps)

    assert len(found.lacking) == 41 and found.warnings == ()
    assert [lack.describe() for lack in found.lacking["s07"]] == ["agent 2.0.0 requires REGION, not set"]
    assert [lack.to_json() for lack in found.lacking["bare"]] == [
        {"component": "agent", "image": f"{builder.registry}/agent:2.0.0", "missing": ["SERIAL", "REGION"]}]
    assert "full" not in found.lacking and "old" not in found.lacking
    assert "by-secret" not in found.lacking  # a secret reference sets the variable, as the platform counts it
    assert [[image.tag for image in asked] for asked in builder.asked] == [["2.0.0", "1.0.0"]]  # one read each
    lines = found.lines()
    assert lines[0] == "preflight: 41 solution(s) lack a variable their new image requires"
    assert "  bare: agent 2.0.0 requires SERIAL, REGION, not set" in lines


async def test_an_image_the_registry_does_not_hold_is_one_warning(builder: CountingBuilder) -> None:
    apps = [("a", "agent", agent(builder, "9.0.0")), ("b", "agent", agent(builder, "9.0.0")),
            ("c", "agent", agent(builder, "2.0.0", SERIAL="1"))]

    found = await check_apps(builder, apps)

    assert [lack.describe() for lack in found.lacking["c"]] == ["agent 2.0.0 requires REGION, not set"]
    assert found.warnings == ("config of 1 image(s) not read, not checked (agent:9.0.0): not in the local registry",)
    assert found.lines()[-1] == f"preflight: warning: {found.warnings[0]}"


async def test_a_registry_that_cannot_be_read_is_one_warning_without_its_secrets(builder: CountingBuilder) -> None:
    class Unreachable(LocalBuilder):
        async def image_labels(self, images: Sequence[RecordedImage]) -> dict[RecordedImage, ImageLabels]:
            raise BackendError("reading image configs from r.example: refused token s3cr3t-t0ken-value")

    register_secret("s3cr3t-t0ken-value")
    try:
        found = await check_apps(Unreachable(builder.root.parent), [("a", "agent", agent(builder, "2.0.0"))])
    finally:
        clear_registered_secrets()

    assert found.lacking == {}
    [warning] = found.warnings
    assert warning.startswith("image configs not read, nothing checked: reading image configs from r.example")
    assert "s3cr3t" not in warning


async def test_nothing_to_check_reads_nothing(builder: CountingBuilder) -> None:
    found = await check_apps(builder, [])
    assert (found.lacking, found.warnings, found.lines(), builder.asked) == ({}, (), [], [])
