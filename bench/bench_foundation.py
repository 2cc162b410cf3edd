"""Foundation benchmarks: tag discovery vs bare for-each-ref, CLI start-up vs click, 10,000 solutions.

Run: ``python bench/bench_foundation.py`` (prints a markdown section for bench/RESULTS.md).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import GIT_ENV, machine, ms, side_by_side

from orbit_ops.catalog.tags import _FORMAT, scan_tags
from orbit_ops.config.load import load_config, load_solutions
from orbit_ops.versions import version_key

COMPONENTS = 50
VERSIONS = 200


def make_tag_repo(root: Path) -> list[str]:
    """50 components x 200 versions, half annotated, written with one git fast-import stream."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=GIT_ENV)
    lines: list[str] = []
    for index in range(VERSIONS):
        data = f"release {index}\n"
        lines += [
            "commit refs/heads/main",
            f"mark :{index + 1}",
            f"committer Bench <bench@orbit.invalid> {1_700_000_000 + index * 3600} +0000",
            f"data {len(f'release {index}')}",
            f"release {index}",
        ]
        if index:
            lines.append(f"from :{index}")
        lines += ["M 644 inline VERSION", f"data {len(data)}", data.rstrip("\n"), ""]
    components = [f"comp{number:02d}" for number in range(COMPONENTS)]
    for component_index, component in enumerate(components):
        for index in range(VERSIONS):
            version = f"{index // 20}.{index % 20}.{component_index % 3}"
            name = f"{component}/v{version}"
            if (index + component_index) % 2 == 0:
                message = f"{component} {version}"
                lines += [f"tag {name}", f"from :{index + 1}",
                          f"tagger Bench <bench@orbit.invalid> {1_700_000_000 + index * 3600} +0000",
                          f"data {len(message)}", message]
            else:
                lines += [f"reset refs/tags/{name}", f"from :{index + 1}", ""]
    stream = "\n".join(lines) + "\n"
    subprocess.run(["git", "fast-import", "--quiet"], input=stream.encode(), cwd=root, check=True, env=GIT_ENV)
    return components


def bench_tags(work: Path, runs: int) -> list[str]:
    repo = work / "tags"
    components = make_tag_repo(repo)
    out = []
    for state in ("loose refs", "packed refs (after git pack-refs --all)"):
        if state.startswith("packed"):
            subprocess.run(["git", "pack-refs", "--all"], cwd=repo, check=True, env=GIT_ENV)
        patterns = [f"refs/tags/{name}/" for name in components]

        def bare(patterns: list[str] = patterns) -> None:
            subprocess.run(["git", "for-each-ref", f"--format={_FORMAT}", *patterns], cwd=repo, check=True,
                           capture_output=True, env=GIT_ENV)

        def orbit() -> None:
            version_key.cache_clear()  # each CLI call starts cold; so does every measured run
            scan = scan_tags(repo, components)
            assert sum(len(tags) for tags in scan.tags.values()) == COMPONENTS * VERSIONS

        medians = side_by_side(runs, bare=bare, orbit=orbit)
        out.append(
            f"| tag discovery, 10,000 tags, {state} | {ms(medians['orbit'])} | bare `git for-each-ref`: "
            f"{ms(medians['bare'])} | **{medians['orbit'] / medians['bare']:.2f}×** (target ≤ 1.5×) |"
        )
    return out


def bench_cli(runs: int) -> list[str]:
    python = sys.executable
    orbit = str(Path(python).with_name("orbit"))

    def run(*args: str) -> None:
        subprocess.run(list(args), check=True, capture_output=True)

    medians = side_by_side(
        runs,
        click=lambda: run(python, "-c", "import click"),
        help=lambda: run(orbit, "--help"),
        names=lambda: run(orbit, "names", "acme-corp"),
    )
    base = medians["click"]
    return [
        f"| `orbit --help` | {ms(medians['help'])} | `python -c \"import click\"`: {ms(base)} | "
        f"**{medians['help'] / base:.2f}×** (target ≤ 2×) |",
        f"| `orbit names acme-corp` | {ms(medians['names'])} | `python -c \"import click\"`: {ms(base)} | "
        f"**{medians['names'] / base:.2f}×** (target ≤ 2×) |",
    ]


def bench_solutions(work: Path, runs: int) -> list[str]:
    root = work / "fleet"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=GIT_ENV)
    (root / "orbit.yaml").write_text(
        "platform_repo: .\ncomponents:\n  orbit: {context: a}\n  agent: {context: b}\n  mc: {context: c}\n"
        'defaults:\n  images: {orbit_tag: "1.0.0", agent_tag: "1.0.0", mc_tag: "1.0.0"}\n'
    )
    folder = root / "solutions"
    folder.mkdir()
    for index in range(10_000):
        solution_id = f"customer-{index:05d}"
        (folder / f"{solution_id}.yaml").write_text(
            f"# customer {index}\nid: {solution_id}\ndisplay_name: Customer {index}\n"
            f'images: {{agent_tag: "2.{index % 7}.0"}}\n'
            f'env:\n  orbit: {{PUBLIC_BASE_URL: "https://{solution_id}.example.com"}}\n  agent: {{LOG_LEVEL: info}}\n'
        )
    config = load_config(root)
    medians = side_by_side(runs, load=lambda: load_solutions(config))
    return [f"| load + validate 10,000 solution files | {ms(medians['load'])} | — | target < 2 s |"]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = bench_tags(work, runs) + bench_cli(runs * 2) + bench_solutions(work, max(3, runs // 2))
    print("## Foundation (issue 2)\n")
    print(f"Machine: {machine()}. Medians of {runs}+ interleaved runs (`python bench/bench_foundation.py`).\n")
    print("| what | Orbit | reference, same run | ratio |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
