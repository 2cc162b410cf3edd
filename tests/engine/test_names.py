"""The naming twin: byte-identical with bash (sha256sum) for every shipped vector."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from orbit_ops.names import azure_names, is_valid_solution_id

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "naming-vectors.json").read_text())["vectors"]


def bash_hash(solution_id: str) -> str:
    script = 'printf "%s" "$1" | sha256sum | cut -c1-12'
    return subprocess.run(["bash", "-c", script, "_", solution_id], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_vectors_cover_edge_lengths() -> None:
    lengths = {len(vector["id"]) for vector in VECTORS}
    assert len(VECTORS) >= 20
    assert 3 in lengths and 54 in lengths


@pytest.mark.parametrize("vector", VECTORS, ids=[vector["id"][:20] for vector in VECTORS])
def test_python_names_match_bash_sha256sum(vector: dict[str, object]) -> None:
    solution_id = str(vector["id"])
    assert bash_hash(solution_id) == vector["h"]
    assert azure_names(solution_id).to_json() == vector


@pytest.mark.parametrize(
    ("solution_id", "valid"),
    [
        ("abc", True),
        ("a-b", True),
        ("1-2-3", True),
        ("a" * 54, True),
        ("ab", False),  # too short
        ("a" * 55, False),  # <id>-internal would exceed 63 characters
        ("a--b", False),  # double hyphen
        ("-ab", False),
        ("ab-", False),
        ("Acme", False),  # uppercase
        ("acme_corp", False),
        ("acme corp", False),
        ("acme\n", False),
        ("ácme", False),
        ("", False),
    ],
)
def test_solution_id_rule(solution_id: str, valid: bool) -> None:
    assert is_valid_solution_id(solution_id) is valid


def test_longest_id_gives_valid_share_name() -> None:
    names = azure_names("a" * 54)
    assert len(names.shares["internal"]) == 63
