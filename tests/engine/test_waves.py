"""The wave layout of a roll (SPEC §3.7): every selected solution in exactly one wave, deterministically."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbit_ops.config.model import SolutionSpec
from orbit_ops.errors import InputError
from orbit_ops.fleet.waves import lay_out, parse_waves, roll_order


def spec(solution_id: str, **labels: str) -> SolutionSpec:
    return SolutionSpec(solution_id, solution_id, {}, {}, 100, Path(f"{solution_id}.yaml"), labels=labels)


FLEET = [spec(f"s{n:02}", ring="canary" if n == 7 else "early" if n in (3, 11, 15) else "main") for n in range(20)]


def layout(text: str, specs: list[SolutionSpec] = FLEET) -> list[tuple[str, list[str]]]:
    return [(wave.selector, list(wave.solutions)) for wave in lay_out(specs, parse_waves(text))]


def test_counts_and_shares_take_the_selection_in_label_then_id_order() -> None:
    waves = layout("1,25%,*")
    # ordered by labels (canary < early < main), then id
    assert waves == [("1", ["s07"]), ("25%", ["s03", "s11", "s15", "s00", "s01"]),
                     ("*", [f"s{n:02}" for n in range(20) if n not in (7, 3, 11, 15, 0, 1)])]


def test_label_steps_take_every_remaining_solution_with_the_label() -> None:
    assert layout("ring=canary,ring=early,*") == [
        ("ring=canary", ["s07"]), ("ring=early", ["s03", "s11", "s15"]),
        ("*", [f"s{n:02}" for n in range(20) if n not in (7, 3, 11, 15)])]


def test_a_share_rounds_up_and_100_percent_is_the_rest() -> None:
    assert [len(ids) for _, ids in layout("1%,10%,100%")] == [1, 2, 17]
    assert [len(ids) for _, ids in layout("2.5%,*")] == [1, 19]


def test_a_size_that_finds_nothing_left_is_an_empty_wave() -> None:
    assert layout("5,5,*", FLEET[:6]) == [("5", ["s03", "s00", "s01", "s02", "s04"]), ("5", ["s05"]), ("*", [])]


def test_the_layout_is_the_same_whatever_order_the_files_come_in() -> None:
    assert lay_out(list(reversed(FLEET)), parse_waves("1,25%,*")) == lay_out(FLEET, parse_waves("1,25%,*"))


@pytest.mark.parametrize(("text", "says"), [
    ("0,*", "step 1 (0) takes no solution"),
    ("1,,*", "step 2 (empty) is not a wave step"),
    ("150%", "not a share between 0 and 100%"),
    ("0%,*", "not a share between 0 and 100%"),
    ("canary,*", "step 1 (canary) is not a wave step"),
    ("*,1", "step 2 (1) follows '*', which already takes the rest"),
    ("100%,*", "follows '100%'"),
    ("ring=-x,*", "step 1: 'ring=-x': label value '-x' is not valid"),
    ("-1", "is not a wave step"),
])
def test_a_bad_step_is_refused_naming_it_and_the_rule(text: str, says: str) -> None:
    with pytest.raises(InputError, match="--waves") as raised:
        parse_waves(text)
    assert says in str(raised.value)


def test_a_label_step_that_selects_nothing_is_refused_with_the_values_there_are() -> None:
    with pytest.raises(InputError) as raised:
        layout("ring=canery,*")
    assert "wave 1 (ring=canery) selects no solution" in str(raised.value)
    assert "values of ring: canary, early, main" in str(raised.value)


def test_solutions_left_in_no_wave_are_refused() -> None:
    with pytest.raises(InputError) as raised:
        layout("1,10%")
    assert "leaves 17 of 20 selected solution(s) in no wave" in str(raised.value)
    assert "end it with *" in str(raised.value)


@given(st.lists(st.sampled_from(["1", "2", "10%", "50%", "ring=main", "ring=early"]), max_size=4),
       st.integers(min_value=0, max_value=20))
def test_every_solution_is_in_exactly_one_wave(steps: list[str], size: int) -> None:
    specs = FLEET[:size]
    try:
        waves = lay_out(specs, parse_waves(",".join([*steps, "*"])))
    except InputError as exc:
        assert "selects no solution" in str(exc)  # the only refusal a layout ending in * can meet
        return
    placed = [solution_id for wave in waves for solution_id in wave.solutions]
    assert sorted(placed) == sorted(s.id for s in specs) and len(placed) == len(set(placed))
    assert [w.index for w in waves] == list(range(1, len(steps) + 2))
    order = [s.id for s in roll_order(specs)]
    assert all(list(w.solutions) == sorted(w.solutions, key=order.index) for w in waves)
