"""Reading a Dockerfile: instructions and build stages, following Docker's reference parser.

The rules are those of moby/buildkit ``frontend/dockerfile/parser``: parser directives and the escape
character, comments, continuation lines, heredocs, exec (JSON) versus shell form and multi-stage builds.
It parses; it never executes anything.

Two places are deliberately stricter than Docker, because Docker's lenience there silently yields a
broken image: an exec form that is clearly meant as JSON but does not parse (``CMD ["app", "x"``) is an
error instead of falling back to shell form, and an unknown instruction is an error at parse time.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

from orbit_ops.backends.local.dockerfile.expand import QuoteError, expand_word, raw_words, word_spans
from orbit_ops.backends.local.dockerfile.model import (
    BLANKS,
    KEYWORDS,
    RULE_ARGUMENTS,
    RULE_DIRECTIVE_ONCE,
    RULE_ESCAPE,
    RULE_EXEC_FORM,
    RULE_FIRST_FROM,
    RULE_FROM_ARGS,
    RULE_HEREDOC,
    RULE_KEYWORD,
    RULE_NEEDS_FROM,
    RULE_QUOTES,
    RULE_STAGE_NAME,
    RULE_STAGE_UNIQUE,
    Dockerfile,
    DockerfileError,
    Heredoc,
    Instruction,
    Stage,
    name_value_pairs,
)

_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEREDOC_RE = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_STAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9\-_.]*$")

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


def parse_dockerfile(text: str, path: Path | str) -> Dockerfile:
    """Parse a Dockerfile's text; ``path`` is used in error messages.

    Raises:
        DockerfileError: the file breaks a rule (unknown instruction, no FROM, an instruction other
            than ARG before the first FROM, a malformed exec form, an unterminated heredoc, ...).
    """
    return _Parser(text, Path(path)).parse()


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
        parts = BLANKS.split(joined.strip(), maxsplit=1)
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
            sub = BLANKS.split(body.strip(), maxsplit=1)
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
        for word in raw_words(body, self.escape):
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
        words = raw_words(body, self.escape)
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
            name_value_pairs(instruction, self.path, self.escape)
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
        words = raw_words(head.body, self.escape)
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


def _split_flags(rest: str, escape: str) -> tuple[tuple[str, ...], str]:
    """Split leading ``--name[=value]`` flags from the rest, as BuildKit's ``extractBuilderFlags``."""
    flags: list[str] = []
    end = 0
    for start, stop in word_spans(rest, escape):
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
        name = expand_word(delimiter, {}, escape)
    except QuoteError:
        return None
    if not name or any(char.isspace() for char in name):
        return None
    expand = "'" not in delimiter and '"' not in delimiter
    return Heredoc(name=name, content="", chomp=match.group(2) == "-", expand=expand)


def _check_quotes(word: str, escape: str, path: Path, line: int) -> None:
    try:
        expand_word(word, {}, escape)
    except QuoteError as exc:
        raise DockerfileError(path, f"{exc} in {word!r}", line=line, rule=RULE_QUOTES) from None
