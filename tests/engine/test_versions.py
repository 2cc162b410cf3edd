"""SemVer precedence: the fast sort key agrees with the semver library everywhere."""

from __future__ import annotations

import semver
from hypothesis import given
from hypothesis import strategies as st

from orbit_ops.versions import nearest, newest_first, parse_version, precedence_key, version_key

identifier = st.one_of(
    st.integers(min_value=0, max_value=30).map(str),
    st.text(alphabet="abcrz-", min_size=1, max_size=4).filter(lambda s: not s.isdigit()),
)
versions = st.builds(
    lambda major, minor, patch, pre: f"{major}.{minor}.{patch}" + (f"-{'.'.join(pre)}" if pre else ""),
    st.integers(0, 12),
    st.integers(0, 12),
    st.integers(0, 12),
    st.lists(identifier, max_size=3),
)


@given(versions, versions)
def test_precedence_key_matches_semver_compare(left: str, right: str) -> None:
    a, b = semver.Version.parse(left), semver.Version.parse(right)
    expected = a.compare(b)
    key_a, key_b = precedence_key(a), precedence_key(b)
    assert (key_a > key_b) - (key_a < key_b) == expected
    assert version_key(left) == key_a and version_key(right) == key_b


@given(st.text(alphabet="0123456789.-+abv\n", max_size=14))
def test_fast_key_accepts_exactly_what_semver_parses(text: str) -> None:
    assert (version_key(text) is not None) == (parse_version(text) is not None)


def test_newest_first_orders_by_semver_not_text() -> None:
    assert newest_first(["1.9.0", "1.10.0", "2.0.0-rc.1", "2.0.0", "1.0.0", "2.0.0-alpha", "nope"]) == [
        "2.0.0",
        "2.0.0-rc.1",
        "2.0.0-alpha",
        "1.10.0",
        "1.9.0",
        "1.0.0",
    ]


def test_leading_v_and_partial_versions_are_not_versions() -> None:
    assert parse_version("v1.0.0") is None
    assert parse_version("1.0") is None
    assert parse_version("01.0.0") is None
    assert parse_version("1.0.0+build.5") is not None


def test_nearest_versions_surround_the_target() -> None:
    assert nearest("1.5.0", ["1.0.0", "1.4.0", "1.6.0", "2.0.0"]) == ["2.0.0", "1.6.0", "1.4.0"]
    assert nearest("3.0.0", ["1.0.0", "1.4.0", "1.6.0", "2.0.0"]) == ["2.0.0", "1.6.0", "1.4.0"]
    assert nearest("0.1.0", ["1.0.0", "1.4.0"]) == ["1.4.0", "1.0.0"]
    assert nearest("1.0.0", []) == []
