"""Dockerfile parsing: instructions, build stages, and the image settings the final stage declares.

The local builder runs no container engine, yet the image it writes must carry the runtime settings
Docker would record (ENV, LABEL, WORKDIR, USER, EXPOSE, ENTRYPOINT, CMD, ...). So this module follows
the rules of Docker's reference parser (moby/buildkit ``frontend/dockerfile/parser``): parser
directives and the escape character, comments, continuation lines, heredocs, exec (JSON) versus shell
form, ARG scoping and multi-stage builds. It parses and evaluates; it never executes anything. Where a
value cannot be known without the base image, which the local builder never pulls (a variable set by
the base image's ENV, say), the reference is kept as written rather than guessed.

Two places are deliberately stricter than Docker, because Docker's lenience there silently yields a
broken image: an exec form that is clearly meant as JSON but does not parse (``CMD ["app", "x"``) is an
error instead of falling back to shell form, and an unknown instruction is an error at parse time.
"""

from __future__ import annotations

import difflib
import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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

_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEREDOC_RE = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_STAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_NAME_START = re.compile(r"[A-Za-z_]")
_NAME_CHARS = re.compile(r"[A-Za-z0-9_]+")
_BLANKS = re.compile(r"[\t\v\f\r ]+")
_PORT_RE = re.compile(r"^(\d+)(?:-(\d+))?(?:/([A-Za-z]+))?$")

_WITH_FLAGS = frozenset({"FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"})
_WITH_HEREDOCS = frozenset({"RUN", "COPY", "ADD"})
_EXEC_FORM = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL", "ADD", "COPY", "VOLUME"})
# A shell command may well start with "[" (the test builtin) for these; only '["' shows JSON intent.
_SHELL_MAY_START_WITH_BRACKET = frozenset({"RUN", "ADD", "COPY", "VOLUME"})
_NEED_ARGUMENTS = frozenset(KEYWORDS) - {"CMD", "ENTRYPOINT"}
# Instructions whose words Docker unquotes and expands itself (the others go to a shell as written).
_WORDS_PROCESSED = frozenset(
    {"ADD", "ARG", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}
)


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
            for name, raw in _arg_pairs(instruction, self):
                if name in given:
                    values[name] = given[name]
                elif raw is not None:
                    values[name] = _word(raw, values, self, instruction)
                else:
                    values.setdefault(name, "")
        return values

    def base_images(self, build_args: Mapping[str, str] | None = None) -> list[str]:
        """Each stage's FROM with global ARGs expanded, in stage order.

        Raises:
            DockerfileError: a FROM uses unbalanced quotes.
        """
        scope = self.global_args(build_args)
        return [_word(stage.base, scope, self, stage.instructions[0]) for stage in self.stages]

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


def parse_dockerfile(text: str, path: Path | str) -> Dockerfile:
    """Parse a Dockerfile's text; ``path`` is used in error messages.

    Raises:
        DockerfileError: the file breaks a rule (unknown instruction, no FROM, an instruction other
            than ARG before the first FROM, a malformed exec form, an unterminated heredoc, ...).
    """
    return _Parser(text, Path(path)).parse()


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


class _Parser:
    """Line-oriented parse following BuildKit: directives, comments, continuations, heredocs."""

    def __init__(self, text: str, path: Path) -> None:
        if text.startswith("\ufeff"):
            text = text[1:]
        self.lines = [line.removesuffix("\r") for line in text.split("\n")]
        self.path = path
        self.escape = "\\"
        self.pos = 0

    def error(self, problem: str, line: int | None, rule: str) -> DockerfileError:
        return DockerfileError(self.path, problem, line=line, rule=rule)

    def parse(self) -> Dockerfile:
        directives = self._directives()
        instructions: list[Instruction] = []
        while self.pos < len(self.lines):
            raw = self.lines[self.pos]
            self.pos += 1
            start = self.pos
            stripped = raw.lstrip()
            if not stripped or stripped.startswith("#"):
                continue
            joined, more = _trim_continuation(stripped, self.escape)
            while more and self.pos < len(self.lines):
                raw = self.lines[self.pos]
                self.pos += 1
                # Docker skips comment lines and (deprecated) empty lines inside a continuation.
                if raw.lstrip().startswith("#") or not raw.strip():
                    continue
                piece, more = _trim_continuation(raw, self.escape)
                joined += piece
            if not joined.strip():
                # Docker turns a continuation with nothing after it into an unnamed instruction and fails.
                raise self.error("a line continuation is followed by no instruction", start, RULE_KEYWORD)
            instructions.append(self._instruction(joined, start))
        return self._assemble(tuple(instructions), directives)

    def _directives(self) -> dict[str, str]:
        found: dict[str, str] = {}
        while self.pos < len(self.lines):
            match = _DIRECTIVE_RE.match(self.lines[self.pos].lstrip())
            if match is None or match.group(1).lower() not in _KNOWN_DIRECTIVES:
                break
            key, value = match.group(1).lower(), match.group(2)
            self.pos += 1
            if key in found:
                raise self.error(f"the {key} parser directive appears twice", self.pos, RULE_DIRECTIVE_ONCE)
            if key == "escape":
                if value not in ("\\", "`"):
                    raise self.error(f"invalid escape token {value!r}", self.pos, RULE_ESCAPE)
                self.escape = value
            found[key] = value
        return found

    def _instruction(self, joined: str, line: int) -> Instruction:
        parts = _BLANKS.split(joined.strip(), maxsplit=1)
        word = parts[0]
        rest = parts[1] if len(parts) > 1 else ""
        keyword = word.upper()
        if keyword not in KEYWORDS:
            close = difflib.get_close_matches(keyword, KEYWORDS, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise self.error(f"unknown instruction {word!r}{hint}", line, RULE_KEYWORD)
        flags, body = _split_flags(rest, self.escape) if keyword in _WITH_FLAGS else ((), rest)
        if keyword in _NEED_ARGUMENTS and not body.strip():
            raise self.error(f"{keyword} requires arguments", line, RULE_ARGUMENTS)
        json_args = self._exec_form(keyword, body, line)
        heredocs: tuple[Heredoc, ...] = ()
        heredoc_keyword = keyword
        heredoc_body = body
        if keyword == "ONBUILD":
            sub = _BLANKS.split(body.strip(), maxsplit=1)
            heredoc_keyword = sub[0].upper()
            heredoc_body = sub[1] if len(sub) > 1 else ""
        if heredoc_keyword in _WITH_HEREDOCS and not heredoc_body.lstrip().startswith("["):
            heredocs = self._heredocs(heredoc_body, line)
        args = rest + "".join(f"\n{doc.content}{doc.name}" for doc in heredocs)
        instruction = Instruction(keyword, args, json_args, line, self.pos, flags, heredocs)
        self._check(instruction, body)
        return instruction

    def _exec_form(self, keyword: str, body: str, line: int) -> list[str] | None:
        if keyword not in _EXEC_FORM:
            return None
        text = body.strip()
        if not text.startswith("["):
            return None
        meant_as_json = keyword not in _SHELL_MAY_START_WITH_BRACKET or text.startswith('["')
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            if meant_as_json:
                problem = f"{keyword} exec form is not a valid JSON array ({exc.msg}): {text}"
                raise self.error(problem, line, RULE_EXEC_FORM) from None
            return None
        if not isinstance(value, list):
            return None
        if not all(isinstance(item, str) for item in value):
            raise self.error(f"{keyword} exec form holds something other than strings", line, RULE_EXEC_FORM)
        return [str(item) for item in value]

    def _heredocs(self, body: str, line: int) -> tuple[Heredoc, ...]:
        found: list[Heredoc] = []
        for word in _raw_words(body, self.escape):
            doc = _heredoc_opener(word, self.escape)
            if doc is None:
                continue
            content: list[str] = []
            while True:
                if self.pos >= len(self.lines):
                    raise self.error(f"heredoc {doc.name!r} is never terminated", line, RULE_HEREDOC)
                candidate = self.lines[self.pos]
                self.pos += 1
                if (candidate.lstrip("\t") if doc.chomp else candidate) == doc.name:
                    break
                content.append(candidate + "\n")
            found.append(Heredoc(doc.name, "".join(content), doc.chomp, doc.expand))
        return tuple(found)

    def _check(self, instruction: Instruction, body: str) -> None:
        """Argument rules of the individual instructions (BuildKit's ``instructions`` package)."""
        keyword, line = instruction.keyword, instruction.line
        words = _raw_words(body, self.escape)
        if keyword == "FROM":
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
                raise self.error(f"FROM takes an image and an optional 'AS <name>': {body}", line, RULE_FROM_ARGS)
            if len(words) == 3 and not _STAGE_NAME_RE.match(words[2].lower()):
                raise self.error(f"invalid stage name {words[2]!r}", line, RULE_STAGE_NAME)
        elif keyword in ("COPY", "ADD"):
            count = len(instruction.json_args) if instruction.json_args is not None else len(words)
            if count < 2:
                raise self.error(f"{keyword} requires at least one source and a destination", line, RULE_ARGUMENTS)
        elif keyword == "SHELL" and instruction.json_args is None:
            raise self.error("SHELL must be written in exec (JSON) form", line, RULE_EXEC_FORM)
        elif keyword in ("ENV", "LABEL"):
            _name_value_pairs(instruction, self.path, self.escape)
        elif keyword == "ONBUILD":
            trigger = words[0].upper()
            if trigger in ("ONBUILD", "FROM", "MAINTAINER") or trigger not in KEYWORDS:
                raise self.error(f"{trigger} is not allowed as an ONBUILD trigger", line, RULE_ARGUMENTS)
        elif keyword == "HEALTHCHECK":
            kind = words[0].upper()
            if kind == "NONE" and len(words) > 1:
                raise self.error("HEALTHCHECK NONE takes no arguments", line, RULE_ARGUMENTS)
            if kind not in ("NONE", "CMD") or (kind == "CMD" and len(words) < 2):
                raise self.error("HEALTHCHECK takes NONE or CMD <command>", line, RULE_ARGUMENTS)
        if keyword in _WORDS_PROCESSED and instruction.json_args is None:
            for word in words:
                _check_quotes(word, self.escape, self.path, line)

    def _assemble(self, instructions: tuple[Instruction, ...], directives: dict[str, str]) -> Dockerfile:
        meta_args: list[Instruction] = []
        stages: list[Stage] = []
        current: list[Instruction] = []
        for instruction in instructions:
            if instruction.keyword == "FROM":
                if current:
                    stages.append(self._stage(len(stages), current))
                current = [instruction]
            elif current:
                current.append(instruction)
            elif instruction.keyword == "ARG":
                meta_args.append(instruction)
            else:
                problem = f"{instruction.keyword} comes before the first FROM"
                raise self.error(problem, instruction.line, RULE_FIRST_FROM)
        if current:
            stages.append(self._stage(len(stages), current))
        if not stages:
            last = len(self.lines) if self.lines[-1] else max(len(self.lines) - 1, 1)
            raise self.error("no FROM instruction", last, RULE_NEEDS_FROM)
        seen: dict[str, int] = {}
        for stage in stages:
            if stage.name is None:
                continue
            if stage.name in seen:
                problem = f"stage name {stage.name!r} is already used on line {seen[stage.name]}"
                raise self.error(problem, stage.line, RULE_STAGE_UNIQUE)
            seen[stage.name] = stage.line
        return Dockerfile(
            path=self.path,
            instructions=instructions,
            stages=tuple(stages),
            meta_args=tuple(meta_args),
            directives=directives,
            escape=self.escape,
        )

    def _stage(self, index: int, instructions: list[Instruction]) -> Stage:
        head = instructions[0]
        words = _raw_words(head.body, self.escape)
        platform = None
        for flag in head.flags:
            if flag.startswith("--platform="):
                platform = flag.split("=", 1)[1]
        return Stage(
            index=index,
            name=words[2].lower() if len(words) == 3 else None,
            base=words[0],
            platform=platform,
            line=head.line,
            instructions=tuple(instructions),
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
            for name, raw in _arg_pairs(instruction, dockerfile):
                if name in given:
                    self.args[name] = given[name]
                elif raw is not None:
                    self.args[name] = _word(raw, scope, dockerfile, instruction)
                else:
                    self.args[name] = global_values.get(name, "")
                scope = self.scope()
        elif keyword == "ENV":
            # Every value in one ENV sees the environment from before the instruction, as in Docker.
            pairs = _name_value_pairs(instruction, dockerfile.path, dockerfile.escape)
            for key, value in pairs:
                self.env[_word(key, scope, dockerfile, instruction)] = _word(value, scope, dockerfile, instruction)
        elif keyword == "LABEL":
            pairs = _name_value_pairs(instruction, dockerfile.path, dockerfile.escape)
            for key, value in pairs:
                self.labels[_word(key, scope, dockerfile, instruction)] = _word(value, scope, dockerfile, instruction)
        elif keyword == "WORKDIR":
            path = _word(instruction.body.strip(), scope, dockerfile, instruction)
            base = self.working_dir or "/"
            joined = posixpath.normpath(posixpath.join(base, path))
            self.working_dir = joined if joined.startswith("/") else "/" + joined
        elif keyword == "USER":
            self.user = _word(instruction.body.strip(), scope, dockerfile, instruction)
        elif keyword == "EXPOSE":
            for raw in _raw_words(instruction.body, dockerfile.escape):
                for port in _ports(_word(raw, scope, dockerfile, instruction), dockerfile, instruction):
                    self.ports[port] = None
        elif keyword == "VOLUME":
            words = instruction.json_args
            if words is None:
                raw_words = _raw_words(instruction.body, dockerfile.escape)
                words = [_word(raw, scope, dockerfile, instruction) for raw in raw_words]
            for volume in words:
                self.volumes[volume] = None
        elif keyword == "STOPSIGNAL":
            self.stop_signal = _word(instruction.body.strip(), scope, dockerfile, instruction)
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


def _trim_continuation(line: str, escape: str) -> tuple[str, bool]:
    """Strip a trailing escape token (and blanks after it); True when the instruction continues.

    An escape token preceded by another escape token is an escaped character, not a continuation.
    """
    stripped = line.rstrip(" \t")
    if not stripped.endswith(escape):
        return line, False
    before = stripped[:-1]
    if before.endswith(escape):
        return line, False
    return before, True


def _word_spans(text: str, escape: str) -> list[tuple[int, int]]:
    """Spans of blank-separated words, quotes and escapes kept (Docker's ``parseWords``)."""
    spans: list[tuple[int, int]] = []
    index, size = 0, len(text)
    while index < size:
        while index < size and text[index].isspace():
            index += 1
        if index >= size:
            break
        start, quote = index, ""
        while index < size:
            char = text[index]
            if quote:
                if char == escape and quote != "'" and index + 1 < size:
                    index += 2
                    continue
                if char == quote:
                    quote = ""
            elif char.isspace():
                break
            elif char in "'\"":
                quote = char
            elif char == escape and index + 1 < size:
                index += 2
                continue
            index += 1
        spans.append((start, index))
    return spans


def _raw_words(text: str, escape: str) -> list[str]:
    return [text[start:end] for start, end in _word_spans(text, escape)]


def _split_flags(rest: str, escape: str) -> tuple[tuple[str, ...], str]:
    """Split leading ``--name[=value]`` flags from the rest, as BuildKit's ``extractBuilderFlags``."""
    flags: list[str] = []
    end = 0
    for start, stop in _word_spans(rest, escape):
        word = rest[start:stop]
        if not word.startswith("--"):
            break
        end = stop
        if word == "--":
            break
        flags.append(word)
    return tuple(flags), rest[end:].lstrip()


def _heredoc_opener(word: str, escape: str) -> Heredoc | None:
    match = _HEREDOC_RE.match(word)
    if match is None or not match.group(3):
        return None
    delimiter = match.group(3)
    try:
        name = _process(delimiter, {}, escape)
    except _QuoteError:
        return None
    if not name or any(char.isspace() for char in name):
        return None
    expand = "'" not in delimiter and '"' not in delimiter
    return Heredoc(name=name, content="", chomp=match.group(2) == "-", expand=expand)


def _arg_pairs(instruction: Instruction, dockerfile: Dockerfile) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for word in _raw_words(instruction.body, dockerfile.escape):
        name, sep, value = word.partition("=")
        pairs.append((name, value if sep else None))
    return pairs


def _name_value_pairs(instruction: Instruction, path: Path, escape: str) -> list[tuple[str, str]]:
    """ENV/LABEL arguments as raw (key, value) pairs: ``k=v k2="v 2"`` or the legacy ``k value``."""
    keyword, body = instruction.keyword, instruction.body
    rule = RULE_KEY_VALUE.format(kw=keyword)
    words = _raw_words(body, escape)
    if not words:
        raise DockerfileError(path, f"{keyword} requires arguments", line=instruction.line, rule=rule)
    if "=" not in words[0]:
        parts = _BLANKS.split(body.strip(), maxsplit=1)
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


class _QuoteError(ValueError):
    pass


def _check_quotes(word: str, escape: str, path: Path, line: int) -> None:
    try:
        _process(word, {}, escape)
    except _QuoteError as exc:
        raise DockerfileError(path, f"{exc} in {word!r}", line=line, rule=RULE_QUOTES) from None


def _word(raw: str, scope: Mapping[str, str], dockerfile: Dockerfile, instruction: Instruction) -> str:
    try:
        return _process(raw, scope, dockerfile.escape)
    except _QuoteError as exc:
        problem = f"{exc} in {raw!r}"
        raise DockerfileError(dockerfile.path, problem, line=instruction.line, rule=RULE_QUOTES) from None


def _process(word: str, scope: Mapping[str, str], escape: str) -> str:
    """Remove quotes and escapes and expand variables, like BuildKit's ``ProcessWord``.

    Variables absent from ``scope`` are kept as written: they may come from the base image's
    environment, which the local builder does not know.
    """
    out: list[str] = []
    index, size = 0, len(word)
    while index < size:
        char = word[index]
        if char == escape:
            if index + 1 < size:
                out.append(word[index + 1])
            index += 2
        elif char == "'":
            close = word.find("'", index + 1)
            if close < 0:
                raise _QuoteError("unmatched single quote")
            out.append(word[index + 1 : close])
            index = close + 1
        elif char == '"':
            index = _double_quoted(word, index + 1, scope, escape, out)
        elif char == "$":
            text, index = _variable(word, index, scope, escape)
            out.append(text)
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _double_quoted(word: str, index: int, scope: Mapping[str, str], escape: str, out: list[str]) -> int:
    size = len(word)
    while index < size:
        char = word[index]
        if char == '"':
            return index + 1
        if char == escape and index + 1 < size and word[index + 1] in ('"', "$", escape):
            out.append(word[index + 1])
            index += 2
        elif char == "$":
            text, index = _variable(word, index, scope, escape)
            out.append(text)
        else:
            out.append(char)
            index += 1
    raise _QuoteError("unmatched double quote")


def _variable(word: str, index: int, scope: Mapping[str, str], escape: str) -> tuple[str, int]:
    """Expand the ``$NAME`` or ``${NAME...}`` at ``index``; return the text and the next index."""
    nxt = index + 1
    if nxt < len(word) and word[nxt] == "{":
        close, depth = nxt + 1, 1
        while close < len(word):
            if word[close] == "{":
                depth += 1
            elif word[close] == "}":
                depth -= 1
                if depth == 0:
                    break
            close += 1
        if close >= len(word):
            return word[index:], len(word)
        original = word[index : close + 1]
        inner = word[nxt + 1 : close]
        match = _NAME_CHARS.match(inner)
        if match is None:
            return original, close + 1
        name, modifier = match.group(0), inner[match.end() :]
        return _modified(name, modifier, original, scope, escape), close + 1
    if nxt < len(word) and _NAME_START.match(word[nxt]):
        match = _NAME_CHARS.match(word, nxt)
        assert match is not None
        name = match.group(0)
        return (scope[name] if name in scope else word[index : match.end()]), match.end()
    return "$", nxt


def _modified(name: str, modifier: str, original: str, scope: Mapping[str, str], escape: str) -> str:
    if name not in scope:
        return original
    value = scope[name]
    if modifier == "":
        return value
    for op in (":-", ":+", "-", "+"):
        if modifier.startswith(op):
            alternative = _process(modifier[len(op) :], scope, escape)
            if op == ":-":
                return value or alternative
            if op == ":+":
                return alternative if value else ""
            # Without the colon, a set-but-empty variable counts as set; every known name is set.
            return value if op == "-" else alternative
    return original
