"""Packing a build context: Docker's selection, deterministic bytes, streamed, both OCI digests."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import socket
import tarfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orbit_ops.build.context import RESERVED_DOCKERFILE_NAME, PackedContext, format_size, pack_context
from orbit_ops.errors import BuildError, ConfigError, InputError

Tree = dict[str, str | bytes | None]  # path -> content; None makes a folder


def make_tree(root: Path, tree: Tree) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in tree.items():
        path = root / rel
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
    return root


def members(archive: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(archive) as tar:
        return tar.getmembers()


def names(archive: Path) -> list[str]:
    return [member.name for member in members(archive)]


def read_member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


@pytest.fixture
def pack(tmp_path: Path) -> Callable[..., PackedContext]:
    counter = iter(range(1000))

    def run(context: Path, dockerfile: Path | None = None, **kwargs: int) -> PackedContext:
        out = tmp_path / "out" / f"context-{next(counter)}.tar.gz"
        return pack_context(context, dockerfile or context / "Dockerfile", out, **kwargs)

    return run


BASIC: Tree = {
    "Dockerfile": "FROM scratch\nCOPY . /app\n",
    "src/main.py": "print('hi')\n",
    "src/pkg/util.py": "X = 1\n",
    "README.md": "# app\n",
    "empty": None,
}


# --- determinism and digests ----------------------------------------------------------------------
def test_packing_twice_gives_identical_bytes_and_digests(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    context = make_tree(tmp_path / "ctx", BASIC)
    first, second = pack(context), pack(context)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert (first.digest, first.diff_id, first.size) == (second.digest, second.diff_id, second.size)


def test_same_content_packs_to_same_bytes_whatever_mtimes_owners_and_modes(
    tmp_path: Path, pack: Callable[..., PackedContext]
) -> None:
    one = make_tree(tmp_path / "one", BASIC)
    two = tmp_path / "two"
    shutil.copytree(one, two)
    for path in [two, *two.rglob("*")]:
        os.utime(path, (1_000_000, 1_000_000))
        if os.geteuid() == 0:
            os.chown(path, 4321, 4321)
    (two / "README.md").chmod(0o600)
    (two / "src").chmod(0o700)
    assert pack(one).path.read_bytes() == pack(two).path.read_bytes()


def test_digest_and_diff_id_are_sha256_of_archive_and_of_tar_stream(
    tmp_path: Path, pack: Callable[..., PackedContext]
) -> None:
    packed = pack(make_tree(tmp_path / "ctx", BASIC))
    data = packed.path.read_bytes()
    assert packed.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert packed.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()
    assert packed.size == len(data)


def test_gzip_header_has_no_mtime_and_no_name(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    data = pack(make_tree(tmp_path / "ctx", BASIC)).path.read_bytes()
    assert data[:3] == b"\x1f\x8b\x08"
    assert data[3] & 0x08 == 0  # FNAME flag
    assert data[4:8] == b"\0\0\0\0"  # MTIME


def test_entries_are_sorted_and_normalised(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    context = make_tree(tmp_path / "ctx", {**BASIC, "bin/run.sh": "#!/bin/sh\n", "B.txt": "", "a.txt": ""})
    (context / "bin" / "run.sh").chmod(0o750)
    packed = pack(context)
    listed = members(packed.path)
    assert [m.name for m in listed] == [
        "B.txt",
        "Dockerfile",
        "README.md",
        "a.txt",
        "bin",
        "bin/run.sh",
        "empty",
        "src",
        "src/main.py",
        "src/pkg",
        "src/pkg/util.py",
    ]
    for member in listed:
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (0, 0, 0, "", "")
        expected = 0o755 if member.isdir() or member.name == "bin/run.sh" else 0o644
        assert member.mode == expected, member.name
    assert packed.file_count == 7 and packed.dir_count == 4
    assert packed.total_bytes == sum(m.size for m in listed if m.isfile())


def test_long_and_non_ascii_names_round_trip(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    deep = "/".join(["directory-with-a-long-name"] * 6) + "/fichier-é.txt"
    context = make_tree(tmp_path / "ctx", {"Dockerfile": "FROM scratch\n", deep: "x"})
    first, second = pack(context), pack(context)
    assert deep in names(first.path)
    assert first.digest == second.digest


# --- what is sent ---------------------------------------------------------------------------------
def test_ignore_rules_and_exceptions_select_what_is_sent(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    context = make_tree(
        tmp_path / "ctx",
        {
            "Dockerfile": "FROM scratch\n",
            ".dockerignore": "# build output\n*.log\n!keep.log\nlogs\n!logs/important/*.txt\n",
            "app.log": "x",
            "keep.log": "k",
            "main.py": "",
            "logs/a.txt": "",
            "logs/important/b.txt": "b",
            "logs/important/c.bin": "",
        },
    )
    packed = pack(context)
    assert names(packed.path) == [
        ".dockerignore",
        "Dockerfile",
        "keep.log",
        "logs",
        "logs/important",
        "logs/important/b.txt",
        "main.py",
    ]
    # The re-included file brings its (excluded) folders along, as BuildKit sends them.
    assert packed.excluded_count == 3  # app.log, logs/a.txt, logs/important/c.bin
    assert packed.excluded_examples == ("app.log", "logs/a.txt", "logs/important/c.bin")
    assert packed.ignore_file == context / ".dockerignore"


def test_dockerfile_and_ignore_file_are_sent_even_when_ignored(
    tmp_path: Path, pack: Callable[..., PackedContext]
) -> None:
    context = make_tree(
        tmp_path / "ctx",
        {
            "build/Dockerfile": "FROM scratch\n",
            ".dockerignore": "*\n",
            "src/a.py": "",
        },
    )
    packed = pack(context, context / "build" / "Dockerfile")
    assert names(packed.path) == [".dockerignore", "build", "build/Dockerfile"]
    assert packed.dockerfile_in_archive == "build/Dockerfile"


def test_dockerfile_specific_ignore_file_wins_and_is_sent(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    context = make_tree(
        tmp_path / "ctx",
        {
            "api.Dockerfile": "FROM scratch\n",
            "api.Dockerfile.dockerignore": "*\n!api/\n",
            ".dockerignore": "api\n",
            "api/x.py": "",
            "web/y.js": "",
        },
    )
    packed = pack(context, context / "api.Dockerfile")
    # Depth first, names in byte order within each folder (as Go's WalkDir visits them).
    assert names(packed.path) == ["api", "api/x.py", "api.Dockerfile", "api.Dockerfile.dockerignore"]
    assert packed.ignore_file == context / "api.Dockerfile.dockerignore"


def test_docker_py_tar_with_excludes_case(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    context = make_tree(
        tmp_path / "ctx",
        {
            "foo": None,
            "foo/bar": None,
            "bar": None,
            "Dockerfile": "FROM scratch\n",
            "Dockerfile.alt": "",
            "a.py": "",
            "a.go": "",
            "b.py": "",
            "cde.py": "",
            "foo/a.py": "",
            "foo/b.py": "",
            "foo/bar/a.py": "",
            "bar/a.py": "",
            ".dockerignore": "*.py\n!b.py\n!a.go\nfoo\nDockerfile*\n.dockerignore\n",
        },
    )
    assert sorted(names(pack(context).path)) == sorted(
        ["Dockerfile", ".dockerignore", "a.go", "b.py", "bar", "bar/a.py"]
    )


def test_git_is_always_left_out(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    context = make_tree(
        tmp_path / "ctx",
        {
            "Dockerfile": "FROM scratch\n",
            ".dockerignore": "!.git\n",
            ".git/HEAD": "ref: x",
            "vendor/lib/.git": "gitdir",
            "vendor/lib/x.c": "",
            ".gitignore": "*.o\n",
        },
    )
    packed = pack(context)
    assert names(packed.path) == [".dockerignore", ".gitignore", "Dockerfile", "vendor", "vendor/lib", "vendor/lib/x.c"]
    assert packed.vcs_excluded == 2
    assert ".git left out" in packed.preflight_line()


def test_bad_ignore_file_is_a_config_error(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    context = make_tree(tmp_path / "ctx", {"Dockerfile": "FROM scratch\n", ".dockerignore": "ok\n[z-a]\n"})
    with pytest.raises(ConfigError) as caught:
        pack(context)
    assert caught.value.line == 2 and caught.value.path == context / ".dockerignore"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --- not descending into excluded folders ---------------------------------------------------------
@pytest.fixture
def listed_dirs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every folder the packer lists (and refuse to list any named ``locked``)."""
    seen: list[str] = []
    real_scandir = os.scandir

    def scandir(path: Path) -> Iterator[os.DirEntry[str]]:
        seen.append(Path(path).name)
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    return seen


def test_excluded_folder_is_never_opened(
    tmp_path: Path, pack: Callable[..., PackedContext], listed_dirs: list[str]
) -> None:
    context = make_tree(
        tmp_path / "ctx",
        {
            "Dockerfile": "FROM scratch\n",
            ".dockerignore": "data\n!src/keep\n",
            "data/locked/secret": "s",
            "data/x": "",
            "src/a.py": "",
        },
    )
    (context / "data" / "locked").chmod(0)
    try:
        packed = pack(context)
    finally:
        (context / "data" / "locked").chmod(0o755)
    assert "data" not in listed_dirs and "locked" not in listed_dirs
    assert names(packed.path) == [".dockerignore", "Dockerfile", "src", "src/a.py"]
    assert packed.excluded_examples == ("data/",)


def test_excluded_folder_is_walked_when_a_wildcard_exception_may_reach_inside(
    tmp_path: Path, pack: Callable[..., PackedContext], listed_dirs: list[str]
) -> None:
    context = make_tree(
        tmp_path / "ctx",
        {
            "Dockerfile": "FROM scratch\n",
            ".dockerignore": "data\n!**/*.keep\n",
            "data/locked/secret": "s",
            "data/deep/a.keep": "k",
            "data/x": "",
        },
    )
    packed = pack(context)
    assert "data" in listed_dirs and "locked" in listed_dirs  # listed, refused, passed over
    assert names(packed.path) == [".dockerignore", "Dockerfile", "data", "data/deep", "data/deep/a.keep"]


def test_unreadable_folder_that_must_be_sent_fails_clearly(
    tmp_path: Path, pack: Callable[..., PackedContext], listed_dirs: list[str]
) -> None:
    context = make_tree(tmp_path / "ctx", {"Dockerfile": "FROM scratch\n", "src/locked/a.py": ""})
    with pytest.raises(BuildError, match=r"src/locked.*permission denied"):
        pack(context)


# --- links and special files ----------------------------------------------------------------------
def test_symlinks_are_stored_never_followed(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    outside = make_tree(tmp_path / "outside", {"secret.txt": "TOP-SECRET", "dir/inner.txt": "INNER"})
    context = make_tree(tmp_path / "ctx", {"Dockerfile": "FROM scratch\n", "real.txt": "real"})
    (context / "escape").symlink_to(outside / "secret.txt")
    (context / "escape-dir").symlink_to(outside / "dir", target_is_directory=True)
    (context / "relative").symlink_to("real.txt")
    (context / "dangling").symlink_to("nowhere")
    packed = pack(context)
    listed = {member.name: member for member in members(packed.path)}
    assert set(listed) == {"Dockerfile", "real.txt", "escape", "escape-dir", "relative", "dangling"}
    assert listed["escape"].issym() and listed["escape"].linkname == str(outside / "secret.txt")
    assert listed["escape-dir"].issym() and listed["relative"].linkname == "real.txt"
    tar_stream = gzip.decompress(packed.path.read_bytes())
    assert b"TOP-SECRET" not in tar_stream and b"INNER" not in tar_stream
    assert packed.symlink_count == 4


def test_special_files_are_skipped_and_counted(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    context = make_tree(tmp_path / "ctx", {"Dockerfile": "FROM scratch\n"})
    os.mkfifo(context / "pipe")
    short = Path("/tmp") / f"orbit-test-{os.getpid()}"
    short.mkdir(exist_ok=True)
    try:
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(short / "s.sock"))
            shutil.move(str(short / "s.sock"), context / "s.sock")
            packed = pack(context)
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert names(packed.path) == ["Dockerfile"]
    assert packed.special_skipped == 2
    assert "2 special files skipped" in packed.preflight_line()


# --- the Dockerfile's place -----------------------------------------------------------------------
def test_dockerfile_outside_the_context_goes_in_under_a_reserved_name(
    tmp_path: Path, pack: Callable[..., PackedContext]
) -> None:
    context = make_tree(tmp_path / "repo" / "apps" / "agent", {"main.py": "", ".dockerignore": "*.pyc\n"})
    dockerfile = make_tree(tmp_path / "repo" / "docker", {"agent.Dockerfile": "FROM python\n"}) / "agent.Dockerfile"
    packed = pack(context, dockerfile)
    assert packed.dockerfile_outside_context
    assert packed.dockerfile_in_archive == RESERVED_DOCKERFILE_NAME
    assert names(packed.path) == [".dockerignore", "main.py", RESERVED_DOCKERFILE_NAME]
    assert read_member(packed.path, RESERVED_DOCKERFILE_NAME) == b"FROM python\n"
    assert f"sent as {RESERVED_DOCKERFILE_NAME}" in packed.preflight_line()


def test_outside_dockerfile_brings_its_own_ignore_file(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    context = make_tree(tmp_path / "ctx", {"a.txt": "", "b.log": ""})
    docker = make_tree(tmp_path / "docker", {"Dockerfile": "FROM scratch\n", "Dockerfile.dockerignore": "*.log\n"})
    packed = pack(context, docker / "Dockerfile")
    assert names(packed.path) == ["a.txt", RESERVED_DOCKERFILE_NAME, RESERVED_DOCKERFILE_NAME + ".dockerignore"]
    assert packed.excluded_examples == ("b.log",)


def test_dockerfile_link_leaving_the_context_counts_as_outside(
    tmp_path: Path, pack: Callable[..., PackedContext]
) -> None:
    shared = make_tree(tmp_path / "shared", {"Dockerfile": "FROM shared\n"})
    context = make_tree(tmp_path / "ctx", {"a.txt": ""})
    (context / "Dockerfile").symlink_to(shared / "Dockerfile")
    packed = pack(context)
    assert packed.dockerfile_in_archive == RESERVED_DOCKERFILE_NAME
    assert read_member(packed.path, RESERVED_DOCKERFILE_NAME) == b"FROM shared\n"


def test_reserved_name_in_the_context_is_refused(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    context = make_tree(tmp_path / "ctx", {RESERVED_DOCKERFILE_NAME: ""})
    dockerfile = make_tree(tmp_path / "d", {"Dockerfile": "FROM scratch\n"}) / "Dockerfile"
    with pytest.raises(BuildError, match="reserved"):
        pack(context, dockerfile)


# --- refusals -------------------------------------------------------------------------------------
def test_missing_context_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"build context .*missing-ctx does not exist"):
        pack_context(tmp_path / "missing-ctx", tmp_path / "Dockerfile", tmp_path / "o.tar.gz")


def test_missing_dockerfile_is_an_input_error(tmp_path: Path) -> None:
    context = make_tree(tmp_path / "ctx", {"a": ""})
    with pytest.raises(InputError, match=r"Dockerfile .*Dockerfile does not exist"):
        pack_context(context, context / "Dockerfile", tmp_path / "o.tar.gz")


def test_archive_inside_the_context_is_refused(tmp_path: Path) -> None:
    context = make_tree(tmp_path / "ctx", BASIC)
    with pytest.raises(InputError, match="outside the context"):
        pack_context(context, context / "Dockerfile", context / "ctx.tar.gz")


def test_failed_pack_leaves_no_archive(tmp_path: Path) -> None:
    context = make_tree(tmp_path / "ctx", {RESERVED_DOCKERFILE_NAME: ""})
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "Dockerfile").write_text("FROM scratch\n")
    out = tmp_path / "out" / "c.tar.gz"
    out.parent.mkdir()
    with pytest.raises(BuildError):
        pack_context(context, tmp_path / "d" / "Dockerfile", out)
    assert list(out.parent.iterdir()) == []


# --- streaming ------------------------------------------------------------------------------------
def test_memory_does_not_grow_with_file_size(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    context = make_tree(tmp_path / "ctx", {"Dockerfile": "FROM scratch\n"})
    with (context / "big.bin").open("wb") as handle:
        for _ in range(24):
            handle.write(os.urandom(1 << 20))
    tracemalloc.start()
    try:
        packed = pack(context, compresslevel=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert packed.total_bytes > 24 << 20
    assert peak < 6 << 20, f"peak {peak} bytes while packing 24 MiB"


# --- the operator's line --------------------------------------------------------------------------
def test_preflight_line_reads_like_the_spec(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    repo = tmp_path / "worktree"
    context = make_tree(
        repo / "apps" / "agent",
        {
            "Dockerfile": "FROM scratch\n",
            ".dockerignore": "*.tmp\n",
            "a.tmp": "",
            "b.tmp": "",
            "main.py": "x" * 3000,
        },
    )
    packed = pack(context)
    line = packed.preflight_line(repo)
    assert line.startswith("context apps/agent: 3 files, 2.9 KiB (gz ")
    assert line.endswith("; 2 paths excluded by apps/agent/.dockerignore")


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (1024, "1.0 KiB"),
        (419_840, "410 KiB"),
        (1_363_149, "1.3 MiB"),
        (5 << 30, "5.0 GiB"),
        (3 << 40, "3072 GiB"),
    ],
)
def test_sizes_read_in_binary_units(count: int, text: str) -> None:
    assert format_size(count) == text


def test_archive_is_a_valid_tar_for_other_readers(tmp_path: Path, pack: Callable[..., PackedContext]) -> None:
    packed = pack(make_tree(tmp_path / "ctx", BASIC))
    raw = gzip.decompress(packed.path.read_bytes())
    assert len(raw) % 10240 == 0
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    assert (tmp_path / "extracted" / "src" / "pkg" / "util.py").read_text() == "X = 1\n"
