"""Bulk loads pause the garbage collector and leave it as they found it."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from orbit_ops.bulk import bulk_built


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    (gc.enable if enabled else gc.disable)()


def test_collection_pauses_inside_and_resumes_after_the_outermost() -> None:
    gc.enable()
    with bulk_built():
        assert not gc.isenabled()
        with bulk_built():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # nothing is kept out of collection for good


def test_a_collector_disabled_by_the_caller_stays_disabled() -> None:
    gc.disable()
    with bulk_built():
        pass
    assert not gc.isenabled()


def test_an_error_inside_still_resumes_collection() -> None:
    gc.enable()
    with pytest.raises(ValueError), bulk_built():
        raise ValueError("boom")
    assert gc.isenabled()


def test_cycles_made_inside_are_collected_afterwards() -> None:
    class Node:
        pass

    gc.enable()
    with bulk_built():
        node = Node()
        node.self = node  # type: ignore[attr-defined]
        del node
    assert gc.collect() >= 1


def test_threads_overlapping_resume_collection_when_the_last_one_ends() -> None:
    gc.enable()
    inside, leave = threading.Event(), threading.Event()

    def worker() -> None:
        with bulk_built():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(10)
    with bulk_built():
        pass
    assert not gc.isenabled()  # the worker is still inside
    leave.set()
    thread.join(10)
    assert gc.isenabled()
