"""`.dockerignore` semantics, case for case with the tables Docker's own code is tested against.

Sources of the cases (read, then written down here as tables): moby/patternmatcher
``patternmatcher_test.go`` (TestMatches, TestMatch) and ``ignorefile_test.go`` (ReadAll), moby/buildkit
``dockerignore_test.go``, docker/docker-py ``tests/unit/utils_build_test.py`` (ExcludePathsTest) and the
examples of Docker's ``.dockerignore`` reference.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbit_ops.build.dockerignore import (
    DockerIgnore,
    IgnoreRule,
    MatchKind,
    MatchState,
    find_ignore_file,
    go_clean,
    load_ignore,
)
from orbit_ops.errors import ConfigError

EXACT, INEXACT, FAIL = "exact", "inexact", "fail"


def rules(*patterns: str) -> DockerIgnore:
    return DockerIgnore.parse("\n".join(patterns))


def single(pattern: str) -> IgnoreRule:
    (rule,) = rules(pattern).rules
    return rule


def go_dir(path: str) -> str:
    cut = path.rfind("/")
    return go_clean(path[: cut + 1]) if cut >= 0 else "."


def walk_match(ignore: DockerIgnore, text: str) -> bool:
    """Evaluate ``text`` the way a walk does: parents first, each handing its state down."""
    state: MatchState | None = None
    parent = go_dir(text)
    if parent != ".":
        parts = parent.split("/")
        for depth in range(1, len(parts) + 1):
            _, state = ignore.match("/".join(parts[:depth]), state)
    return ignore.match(text, state)[0]


# --- patternmatcher TestMatches: (pattern, path, exact | inexact (only through a parent) | fail) ---
MATCHES = [
    ("**", "file", EXACT),
    ("**", "file/", EXACT),
    ("**/", "file", EXACT),
    ("**/", "file/", EXACT),
    ("**", "/", EXACT),
    ("**/", "/", EXACT),
    ("**", "dir/file", EXACT),
    ("**/", "dir/file", EXACT),
    ("**", "dir/file/", EXACT),
    ("**/", "dir/file/", EXACT),
    ("**/**", "dir/file", EXACT),
    ("**/**", "dir/file/", EXACT),
    ("dir/**", "dir/file", EXACT),
    ("dir/**", "dir/file/", EXACT),
    ("dir/**", "dir/dir2/file", EXACT),
    ("dir/**", "dir/dir2/file/", EXACT),
    ("**/dir", "dir", EXACT),
    ("**/dir", "dir/file", INEXACT),
    ("**/dir2/*", "dir/dir2/file", EXACT),
    ("**/dir2/*", "dir/dir2/file/", INEXACT),
    ("**/dir2/**", "dir/dir2/dir3/file", EXACT),
    ("**/dir2/**", "dir/dir2/dir3/file/", EXACT),
    ("**file", "file", EXACT),
    ("**file", "dir/file", EXACT),
    ("**/file", "dir/file", EXACT),
    ("**file", "dir/dir/file", EXACT),
    ("**/file", "dir/dir/file", EXACT),
    ("**/file*", "dir/dir/file", EXACT),
    ("**/file*", "dir/dir/file.txt", EXACT),
    ("**/file*txt", "dir/dir/file.txt", EXACT),
    ("**/file*.txt", "dir/dir/file.txt", EXACT),
    ("**/file*.txt*", "dir/dir/file.txt", EXACT),
    ("**/**/*.txt", "dir/dir/file.txt", EXACT),
    ("**/**/*.txt2", "dir/dir/file.txt", FAIL),
    ("**/*.txt", "file.txt", EXACT),
    ("**/**/*.txt", "file.txt", EXACT),
    ("a**/*.txt", "a/file.txt", EXACT),
    ("a**/*.txt", "a/dir/file.txt", EXACT),
    ("a**/*.txt", "a/dir/dir/file.txt", EXACT),
    ("a/*.txt", "a/dir/file.txt", FAIL),
    ("a/*.txt", "a/file.txt", EXACT),
    ("a/*.txt**", "a/file.txt", EXACT),
    ("a[b-d]e", "ae", FAIL),
    ("a[b-d]e", "ace", EXACT),
    ("a[b-d]e", "aae", FAIL),
    ("a[^b-d]e", "aze", EXACT),
    (".*", ".foo", EXACT),
    (".*", "foo", FAIL),
    ("abc.def", "abcdef", FAIL),
    ("abc.def", "abc.def", EXACT),
    ("abc.def", "abcZdef", FAIL),
    ("abc?def", "abcZdef", EXACT),
    ("abc?def", "abcdef", FAIL),
    ("**/foo/bar", "foo/bar", EXACT),
    ("**/foo/bar", "dir/foo/bar", EXACT),
    ("**/foo/bar", "dir/dir2/foo/bar", EXACT),
    ("abc/**", "abc", FAIL),
    ("abc/**", "abc/def", EXACT),
    ("abc/**", "abc/def/ghi", EXACT),
    ("**/.foo", ".foo", EXACT),
    ("**/.foo", "bar.foo", FAIL),
    ("a(b)c/def", "a(b)c/def", EXACT),
    ("a(b)c/def", "a(b)c/xyz", FAIL),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", EXACT),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        EXACT,
    ),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", EXACT),
    # Unix-only rows: a backslash escapes.
    ("a\\\\", "a\\", EXACT),
    ("a\\*b", "a*b", EXACT),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), MATCHES)
def test_single_pattern_matches_like_patternmatcher(pattern: str, text: str, expected: str) -> None:
    rule = single(pattern)
    ignore = DockerIgnore((rule,))
    assert rule.matches(text) is (expected == EXACT)  # MatchesExact
    assert ignore.match(text)[0] is (expected != FAIL)  # MatchesOrParentMatches
    assert walk_match(ignore, text) is (expected != FAIL)  # MatchesUsingParentResults


MULTI = [
    (["**", "!util/docker/web"], "util/docker/web/foo", FAIL),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", EXACT),
    (
        ["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        FAIL,
    ),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", FAIL),
]


@pytest.mark.parametrize(("patterns", "text", "expected"), MULTI)
def test_later_rules_win_like_patternmatcher(patterns: list[str], text: str, expected: str) -> None:
    ignore = rules(*patterns)
    assert ignore.match(text)[0] is (expected != FAIL)
    assert walk_match(ignore, text) is (expected != FAIL)
    assert ignore.excluded(text) is (expected != FAIL)


# --- Go's filepath.Match tests as patternmatcher runs them (None: the pattern is rejected) --------
GLOB = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", True),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-\u03b6]*", "\u03b1", True),  # [a-zeta] matches alpha
    ("*[a-\u03b6]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("[]a]", "]", None),
    ("[-]", "-", None),
    ("[x-]", "x", None),
    ("[x-]", "-", None),
    ("[x-]", "z", None),
    ("[-x]", "x", None),
    ("[-x]", "-", None),
    ("[-x]", "a", None),
    ("\\", "a", None),
    ("[a-b-c]", "a", None),
    ("[", "a", None),
    ("[^", "a", None),
    ("[^bc", "a", None),
    ("a[", "a", None),
    ("a[", "ab", None),
    ("*x", "xxx", True),
    # Docker's regexp engine rejects a backwards range when it first matches (moby/moby#52203).
    ("[Local-Only]/", "x", None),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), GLOB)
def test_go_glob_cases(pattern: str, text: str, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(ConfigError):
            rules(pattern)
        return
    assert rules(pattern).match(text)[0] is expected


# --- patternmatcher TestCompile: how each pattern is classified -----------------------------------
KINDS = [
    ("*", MatchKind.REGEX),
    ("file*", MatchKind.REGEX),
    ("*file", MatchKind.REGEX),
    ("a*/b", MatchKind.REGEX),
    ("**", MatchKind.SUFFIX),
    ("**/**", MatchKind.REGEX),
    ("dir/**", MatchKind.PREFIX),
    ("**/dir", MatchKind.SUFFIX),
    ("**/dir2/*", MatchKind.REGEX),
    ("**/dir2/**", MatchKind.REGEX),
    ("**file", MatchKind.SUFFIX),
    ("**/file*txt", MatchKind.REGEX),
    ("**/**/*.txt", MatchKind.REGEX),
    ("a[b-d]e", MatchKind.REGEX),
    (".*", MatchKind.REGEX),
    ("abc.def", MatchKind.EXACT),
    ("abc?def", MatchKind.REGEX),
    ("**/foo/bar", MatchKind.SUFFIX),
    ("a(b)c/def", MatchKind.EXACT),
    ("a.|)$(}+{bc", MatchKind.EXACT),
]


@pytest.mark.parametrize(("pattern", "kind"), KINDS)
def test_patterns_are_classified_like_patternmatcher(pattern: str, kind: MatchKind) -> None:
    assert single(pattern).kind is kind


def test_leading_double_star_is_a_plain_suffix_as_in_docker() -> None:
    # "**file" is a suffix match in Docker, so it also catches "dir/myfile".
    assert single("**file").matches("dir/myfile")
    assert single("**.txt").matches("deep/dir/notes.txt")


def test_bare_caret_anchors_as_in_docker() -> None:
    assert single("a^b").matches("a^b")  # no wildcard: compared literally
    assert not single("a^b*").matches("a^bc")  # handed to the regexp engine, where '^' anchors


# --- ReadAll (patternmatcher ignorefile and buildkit dockerignore tests) --------------------------
def test_read_all_like_buildkit() -> None:
    text = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n"
    assert rules(*text.split("\n")).patterns == (
        "test1",
        "test2",
        "a/file/here",
        "lastfile",
        "!inverted/abs/path",
    )


@pytest.mark.parametrize("line", ["!", "! ", "!/"])
def test_bare_exception_is_rejected_with_file_and_line(line: str, tmp_path: Path) -> None:
    source = tmp_path / ".dockerignore"
    with pytest.raises(ConfigError) as caught:
        DockerIgnore.parse(f"ok\n# fine\n{line}\n", source)
    assert caught.value.line == 3
    assert caught.value.path == source
    assert str(source) in str(caught.value) and ":3:" in str(caught.value)


READ = [
    ("\ufeffa.txt", ["a.txt"]),  # BOM on the first line
    ("# comment\n  # not a comment", ["# not a comment"]),  # '#' only counts in column 1
    ("  spaced  \t", ["spaced"]),
    ("a\r\nb\r\n", ["a", "b"]),  # CRLF
    ("./a.py", ["a.py"]),
    ("a.py/", ["a.py"]),
    ("foo/whoops/../a.py", ["foo/a.py"]),
    ("/../b.py", ["b.py"]),
    ("../a.py", ["../a.py"]),  # Go's Clean keeps a leading ".." (docker-py drops it; Docker does not)
    ("//a//b//", ["a/b"]),
    ("!  ./keep/", ["!keep"]),
    ("/", ["/"]),
    (".", ["."]),
    ("a\fb\x1c", ["a\fb\x1c"]),  # Go trims neither the inner \f nor \x1c (not Unicode space)
]


@pytest.mark.parametrize(("text", "expected"), READ)
def test_lines_are_read_like_buildkit(text: str, expected: list[str]) -> None:
    assert list(DockerIgnore.parse(text).patterns) == expected


def test_bad_class_names_file_line_and_pattern(tmp_path: Path) -> None:
    source = tmp_path / "Dockerfile.dockerignore"
    with pytest.raises(ConfigError) as caught:
        DockerIgnore.parse("node_modules\n\n*.log[\n", source)
    error = caught.value
    assert error.line == 3 and error.path == source
    assert "*.log[" in str(error) and "not closed" in str(error)
    assert error.rule and "filepath.Match" in error.rule
    assert error.exit_code == 2


@pytest.mark.parametrize("text", ["\udcff[", "a\\"])
def test_from_file_keeps_undecodable_bytes_and_reports_errors(tmp_path: Path, text: str) -> None:
    source = tmp_path / ".dockerignore"
    source.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigError):
        DockerIgnore.from_file(source)


def test_undecodable_name_still_matches(tmp_path: Path) -> None:
    source = tmp_path / ".dockerignore"
    source.write_bytes(b"caf\xe9*\n")
    assert DockerIgnore.from_file(source).excluded("caf\udce9.txt")


# --- docker-py ExcludePathsTest: the same tree, the set of paths that reach the builder -----------
DIRS = [
    "foo",
    "foo/bar",
    "bar",
    "target",
    "target/subdir",
    "subdir",
    "subdir/target",
    "subdir/target/subdir",
    "subdir/subdir2",
    "subdir/subdir2/target",
    "subdir/subdir2/target/subdir",
]
FILES = [
    "Dockerfile",
    "Dockerfile.alt",
    ".dockerignore",
    "a.py",
    "a.go",
    "b.py",
    "cde.py",
    "foo/a.py",
    "foo/b.py",
    "foo/bar/a.py",
    "bar/a.py",
    "foo/Dockerfile3",
    "target/file.txt",
    "target/subdir/file.txt",
    "subdir/file.txt",
    "subdir/target/file.txt",
    "subdir/target/subdir/file.txt",
    "subdir/subdir2/file.txt",
    "subdir/subdir2/target/file.txt",
    "subdir/subdir2/target/subdir/file.txt",
]
ALL = frozenset(DIRS + FILES)


def sent(patterns: list[str], dockerfile: str = "Dockerfile", paths: frozenset[str] = ALL) -> set[str]:
    """Paths Docker sends: those the rules keep, plus the Dockerfile and the ignore file."""
    ignore = rules(*patterns)
    kept = {path for path in paths if not ignore.excluded(path)}
    forced = {go_clean(dockerfile), ".dockerignore"} & paths
    return kept | forced


EXCLUDE_PATHS = [
    ("no_excludes", [""], "Dockerfile", ALL),
    ("wildcard_exclude", ["*"], "Dockerfile", {"Dockerfile", ".dockerignore"}),
    ("exclude_dockerfile_dockerignore", ["Dockerfile", ".dockerignore"], "Dockerfile", ALL),
    ("custom_dockerfile", ["*"], "Dockerfile.alt", {"Dockerfile.alt", ".dockerignore"}),
    ("custom_dockerfile_in_subdir", ["*"], "foo/Dockerfile3", {"foo/Dockerfile3", ".dockerignore"}),
    ("custom_dockerfile_dot_slash", ["*"], "./foo/Dockerfile3", {"foo/Dockerfile3", ".dockerignore"}),
    ("single_filename", ["a.py"], "Dockerfile", ALL - {"a.py"}),
    ("single_filename_leading_dot_slash", ["./a.py"], "Dockerfile", ALL - {"a.py"}),
    ("single_filename_trailing_slash", ["a.py/"], "Dockerfile", ALL - {"a.py"}),
    ("wildcard_filename_start", ["*.py"], "Dockerfile", ALL - {"a.py", "b.py", "cde.py"}),
    ("wildcard_with_exception", ["*.py", "!b.py"], "Dockerfile", ALL - {"a.py", "cde.py"}),
    (
        "wildcard_with_wildcard_exception",
        ["*.*", "!*.go"],
        "Dockerfile",
        ALL - {"a.py", "b.py", "cde.py", "Dockerfile.alt"},
    ),
    ("wildcard_filename_end", ["a.*"], "Dockerfile", ALL - {"a.py", "a.go"}),
    ("question_mark", ["?.py"], "Dockerfile", ALL - {"a.py", "b.py"}),
    ("single_subdir_single_filename", ["foo/a.py"], "Dockerfile", ALL - {"foo/a.py"}),
    ("single_subdir_single_filename_leading_slash", ["/foo/a.py"], "Dockerfile", ALL - {"foo/a.py"}),
    ("single_subdir_with_path_traversal", ["foo/whoops/../a.py"], "Dockerfile", ALL - {"foo/a.py"}),
    ("single_subdir_wildcard_filename", ["foo/*.py"], "Dockerfile", ALL - {"foo/a.py", "foo/b.py"}),
    ("wildcard_subdir_single_filename", ["*/a.py"], "Dockerfile", ALL - {"foo/a.py", "bar/a.py"}),
    ("wildcard_subdir_wildcard_filename", ["*/*.py"], "Dockerfile", ALL - {"foo/a.py", "foo/b.py", "bar/a.py"}),
    (
        "directory",
        ["foo"],
        "Dockerfile",
        ALL - {"foo", "foo/a.py", "foo/b.py", "foo/bar", "foo/bar/a.py", "foo/Dockerfile3"},
    ),
    (
        "directory_with_trailing_slash",
        ["foo/"],
        "Dockerfile",
        ALL - {"foo", "foo/a.py", "foo/b.py", "foo/bar", "foo/bar/a.py", "foo/Dockerfile3"},
    ),
    (
        "directory_with_single_exception",
        ["foo", "!foo/bar/a.py"],
        "Dockerfile",
        ALL - {"foo/a.py", "foo/b.py", "foo", "foo/bar", "foo/Dockerfile3"},
    ),
    (
        "directory_with_subdir_exception",
        ["foo", "!foo/bar"],
        "Dockerfile",
        ALL - {"foo/a.py", "foo/b.py", "foo", "foo/Dockerfile3"},
    ),
    (
        "directory_with_wildcard_exception",
        ["foo", "!foo/*.py"],
        "Dockerfile",
        ALL - {"foo/bar", "foo/bar/a.py", "foo", "foo/Dockerfile3"},
    ),
    ("subdirectory", ["foo/bar"], "Dockerfile", ALL - {"foo/bar", "foo/bar/a.py"}),
    ("double_wildcard", ["**/a.py"], "Dockerfile", ALL - {"a.py", "foo/a.py", "foo/bar/a.py", "bar/a.py"}),
    ("double_wildcard_dir", ["foo/**/bar"], "Dockerfile", ALL - {"foo/bar", "foo/bar/a.py"}),
    (
        "single_and_double_wildcard",
        ["**/target/*/*"],
        "Dockerfile",
        ALL - {"target/subdir/file.txt", "subdir/target/subdir/file.txt", "subdir/subdir2/target/subdir/file.txt"},
    ),
    (
        "trailing_double_wildcard",
        ["subdir/**"],
        "Dockerfile",
        ALL
        - {
            "subdir/file.txt",
            "subdir/target/file.txt",
            "subdir/target/subdir/file.txt",
            "subdir/subdir2/file.txt",
            "subdir/subdir2/target/file.txt",
            "subdir/subdir2/target/subdir/file.txt",
            "subdir/target",
            "subdir/target/subdir",
            "subdir/subdir2",
            "subdir/subdir2/target",
            "subdir/subdir2/target/subdir",
        },
    ),
    (
        "double_wildcard_with_exception",
        ["**", "!bar", "!foo/bar"],
        "Dockerfile",
        {"foo/bar", "foo/bar/a.py", "bar", "bar/a.py", "Dockerfile", ".dockerignore"},
    ),
]


@pytest.mark.parametrize(
    ("patterns", "dockerfile", "expected"),
    [case[1:] for case in EXCLUDE_PATHS],
    ids=[case[0] for case in EXCLUDE_PATHS],
)
def test_docker_py_exclude_paths_cases(patterns: list[str], dockerfile: str, expected: set[str]) -> None:
    assert sent(patterns, dockerfile) == set(expected)


def test_dockerfile_in_excluded_dir_is_still_sent() -> None:
    kept = sent(["foo/"], "foo/Dockerfile3")
    assert "foo/Dockerfile3" in kept and "foo/a.py" not in kept


def test_absolute_include_and_exception() -> None:
    assert sent(["/*", "!/*.py"], paths=frozenset({"a.py", "b.py"})) == {"a.py", "b.py"}


def test_last_line_precedence() -> None:
    paths = frozenset({"garbage.md", "trash.md", "README.md", "README-bis.md", "README-secret.md"})
    assert sent(["*.md", "!README*.md", "README-secret.md"], paths=paths) == {"README.md", "README-bis.md"}


def test_parent_directory_patterns_follow_go_clean() -> None:
    # docker-py expects "../a.py" to exclude a.py; Docker's Clean keeps the "..", so it matches nothing.
    paths = frozenset({"a.py", "b.py", "c.py"})
    assert sent(["../a.py", "/../b.py"], paths=paths) == {"a.py", "c.py"}


def test_wildcard_exception_inside_excluded_dir_follows_buildkit() -> None:
    # docker-py (and the pre-BuildKit CLI) skipped "a" because "*/b.py" is not a literal prefix of it, so
    # a/b.py was lost; BuildKit walks into "a" when an exception has a wildcard, and the rule keeps it.
    ignore = rules("*", "!*/b.py")
    assert ignore.excluded("a")
    assert not ignore.excluded("a/b.py")
    assert not ignore.can_skip_dir("a")


def test_tar_with_excludes_case() -> None:
    paths = frozenset(
        {
            "foo",
            "foo/bar",
            "bar",
            "Dockerfile",
            "Dockerfile.alt",
            ".dockerignore",
            "a.py",
            "a.go",
            "b.py",
            "cde.py",
            "foo/a.py",
            "foo/b.py",
            "foo/bar/a.py",
            "bar/a.py",
        }
    )
    patterns = ["*.py", "!b.py", "!a.go", "foo", "Dockerfile*", ".dockerignore"]
    assert sent(patterns, paths=paths) == {"Dockerfile", ".dockerignore", "a.go", "b.py", "bar", "bar/a.py"}


# --- Docker's .dockerignore reference examples ----------------------------------------------------
DOCS = [
    (["*/temp*"], "somedir/temporary.txt", True),
    (["*/temp*"], "somedir/temp", True),
    (["*/temp*"], "temporary.txt", False),
    (["*/*/temp*"], "somedir/subdir/temporary.txt", True),
    (["*/*/temp*"], "somedir/temporary.txt", False),
    (["temp?"], "tempa", True),
    (["temp?"], "tempb", True),
    (["temp?"], "temp", False),
    (["**/*.go"], "main.go", True),
    (["**/*.go"], "cmd/tool/main.go", True),
    (["*.md", "!README.md"], "CHANGES.md", True),
    (["*.md", "!README.md"], "README.md", False),
    (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", True),
    (["*.md", "!README*.md", "README-secret.md"], "README-public.md", False),
    (["*.md", "README-secret.md", "!README*.md"], "README-secret.md", False),
    (["."], "anything", False),  # "for historical reasons, the pattern . is ignored"
    (["# comment", "*.py"], "x.py", True),
]


@pytest.mark.parametrize(("patterns", "path", "excluded"), DOCS)
def test_docker_reference_examples(patterns: list[str], path: str, excluded: bool) -> None:
    assert rules(*patterns).excluded(path) is excluded


def test_walk_state_differs_from_parent_scan_exactly_as_in_docker() -> None:
    # "!a" cannot change anything when "a" is first seen, so the walk records no match for it; by the time
    # "a/b" is excluded, "!a" only tries "a/b" itself. BuildKit therefore leaves a/b out.
    ignore = rules("a/b", "!a")
    assert ignore.excluded("a/b") and ignore.excluded("a/b/c")
    assert not ignore.match("a/b")[0]  # MatchesOrParentMatches would keep it


# --- skipping excluded directories (fsutil's rule) ------------------------------------------------
SKIP = [
    (["vendor"], "vendor", True),
    (["vendor", "!vendor/keep.txt"], "vendor", False),
    (["vendor", "!vendor/keep/*"], "vendor", False),
    (["vendor", "!vendor/keep/**"], "vendor/keep", False),
    (["vendor", "!vendor/keep/**"], "vendor/other", True),
    (["vendor", "!other"], "vendor", True),
    (["vendor", "!vendorx/a"], "vendor", True),  # "vendorx/a/" does not start with "vendor/"
    (["vendor", "!**/keep.txt"], "vendor", False),  # a wildcard exception may match anywhere
    (["vendor", "!ven[d]or/x"], "vendor", False),
    (["vendor", "!a\\*b"], "vendor", False),  # an escape counts as a wildcard, as in fsutil
    (["*"], "anything", True),
    (["*"], "notexcluded/../x", True),
]


@pytest.mark.parametrize(("patterns", "directory", "skip"), SKIP)
def test_excluded_dir_is_skipped_only_when_no_exception_can_reach_inside(
    patterns: list[str], directory: str, skip: bool
) -> None:
    assert rules(*patterns).can_skip_dir(directory) is skip


def test_included_dir_is_never_skipped() -> None:
    assert not rules("*.py").can_skip_dir("src")


# --- which ignore file applies --------------------------------------------------------------------
def test_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    (context / "build").mkdir(parents=True)
    dockerfile = context / "build" / "api.Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    assert find_ignore_file(context, dockerfile) is None
    (context / ".dockerignore").write_text("*.log\n")
    assert find_ignore_file(context, dockerfile) == context / ".dockerignore"
    (context / "build" / "api.Dockerfile.dockerignore").write_text("*.tmp\n")
    assert find_ignore_file(context, dockerfile) == context / "build" / "api.Dockerfile.dockerignore"
    assert load_ignore(context, dockerfile).patterns == ("*.tmp",)


def test_plain_dockerfile_also_has_a_specific_ignore_file(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("a\n")
    (tmp_path / "Dockerfile.dockerignore").write_text("b\n")
    assert find_ignore_file(tmp_path, tmp_path / "Dockerfile") == tmp_path / "Dockerfile.dockerignore"


def test_no_ignore_file_excludes_nothing(tmp_path: Path) -> None:
    ignore = load_ignore(tmp_path, tmp_path / "Dockerfile")
    assert ignore.rules == () and not ignore.excluded("anything/at/all")


# --- properties -----------------------------------------------------------------------------------
NAMES = st.sampled_from(["a", "b", "ab", "x.py", "keep", ".git"])
PATHS = st.lists(NAMES, min_size=1, max_size=4).map("/".join)
PATTERN_PIECES = st.sampled_from(["a", "b", "ab", "*", "**", "?", "x.py", "*.py", "keep", "[ab]", "k*"])
PATTERNS = st.tuples(st.booleans(), st.lists(PATTERN_PIECES, min_size=1, max_size=3).map("/".join)).map(
    lambda item: ("!" if item[0] else "") + item[1]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(PATTERNS, min_size=1, max_size=5), PATHS, st.lists(NAMES, min_size=1, max_size=3))
def test_skipping_a_dir_never_loses_a_path_docker_would_send(
    patterns: list[str], directory: str, below: list[str]
) -> None:
    ignore = rules(*patterns)
    if ignore.can_skip_dir(directory):
        assert ignore.excluded(directory + "/" + "/".join(below))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab*?[]^!-\\/. #\n\r\t")), max_size=40))
def test_any_text_parses_or_raises_config_error(text: str) -> None:
    try:
        ignore = DockerIgnore.parse(text)
    except ConfigError as error:
        assert error.line is not None and error.line >= 1
        return
    for path in ("a", "a/b", "ab/b.a", "[", "^a"):
        ignore.excluded(path)


@settings(max_examples=200, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=4).map("/".join))
def test_a_literal_pattern_excludes_its_path_and_everything_below(path: str) -> None:
    ignore = rules(path)
    assert ignore.excluded(path) and ignore.excluded(path + "/child")
    assert not ignore.excluded(path + "sibling")
