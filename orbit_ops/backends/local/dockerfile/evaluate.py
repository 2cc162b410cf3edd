"""Evaluating a parsed Dockerfile into the image settings Docker would record (ENV, LABEL, CMD, ...).

The local builder runs no container engine, yet the image it writes must carry the runtime settings of the
final stage and the stages it is built FROM, with ARG scoping as Docker applies it. Where a value cannot be
known without the base image (a variable set by the base image's ENV, say), it is kept as written.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass

from orbit_ops.backends.local.dockerfile.expand import raw_words
from orbit_ops.backends.local.dockerfile.model import (
    DEFAULT_SHELL,
    RULE_PORT,
    Dockerfile,
    DockerfileError,
    Instruction,
    arg_pairs,
    evaluated,
    name_value_pairs,
)

_PORT_RE = re.compile(r"^(\d+)(?:-(\d+))?(?:/([A-Za-z]+))?$")


@dataclass(frozen=True)
class ImageSettings:
    """The runtime configuration the final stage declares, as Docker records it in the image config.

    Values come from the final stage and the stages it is built FROM; the base image's own settings
    are unknown to the local builder and not included.
    """

    base_image: str
    env: Mapping[str, str]
    labels: Mapping[str, str]
    working_dir: str | None
    user: str | None
    exposed_ports: tuple[str, ...]  # "8080/tcp"
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    volumes: tuple[str, ...]
    stop_signal: str | None
    shell: tuple[str, ...]
    author: str | None


def image_settings(dockerfile: Dockerfile, *, build_args: Mapping[str, str] | None = None) -> ImageSettings:
    """Evaluate the final stage (and the stages it builds on) into image settings.

    ``build_args`` play the role of ``docker build --build-arg``; only declared ARGs take them.

    Raises:
        DockerfileError: an instruction's arguments cannot be evaluated (bad EXPOSE port, unbalanced
            quotes, ...).
    """
    state = _StageState()
    global_values = dockerfile.global_args(build_args)
    given = build_args or {}
    for stage in dockerfile.final_chain(build_args):
        state.begin_stage()
        for instruction in stage.instructions[1:]:
            state.apply(instruction, dockerfile, global_values, given)
    return ImageSettings(
        base_image=dockerfile.final_base_image(build_args),
        env=dict(state.env),
        labels=dict(state.labels),
        working_dir=state.working_dir,
        user=state.user,
        exposed_ports=tuple(state.ports),
        entrypoint=state.entrypoint,
        cmd=state.cmd,
        volumes=tuple(state.volumes),
        stop_signal=state.stop_signal,
        shell=state.shell,
        author=state.author,
    )


class _StageState:
    """The image config as instructions of the final chain of stages are applied, as Docker does."""

    def __init__(self) -> None:
        self.env: dict[str, str] = {}
        self.labels: dict[str, str] = {}
        self.working_dir: str | None = None
        self.user: str | None = None
        self.ports: dict[str, None] = {}
        self.entrypoint: tuple[str, ...] | None = None
        self.cmd: tuple[str, ...] | None = None
        self.volumes: dict[str, None] = {}
        self.stop_signal: str | None = None
        self.shell: tuple[str, ...] = DEFAULT_SHELL
        self.author: str | None = None
        self.args: dict[str, str] = {}
        self.cmd_set = False

    def begin_stage(self) -> None:
        # ARGs are scoped to their stage; CMD counts as "set" only within the stage that sets it.
        self.args = {}
        self.cmd_set = False

    def scope(self) -> dict[str, str]:
        return {**self.args, **self.env}

    def apply(
        self,
        instruction: Instruction,
        dockerfile: Dockerfile,
        global_values: Mapping[str, str],
        given: Mapping[str, str],
    ) -> None:
        keyword = instruction.keyword
        scope = self.scope()
        if keyword == "ARG":
            for name, raw in arg_pairs(instruction, dockerfile):
                if name in given:
                    self.args[name] = given[name]
                elif raw is not None:
                    self.args[name] = evaluated(raw, scope, dockerfile, instruction)
                else:
                    self.args[name] = global_values.get(name, "")
                scope = self.scope()
        elif keyword == "ENV":
            # Every value in one ENV sees the environment from before the instruction, as in Docker.
            pairs = name_value_pairs(instruction, dockerfile.path, dockerfile.escape)
            for key, value in pairs:
                self.env[evaluated(key, scope, dockerfile, instruction)] = evaluated(
                    value, scope, dockerfile, instruction
                )
        elif keyword == "LABEL":
            pairs = name_value_pairs(instruction, dockerfile.path, dockerfile.escape)
            for key, value in pairs:
                self.labels[evaluated(key, scope, dockerfile, instruction)] = evaluated(
                    value, scope, dockerfile, instruction
                )
        elif keyword == "WORKDIR":
            path = evaluated(instruction.body.strip(), scope, dockerfile, instruction)
            base = self.working_dir or "/"
            joined = posixpath.normpath(posixpath.join(base, path))
            self.working_dir = joined if joined.startswith("/") else "/" + joined
        elif keyword == "USER":
            self.user = evaluated(instruction.body.strip(), scope, dockerfile, instruction)
        elif keyword == "EXPOSE":
            for raw in raw_words(instruction.body, dockerfile.escape):
                for port in _ports(evaluated(raw, scope, dockerfile, instruction), dockerfile, instruction):
                    self.ports[port] = None
        elif keyword == "VOLUME":
            words = instruction.json_args
            if words is None:
                written = raw_words(instruction.body, dockerfile.escape)
                words = [evaluated(raw, scope, dockerfile, instruction) for raw in written]
            for volume in words:
                self.volumes[volume] = None
        elif keyword == "STOPSIGNAL":
            self.stop_signal = evaluated(instruction.body.strip(), scope, dockerfile, instruction)
        elif keyword == "SHELL":
            self.shell = tuple(instruction.json_args or DEFAULT_SHELL)
        elif keyword == "MAINTAINER":
            self.author = instruction.body.strip()
        elif keyword == "CMD":
            self.cmd = self._command(instruction)
            self.cmd_set = True
        elif keyword == "ENTRYPOINT":
            command = self._command(instruction)
            self.entrypoint = command or None
            # Docker drops a CMD inherited from an earlier stage when ENTRYPOINT is set.
            if not self.cmd_set:
                self.cmd = None

    def _command(self, instruction: Instruction) -> tuple[str, ...]:
        if instruction.json_args is not None:
            return tuple(instruction.json_args)
        body = instruction.body.strip()
        return (*self.shell, body) if body else ()


def _ports(spec: str, dockerfile: Dockerfile, instruction: Instruction) -> list[str]:
    match = _PORT_RE.match(spec)
    protocol = (match.group(3) or "tcp").lower() if match else ""
    if match is None or protocol not in ("tcp", "udp", "sctp"):
        raise DockerfileError(dockerfile.path, f"invalid port {spec!r}", line=instruction.line, rule=RULE_PORT)
    first = int(match.group(1))
    last = int(match.group(2) or first)
    if not 1 <= first <= last <= 65535:
        raise DockerfileError(dockerfile.path, f"invalid port {spec!r}", line=instruction.line, rule=RULE_PORT)
    return [f"{port}/{protocol}" for port in range(first, last + 1)]
