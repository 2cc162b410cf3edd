"""The emulators' two ways of slowing a request: time added before it is handled (``latency``), or a response time
the emulator's own work is done within (``response-time``, what the fleet benchmark's 20 ms per request means:
decision 0089)."""

from __future__ import annotations

import ssl
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulators.server import Emulator, Fault, Request, Response, Running, serve

WORK = 0.6  # seconds the emulated operation itself takes


@pytest.fixture
def slow(emulator_certificate: tuple[Path, Path]) -> Iterator[Running]:
    """An emulator whose one operation takes WORK seconds of its own to answer."""
    emulator = Emulator()

    @emulator.route("GET", "/slow")
    def answer(request: Request) -> Response:
        time.sleep(WORK)
        return Response(200, {"done": True})

    running = serve(emulator, *emulator_certificate)
    try:
        yield running
    finally:
        running.stop()


def elapsed(running: Running) -> float:
    """Seconds from sending GET /slow to its whole answer, over a verified TLS connection."""
    context = ssl.create_default_context(cafile=str(running.cert))
    start = time.monotonic()
    with urllib.request.urlopen(f"{running.url}/slow", context=context, timeout=10) as response:
        assert response.status == 200 and response.read() == b'{"done": true}'
    return time.monotonic() - start


def test_latency_is_added_to_the_emulators_own_work(slow: Running) -> None:
    slow.emulator.inject(Fault("latency", seconds=0.5))
    assert elapsed(slow) >= 0.5 + WORK


def test_a_response_time_holds_the_answer_until_it_has_passed(slow: Running) -> None:
    slow.emulator.inject(Fault("response-time", seconds=1.0))
    taken = elapsed(slow)
    assert 1.0 <= taken < 1.0 + WORK - 0.1  # the work was done within the second, not after it


def test_a_response_time_shorter_than_the_work_answers_when_the_work_is_done(slow: Running) -> None:
    slow.emulator.inject(Fault("response-time", seconds=0.3))
    taken = elapsed(slow)
    assert WORK <= taken < WORK + 0.3 - 0.05  # no wait after the work: the time has passed by then
    assert [(r.method, r.path, r.status) for r in slow.emulator.requests()] == [("GET", "/slow", 200)]
