"""What a parsed Dockerfile is: instructions, build stages, the rules they follow and the errors naming them.

The stages' FROM lines are evaluated here (global ARGs expanded), because finding the final image's chain
of stages needs them; evaluating the instructions of that chain is :mod:`.evaluate`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orbit_ops.backends.local.dockerfile.expand import QuoteError, expand_word, raw_words
from orbit_ops.errors import BuildError

KEYWORDS: tuple[str, ...] = (
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
)  # fmt: skip
DEFAULT_SHELL: tuple[str, ...] = ("/bin/sh", "-c")
SCRATCH = "scratch"

# The local builder always targets this platform; BuildKit predefines these ARGs for FROM lines.
PLATFORM_ARGS: Mapping[str, str] = {
    "TARGETPLATFORM": "linux/amd64", "TARGETOS": "linux", "TARGETARCH": "amd64", "TARGETVARIANT": "",
    "BUILDPLATFORM": "linux/amd64", "BUILDOS": "linux", "BUILDARCH": "amd64", "BUILDVARIANT": "",
}  # fmt: skip

RULE_KEYWORD = "an instruction is one of " + ", ".join(KEYWORDS)
RULE_FIRST_FROM = "only ARG may come before the first FROM"
RULE_NEEDS_FROM = "a Dockerfile has at least one FROM (after parser directives, comments and ARGs)"
RULE_EXEC_FORM = 'the exec form is a JSON array of double-quoted strings, e.g. ["executable", "param"]'
RULE_DIRECTIVE_ONCE = "each parser directive appears at most once, at the top of the file"
RULE_ESCAPE = "the escape directive is a backslash (\\) or a backtick (`)"
RULE_HEREDOC = "a heredoc ends at a line holding only its delimiter"
RULE_FROM_ARGS = "FROM [--platform=<platform>] <image> [AS <name>]"
RULE_STAGE_NAME = "a stage name starts with a letter and holds letters, digits, '-', '_' and '.'"
RULE_STAGE_UNIQUE = "stage names are unique in a Dockerfile"
RULE_ARGUMENTS = "the instruction's arguments follow the Dockerfile reference"
RULE_KEY_VALUE = "{kw} takes <key>=<value> pairs (or one legacy '<key> <value>')"
RULE_QUOTES = "quotes are balanced within an argument"
RULE_PORT = "EXPOSE takes <port>[/<protocol>] with a port or port range in 1-65535 and tcp, udp or sctp"

BLANKS = re.compile(r"[\t\v\f\r ]+")


class DockerfileError(BuildError):
    """A Dockerfile breaks one of Docker's rules.

    The message reads ``<file>:<line>: <problem> (rule: <rule>)``, like ``ConfigError``; it is a
    ``BuildError`` because the file comes from the release being built, not from the operator.
    """

    def __init__(self, path: Path, problem: str, *, line: int | None, rule: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        self.rule = rule
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {problem} (rule: {rule})")


@dataclass(frozen=True)
class Heredoc:
    """A here-document attached to RUN, COPY or ADD (``<<EOF`` ... ``EOF``)."""

    name: str
    content: str
    chomp: bool  # ``<<-``: leading tabs are stripped from the content and the delimiter line
    expand: bool  # an unquoted delimiter: variables in the content are expanded when used


@dataclass(frozen=True)
class Instruction:
    """One instruction, continuation lines joined.

    ``keyword`` is upper-case; ``args`` is everything after it (flags included, heredoc bodies
    appended after a newline each); ``json_args`` is the parsed exec form, or None for shell form
    and for instructions that have no exec form; ``line`` is where it starts (1-based).
    """

    keyword: str
    args: str
    json_args: list[str] | None
    line: int
    end_line: int = 0
    flags: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()

    @property
    def body(self) -> str:
        """The arguments without leading ``--flags`` and without heredoc bodies."""
        text = self.args.split("\n", 1)[0] if self.heredocs else self.args
        if not self.flags:
            return text
        for flag in self.flags:
            text = text.lstrip().removeprefix(flag)
        text = text.lstrip()
        # A bare "--" ends the flags; it is not part of the arguments.
        if text == "--" or text.startswith(("-- ", "--\t")):
            text = text[2:].lstrip()
        return text

    @property
    def text(self) -> str:
        """The instruction as a one-line summary: keyword and the first line of its arguments."""
        first = self.args.split("\n", 1)[0]
        return f"{self.keyword} {first}".rstrip()


@dataclass(frozen=True)
class Stage:
    """A build stage: its ``FROM`` and the instructions up to the next ``FROM``."""

    index: int
    name: str | None
    base: str  # the image (or earlier stage) as written after FROM's flags, ARGs not yet expanded
    platform: str | None
    line: int
    instructions: tuple[Instruction, ...]  # FROM first


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile."""

    path: Path
    instructions: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    meta_args: tuple[Instruction, ...]  # the ARGs before the first FROM
    directives: Mapping[str, str]
    escape: str

    @property
    def final_stage(self) -> Stage:
        """The stage whose result is the image."""
        return self.stages[-1]

    def global_args(self, build_args: Mapping[str, str] | None = None) -> dict[str, str]:
        """Values of the ARGs declared before the first FROM (plus BuildKit's platform ARGs).

        Raises:
            DockerfileError: an ARG default has unbalanced quotes.
        """
        given = build_args or {}
        values: dict[str, str] = dict(PLATFORM_ARGS)
        for instruction in self.meta_args:
            for name, raw in arg_pairs(instruction, self):
                if name in given:
                    values[name] = given[name]
                elif raw is not None:
                    values[name] = evaluated(raw, values, self, instruction)
                else:
                    values.setdefault(name, "")
        return values

    def base_images(self, build_args: Mapping[str, str] | None = None) -> list[str]:
        """Each stage's FROM with global ARGs expanded, in stage order.

        Raises:
            DockerfileError: a FROM uses unbalanced quotes.
        """
        scope = self.global_args(build_args)
        return [evaluated(stage.base, scope, self, stage.instructions[0]) for stage in self.stages]

    def parent_stage(self, stage: Stage, build_args: Mapping[str, str] | None = None) -> Stage | None:
        """The earlier stage ``stage`` is built FROM, or None when it starts from an image.

        Raises:
            DockerfileError: a FROM uses unbalanced quotes.
        """
        base = self.base_images(build_args)[stage.index].lower()
        for earlier in self.stages[: stage.index]:
            if earlier.name is not None and earlier.name == base:
                return earlier
        return None

    def final_chain(self, build_args: Mapping[str, str] | None = None) -> tuple[Stage, ...]:
        """The final stage and the stages it is built FROM, root first.

        Raises:
            DockerfileError: a FROM uses unbalanced quotes.
        """
        chain = [self.final_stage]
        while (parent := self.parent_stage(chain[-1], build_args)) is not None:
            chain.append(parent)
        return tuple(reversed(chain))

    def final_base_image(self, build_args: Mapping[str, str] | None = None) -> str:
        """The image the final stage ultimately starts from (``scratch`` included).

        Raises:
            DockerfileError: a FROM uses unbalanced quotes.
        """
        root = self.final_chain(build_args)[0]
        return self.base_images(build_args)[root.index]


def arg_pairs(instruction: Instruction, dockerfile: Dockerfile) -> list[tuple[str, str | None]]:
    """An ARG's declarations as (name, raw default), None where it declares no default."""
    pairs: list[tuple[str, str | None]] = []
    for word in raw_words(instruction.body, dockerfile.escape):
        name, sep, value = word.partition("=")
        pairs.append((name, value if sep else None))
    return pairs


def name_value_pairs(instruction: Instruction, path: Path, escape: str) -> list[tuple[str, str]]:
    """ENV/LABEL arguments as raw (key, value) pairs: ``k=v k2="v 2"`` or the legacy ``k value``."""
    keyword, body = instruction.keyword, instruction.body
    rule = RULE_KEY_VALUE.format(kw=keyword)
    words = raw_words(body, escape)
    if not words:
        raise DockerfileError(path, f"{keyword} requires arguments", line=instruction.line, rule=rule)
    if "=" not in words[0]:
        parts = BLANKS.split(body.strip(), maxsplit=1)
        if len(parts) < 2:
            problem = f"{keyword} {parts[0]} has no value"
            raise DockerfileError(path, problem, line=instruction.line, rule=rule)
        return [(parts[0], parts[1])]
    pairs: list[tuple[str, str]] = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            problem = f"{keyword} {word!r} has no '=' (mixing forms is not allowed)"
            raise DockerfileError(path, problem, line=instruction.line, rule=rule)
        if not key:
            raise DockerfileError(path, f"{keyword} has an empty name", line=instruction.line, rule=rule)
        pairs.append((key, value))
    return pairs


def evaluated(raw: str, scope: Mapping[str, str], dockerfile: Dockerfile, instruction: Instruction) -> str:
    """The word ``raw`` of ``instruction`` with quotes removed and variables of ``scope`` expanded.

    Raises:
        DockerfileError: the word's quotes are unbalanced.
    """
    try:
        return expand_word(raw, scope, dockerfile.escape)
    except QuoteError as exc:
        problem = f"{exc} in {raw!r}"
        raise DockerfileError(dockerfile.path, problem, line=instruction.line, rule=RULE_QUOTES) from None
