"""Dockerfile parsing and evaluation, case by case against Docker's documented behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbit_ops.backends.local.dockerfile.evaluate import image_settings
from orbit_ops.backends.local.dockerfile.model import DockerfileError, Heredoc, Instruction
from orbit_ops.backends.local.dockerfile.read import parse_dockerfile
from orbit_ops.errors import BuildError

PATH = Path("apps/orbit/Dockerfile")


def parsed(text: str) -> list[tuple[str, str, list[str] | None, int]]:
    return [(i.keyword, i.args, i.json_args, i.line) for i in parse_dockerfile(text, PATH).instructions]


PARSE_CASES = [
    pytest.param(
        'FROM alpine:3.20\nRUN echo hi\nCMD ["sh"]\n',
        [("FROM", "alpine:3.20", None, 1), ("RUN", "echo hi", None, 2), ("CMD", '["sh"]', ["sh"], 3)],
        id="basic",
    ),
    pytest.param(
        "from alpine\nrUn echo hi\n",
        [("FROM", "alpine", None, 1), ("RUN", "echo hi", None, 2)],
        id="keywords-are-case-insensitive",
    ),
    pytest.param(
        "FROM alpine\nRUN apk add \\\n    curl \\\n    git\n",
        [("FROM", "alpine", None, 1), ("RUN", "apk add     curl     git", None, 2)],
        id="backslash-continuation",
    ),
    pytest.param(
        "FROM alpine\nRUN apk add \\\n# a comment inside\n\n    curl\nUSER app\n",
        [("FROM", "alpine", None, 1), ("RUN", "apk add     curl", None, 2), ("USER", "app", None, 6)],
        id="comment-and-empty-lines-inside-continuation-are-skipped",
    ),
    pytest.param(
        "FROM alpine\nRUN echo a \\   \n  b\n",
        [("FROM", "alpine", None, 1), ("RUN", "echo a   b", None, 2)],
        id="blanks-after-the-escape-still-continue",
    ),
    pytest.param(
        "FROM alpine\nRUN echo \\\\\nUSER app\n",
        [("FROM", "alpine", None, 1), ("RUN", "echo \\\\", None, 2), ("USER", "app", None, 3)],
        id="escaped-escape-at-end-is-not-a-continuation",
    ),
    pytest.param(
        "# escape=`\nFROM mcr.microsoft.com/windows\nCOPY . C:\\app\\\nRUN dir `\n  C:\\app\n",
        [
            ("FROM", "mcr.microsoft.com/windows", None, 2),
            ("COPY", ". C:\\app\\", None, 3),
            ("RUN", "dir   C:\\app", None, 4),
        ],
        id="escape-directive-backtick",
    ),
    pytest.param(
        "# ESCAPE = `\nFROM x\nRUN a `\n b\n",
        [("FROM", "x", None, 2), ("RUN", "a  b", None, 3)],
        id="directive-names-are-case-insensitive",
    ),
    pytest.param(
        "# comment first\n# escape=`\nFROM x\nRUN a \\\n b\n",
        [("FROM", "x", None, 3), ("RUN", "a  b", None, 4)],
        id="directive-after-a-comment-is-a-comment",
    ),
    pytest.param(
        "FROM x\nRUN echo hi # not a comment\n  # indented comment\n",
        [("FROM", "x", None, 1), ("RUN", "echo hi # not a comment", None, 2)],
        id="hash-inside-an-instruction-is-an-argument",
    ),
    pytest.param(
        "\ufeffFROM x\r\nRUN a \\\r\n  b\r\n",
        [("FROM", "x", None, 1), ("RUN", "a   b", None, 2)],
        id="bom-and-crlf",
    ),
    pytest.param(
        'FROM x\nENTRYPOINT ["/bin/app", "--flag"]\nCMD echo "$HOME"\n',
        [
            ("FROM", "x", None, 1),
            ("ENTRYPOINT", '["/bin/app", "--flag"]', ["/bin/app", "--flag"], 2),
            ("CMD", 'echo "$HOME"', None, 3),
        ],
        id="exec-form-and-shell-form",
    ),
    pytest.param(
        'FROM x\nRUN [ -f /etc/os-release ] && echo yes\nRUN [ "$A" = b ]\n',
        [
            ("FROM", "x", None, 1),
            ("RUN", "[ -f /etc/os-release ] && echo yes", None, 2),
            ("RUN", '[ "$A" = b ]', None, 3),
        ],
        id="shell-test-bracket-is-shell-form",
    ),
    pytest.param(
        'FROM x\nCOPY --chown=1:1 ["a b", "/dst/"]\n',
        [("FROM", "x", None, 1), ("COPY", '--chown=1:1 ["a b", "/dst/"]', ["a b", "/dst/"], 2)],
        id="exec-form-after-flags",
    ),
    pytest.param(
        "ARG BASE=alpine\nARG TAG\nFROM ${BASE}:${TAG} AS build\nFROM build\n",
        [
            ("ARG", "BASE=alpine", None, 1),
            ("ARG", "TAG", None, 2),
            ("FROM", "${BASE}:${TAG} AS build", None, 3),
            ("FROM", "build", None, 4),
        ],
        id="arg-before-from-and-stages",
    ),
    pytest.param(
        "FROM x\nRUN <<EOF\necho one\n  echo two\nEOF\nUSER app\n",
        [("FROM", "x", None, 1), ("RUN", "<<EOF\necho one\n  echo two\nEOF", None, 2), ("USER", "app", None, 6)],
        id="heredoc-kept-in-the-instruction-text",
    ),
    pytest.param(
        'FROM x\nRUN ["sh", "-c", "cat <<EOF"]\nUSER app\n',
        [
            ("FROM", "x", None, 1),
            ("RUN", '["sh", "-c", "cat <<EOF"]', ["sh", "-c", "cat <<EOF"], 2),
            ("USER", "app", None, 3),
        ],
        id="no-heredoc-in-exec-form",
    ),
    pytest.param(
        "FROM x\nRUN echo '<<EOF'\nUSER app\n",
        [("FROM", "x", None, 1), ("RUN", "echo '<<EOF'", None, 2), ("USER", "app", None, 3)],
        id="quoted-heredoc-marker-is-text",
    ),
    pytest.param(
        "FROM x\n\n\n# only comments\n",
        [("FROM", "x", None, 1)],
        id="trailing-blank-and-comment-lines",
    ),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_parse(text: str, expected: list[tuple[str, str, list[str] | None, int]]) -> None:
    assert parsed(text) == expected


def test_directives_are_recorded() -> None:
    dockerfile = parse_dockerfile("# syntax=docker/dockerfile:1\n# escape=`\n\nFROM x\n", PATH)
    assert dockerfile.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert dockerfile.escape == "`"


HEREDOC_CASES = [
    pytest.param(
        "FROM x\nRUN <<EOF\nset -e\necho $A\nEOF\n",
        (Heredoc("EOF", "set -e\necho $A\n", chomp=False, expand=True),),
        id="plain",
    ),
    pytest.param(
        "FROM x\nRUN <<-EOT\n\techo tabbed\n\tEOT\n",
        (Heredoc("EOT", "\techo tabbed\n", chomp=True, expand=True),),
        id="chomp-accepts-a-tab-indented-delimiter",
    ),
    pytest.param(
        "FROM x\nCOPY <<'EOF' /etc/motd\nHello $USER\nEOF\n",
        (Heredoc("EOF", "Hello $USER\n", chomp=False, expand=False),),
        id="quoted-delimiter-does-not-expand",
    ),
    pytest.param(
        "FROM x\nRUN <<A cat /dev/stdin && cat <<B\nfirst\nA\nsecond\nB\n",
        (Heredoc("A", "first\n", chomp=False, expand=True), Heredoc("B", "second\n", chomp=False, expand=True)),
        id="two-heredocs-in-order",
    ),
    pytest.param(
        "FROM x\nRUN python3 <<EOF > /out\nprint(1)\nEOF\n",
        (Heredoc("EOF", "print(1)\n", chomp=False, expand=True),),
        id="heredoc-with-redirect",
    ),
]


@pytest.mark.parametrize(("text", "expected"), HEREDOC_CASES)
def test_heredocs(text: str, expected: tuple[Heredoc, ...]) -> None:
    instruction = parse_dockerfile(text, PATH).instructions[1]
    assert instruction.heredocs == expected
    assert instruction.end_line == text.count("\n")


ERROR_CASES = [
    pytest.param(
        "FROM x\nFORM y\n",
        2,
        "unknown instruction 'FORM' (did you mean FROM?)",
        "an instruction is one of",
        id="unknown-instruction",
    ),
    pytest.param("", 1, "no FROM instruction", "at least one FROM", id="empty-file"),
    pytest.param(
        "FROM x\nUSER a\n\\\n", 3, "followed by no instruction", "an instruction is one of", id="dangling-continuation"
    ),
    pytest.param("# just a comment\nARG A=1\n", 2, "no FROM instruction", "at least one FROM", id="only-args"),
    pytest.param(
        "ARG A\nRUN echo\nFROM x\n",
        2,
        "RUN comes before the first FROM",
        "only ARG may come before",
        id="instruction-before-from",
    ),
    pytest.param(
        'FROM x\nCMD ["app", "--serve"\n',
        2,
        "CMD exec form is not a valid JSON array",
        "JSON array",
        id="unterminated-json-cmd",
    ),
    pytest.param(
        'FROM x\nRUN ["apt-get", "install"\n',
        2,
        "RUN exec form is not a valid JSON array",
        "JSON array",
        id="unterminated-json-run",
    ),
    pytest.param(
        'FROM x\nENTRYPOINT ["app", 1]\n',
        2,
        "holds something other than strings",
        "JSON array",
        id="json-array-of-non-strings",
    ),
    pytest.param("# escape=x\nFROM x\n", 1, "invalid escape token 'x'", "backslash", id="bad-escape"),
    pytest.param("# syntax=a\n# syntax=b\nFROM x\n", 2, "appears twice", "at most once", id="duplicate-directive"),
    pytest.param(
        "FROM x\nRUN <<EOF\necho\n", 2, "heredoc 'EOF' is never terminated", "delimiter", id="unterminated-heredoc"
    ),
    pytest.param("FROM x y\n", 1, "FROM takes an image", "FROM [--platform", id="from-two-words"),
    pytest.param("FROM x AS 1st\n", 1, "invalid stage name '1st'", "stage name starts", id="bad-stage-name"),
    pytest.param(
        "FROM x AS a\nFROM y AS A\n", 2, "stage name 'a' is already used on line 1", "unique", id="duplicate-stage"
    ),
    pytest.param(
        "FROM x\nCOPY onlyone\n",
        2,
        "COPY requires at least one source and a destination",
        "reference",
        id="copy-without-destination",
    ),
    pytest.param(
        "FROM x\nSHELL /bin/bash -c\n",
        2,
        "SHELL must be written in exec (JSON) form",
        "JSON array",
        id="shell-not-json",
    ),
    pytest.param("FROM x\nENV A=1 B\n", 2, "ENV 'B' has no '='", "key>=<value>", id="env-mixed-forms"),
    pytest.param("FROM x\nENV ONLYNAME\n", 2, "ENV ONLYNAME has no value", "key>=<value>", id="env-no-value"),
    pytest.param(
        'FROM x\nLABEL a="unclosed\n', 2, "unmatched double quote", "quotes are balanced", id="label-unbalanced-quote"
    ),
    pytest.param("FROM x\nWORKDIR\n", 2, "WORKDIR requires arguments", "reference", id="workdir-empty"),
    pytest.param(
        "FROM x\nONBUILD FROM y\n", 2, "FROM is not allowed as an ONBUILD trigger", "reference", id="onbuild-from"
    ),
    pytest.param(
        "FROM x\nHEALTHCHECK --interval=5s CURL x\n",
        2,
        "HEALTHCHECK takes NONE or CMD",
        "reference",
        id="healthcheck-kind",
    ),
]


@pytest.mark.parametrize(("text", "line", "problem", "rule"), ERROR_CASES)
def test_errors_name_file_line_and_rule(text: str, line: int, problem: str, rule: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        parse_dockerfile(text, PATH)
    error = caught.value
    assert isinstance(error, BuildError)
    assert error.path == PATH
    assert error.line == line
    assert problem in error.problem
    assert rule in error.rule
    assert str(error).startswith(f"{PATH}:{line}: ")
    assert str(error).endswith(f"(rule: {error.rule})")


def test_stages_and_base_images_expand_global_args() -> None:
    dockerfile = parse_dockerfile(
        "ARG PY=3.12\nARG REG=ghcr.io/acme\n"
        "FROM --platform=$BUILDPLATFORM python:${PY}-slim AS Build\nRUN make\n"
        "FROM ${REG}/runtime:${TARGETARCH} AS runtime\n"
        "FROM runtime\nCOPY --from=build /out /app\n",
        PATH,
    )
    assert [(s.index, s.name, s.line, s.platform) for s in dockerfile.stages] == [
        (0, "build", 3, "$BUILDPLATFORM"),
        (1, "runtime", 5, None),
        (2, None, 6, None),
    ]
    assert dockerfile.base_images() == ["python:3.12-slim", "ghcr.io/acme/runtime:amd64", "runtime"]
    assert dockerfile.base_images({"PY": "3.13"})[0] == "python:3.13-slim"
    assert [s.index for s in dockerfile.final_chain()] == [1, 2]
    assert dockerfile.final_base_image() == "ghcr.io/acme/runtime:amd64"
    assert [i.keyword for i in dockerfile.stages[0].instructions] == ["FROM", "RUN"]


def test_flags_are_split_from_the_body() -> None:
    instruction = parse_dockerfile(
        "FROM x\nRUN --mount=type=cache,target=/root/.cache -- pip install .\n", PATH
    ).instructions[1]
    assert instruction.flags == ("--mount=type=cache,target=/root/.cache",)
    assert instruction.body == "pip install ."
    assert instruction.args == "--mount=type=cache,target=/root/.cache -- pip install ."


def settings_of(text: str, **build_args: str) -> dict[str, object]:
    result = image_settings(parse_dockerfile(text, PATH), build_args=build_args or None)
    return {
        "base": result.base_image,
        "env": dict(result.env),
        "labels": dict(result.labels),
        "workdir": result.working_dir,
        "user": result.user,
        "ports": result.exposed_ports,
        "entrypoint": result.entrypoint,
        "cmd": result.cmd,
        "volumes": result.volumes,
        "stop": result.stop_signal,
    }


SETTINGS_CASES = [
    pytest.param(
        'FROM x\nENV A=1 B="two words" C=it\\ is\nENV LEGACY the rest of the line\n',
        {"env": {"A": "1", "B": "two words", "C": "it is", "LEGACY": "the rest of the line"}},
        id="env-forms-and-quotes",
    ),
    pytest.param(
        "FROM x\nENV A=1\nENV A=2 B=$A C=${A}x\n",
        {"env": {"A": "2", "B": "1", "C": "1x"}},
        id="env-values-see-the-environment-before-the-instruction",
    ),
    pytest.param(
        "FROM x\nENV PATH=/app/bin:$PATH HOME_DIR=${HOME:-/root}\n",
        {"env": {"PATH": "/app/bin:$PATH", "HOME_DIR": "${HOME:-/root}"}},
        id="variables-from-the-base-image-stay-as-written",
    ),
    pytest.param(
        "FROM x\nARG VERSION=1.0\nARG EMPTY\nENV V=$VERSION E=${EMPTY:-fallback} P=${VERSION:+set} Q='$VERSION'\n",
        {"env": {"V": "1.0", "E": "fallback", "P": "set", "Q": "$VERSION"}},
        id="args-expand-and-single-quotes-do-not",
    ),
    pytest.param(
        "ARG VERSION=1.0\nFROM x\nENV A=$VERSION\nARG VERSION\nENV B=$VERSION\n",
        {"env": {"A": "$VERSION", "B": "1.0"}},
        id="global-arg-needs-redeclaring-in-the-stage",
    ),
    pytest.param(
        'FROM x\nLABEL org.example.team=ops "org.example.desc"="a b"\nLABEL legacy value here\n',
        {"labels": {"org.example.team": "ops", "org.example.desc": "a b", "legacy": "value here"}},
        id="labels",
    ),
    pytest.param(
        "FROM x\nWORKDIR /srv\nWORKDIR app\nWORKDIR ../data\nENV D=/opt\nWORKDIR $D/x\n",
        {"workdir": "/opt/x"},
        id="workdir-relative-and-expanded",
    ),
    pytest.param(
        "FROM x\nWORKDIR rel\n",
        {"workdir": "/rel"},
        id="workdir-relative-to-root",
    ),
    pytest.param(
        "FROM x\nARG UID=10001\nUSER ${UID}:0\n",
        {"user": "10001:0"},
        id="user",
    ),
    pytest.param(
        "FROM x\nEXPOSE 8080 53/UDP\nEXPOSE 9000-9002/tcp\n",
        {"ports": ("8080/tcp", "53/udp", "9000/tcp", "9001/tcp", "9002/tcp")},
        id="expose-protocols-and-ranges",
    ),
    pytest.param(
        'FROM x\nENTRYPOINT ["/app"]\nCMD ["--serve"]\n',
        {"entrypoint": ("/app",), "cmd": ("--serve",)},
        id="exec-form-commands",
    ),
    pytest.param(
        'FROM x\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\nCMD run.sh "$PORT"\n',
        {"cmd": ("/bin/bash", "-o", "pipefail", "-c", 'run.sh "$PORT"'), "entrypoint": None},
        id="shell-form-uses-the-shell",
    ),
    pytest.param(
        'FROM x AS base\nCMD ["base"]\nFROM base\nENTRYPOINT ["/entry"]\n',
        {"entrypoint": ("/entry",), "cmd": None, "base": "x"},
        id="entrypoint-drops-an-inherited-cmd",
    ),
    pytest.param(
        'FROM x AS base\nCMD ["base"]\nFROM base\nCMD ["mine"]\nENTRYPOINT ["/entry"]\n',
        {"entrypoint": ("/entry",), "cmd": ("mine",)},
        id="entrypoint-keeps-a-cmd-set-in-the-same-stage",
    ),
    pytest.param(
        "FROM golang AS build\nENV CGO=0\nUSER builder\nFROM gcr.io/distroless/static\nUSER 65532\n",
        {"env": {}, "user": "65532", "base": "gcr.io/distroless/static"},
        id="unrelated-stages-do-not-leak",
    ),
    pytest.param(
        "FROM python AS base\nENV A=1\nWORKDIR /app\nFROM base\nENV B=2\n",
        {"env": {"A": "1", "B": "2"}, "workdir": "/app", "base": "python"},
        id="settings-inherit-along-the-stage-chain",
    ),
    pytest.param(
        'FROM scratch\nVOLUME ["/data", "/logs"]\nVOLUME /cache\nSTOPSIGNAL SIGTERM\n',
        {"volumes": ("/data", "/logs", "/cache"), "stop": "SIGTERM", "base": "scratch"},
        id="volumes-and-stop-signal",
    ),
]


@pytest.mark.parametrize(("text", "expected"), SETTINGS_CASES)
def test_image_settings(text: str, expected: dict[str, object]) -> None:
    actual = settings_of(text)
    assert {key: actual[key] for key in expected} == expected


def test_build_args_override_declared_defaults_only() -> None:
    text = "FROM x\nARG MODE=dev\nENV MODE=$MODE OTHER=$UNDECLARED\n"
    assert settings_of(text, MODE="prod", UNDECLARED="no")["env"] == {"MODE": "prod", "OTHER": "$UNDECLARED"}


@pytest.mark.parametrize(
    "expose",
    ["0", "70000", "80/http", "8080-8000", "$PORT"],
)
def test_invalid_ports_are_refused_with_the_line(expose: str) -> None:
    dockerfile = parse_dockerfile(f"FROM x\nUSER app\nEXPOSE {expose}\n", PATH)
    with pytest.raises(DockerfileError) as caught:
        image_settings(dockerfile)
    assert caught.value.line == 3
    assert "EXPOSE takes" in caught.value.rule


def test_instruction_text_is_a_one_line_summary() -> None:
    instruction = Instruction("RUN", "<<EOF\necho\nEOF", None, 2, heredocs=(Heredoc("EOF", "echo\n", False, True),))
    assert instruction.text == "RUN <<EOF"
    assert instruction.body == "<<EOF"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "FROM x",
                    "FROM a AS b",
                    "RUN echo",
                    'CMD ["a"',
                    'ENV A="b',
                    "ARG X",
                    "# escape=`",
                    "\\",
                    "RUN <<EOF",
                    "EOF",
                    "COPY a b",
                    "LABEL a=b",
                    "EXPOSE 80",
                    "  # c",
                    "",
                    "WORKDIR $X",
                    "`",
                ]
            ),
            st.text(max_size=30),
        ),
        max_size=12,
    )
)
def test_hostile_input_raises_only_dockerfile_errors(lines: list[str]) -> None:
    text = "\n".join(lines)
    try:
        dockerfile = parse_dockerfile(text, PATH)
        image_settings(dockerfile)
    except DockerfileError:
        pass
