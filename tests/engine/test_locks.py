"""Cross-process locks: one holder at a time, whoever takes it (Orbit, filelock, another process); a waiter
is told who holds the lock, gives up after its timeout, and stops when cancelled."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from orbit_ops.errors import LockTimeoutError, RefusedError
from orbit_ops.operations.locks import LockHolder, held, lock_path, read_holder

ROOT = Path(__file__).parents[2]

HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from orbit_ops.operations.locks import held

    async def main():
        async with held(Path(sys.argv[1]), what="solution acme-corp", op_id="20261201-213005-ab12", kind="roll"):
            print("held", flush=True)
            sys.stdin.readline()

    asyncio.run(main())
    """
)


async def try_hold(path: Path) -> bool:
    try:
        async with held(path, what="solution acme-corp", wait=False):
            return True
    except RefusedError:
        return False


def test_a_second_holder_in_the_same_process_is_refused_until_the_first_lets_go(tmp_path: Path) -> None:
    path = lock_path(tmp_path / ".orbit", "solution-acme-corp")

    async def scenario() -> tuple[bool, bool]:
        async with held(path, what="solution acme-corp") as waited:
            assert waited is False
            inside = await try_hold(path)
        return inside, await try_hold(path)

    assert asyncio.run(scenario()) == (False, True)


def test_orbit_and_filelock_exclude_each_other(tmp_path: Path) -> None:
    path = lock_path(tmp_path / ".orbit", "solution-acme-corp")

    with FileLock(str(path)):
        assert asyncio.run(try_hold(path)) is False

    async def held_by_orbit() -> None:
        async with held(path, what="solution acme-corp"):
            with pytest.raises(Timeout):
                FileLock(str(path)).acquire(timeout=0)

    asyncio.run(held_by_orbit())
    assert asyncio.run(try_hold(path)) is True


def test_a_lock_held_by_another_process_fails_fast_or_waits_until_that_process_dies(tmp_path: Path) -> None:
    path = lock_path(tmp_path / ".orbit", "solution-acme-corp")
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    holder = subprocess.Popen([sys.executable, str(script), str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)

    async def scenario() -> tuple[bool, list[str]]:
        with pytest.raises(RefusedError, match="solution acme-corp is busy"):
            async with held(path, what="solution acme-corp", wait=False):
                pass
        messages: list[str] = []

        async def wait_for_it() -> bool:
            async with held(path, what="solution acme-corp", on_wait=messages.append) as waited:
                return waited

        waiting = asyncio.create_task(wait_for_it())
        await asyncio.wait_for(until(lambda: bool(messages)), 10)
        holder.kill()  # the OS drops a dead holder's lock
        return await asyncio.wait_for(waiting, 10), messages

    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        waited, messages = asyncio.run(scenario())
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(10)
    assert waited is True
    assert len(messages) == 1
    assert re.fullmatch(rf"waiting for solution acme-corp: held by operation 20261201-213005-ab12 \(roll, pid "
                        rf"{holder.pid} on {re.escape(socket.gethostname())}, since \d\d:\d\d:\d\d\)", messages[0])


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_a_removed_lock_folder_is_made_again(tmp_path: Path) -> None:
    state_dir = tmp_path / ".orbit"
    path = lock_path(state_dir, "solution-acme-corp")
    (state_dir / "locks").rmdir()

    assert asyncio.run(try_hold(path)) is True
    assert path.exists()


def start_holder(tmp_path: Path, path: Path) -> subprocess.Popen[str]:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    holder = subprocess.Popen([sys.executable, str(script), str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def stop(holder: subprocess.Popen[str]) -> None:
    if holder.poll() is None:
        holder.kill()
    holder.wait(10)


def test_the_holder_is_recorded_in_the_lock_file_and_a_later_shorter_record_replaces_it(tmp_path: Path) -> None:
    path = lock_path(tmp_path / ".orbit", "solution-acme-corp")
    holder = start_holder(tmp_path, path)
    try:
        recorded = read_holder(path)
        assert recorded is not None
        assert (recorded.op_id, recorded.kind, recorded.pid, recorded.host) == (
            "20261201-213005-ab12", "roll", holder.pid, socket.gethostname())
        assert holder.stdin is not None
        holder.stdin.write("\n")  # let go
        holder.stdin.flush()
        holder.wait(10)
    finally:
        stop(holder)

    async def hold_briefly() -> LockHolder | None:
        async with held(path, what="solution acme-corp", op_id="op-2", kind="b"):
            return read_holder(path)

    again = asyncio.run(hold_briefly())
    assert again is not None and (again.op_id, again.kind, again.pid) == ("op-2", "b", os.getpid())


def test_a_wait_gives_up_after_its_timeout_naming_the_holder(tmp_path: Path) -> None:
    path = lock_path(tmp_path / ".orbit", "solution-acme-corp")
    holder = start_holder(tmp_path, path)
    messages: list[str] = []

    async def wait_briefly() -> None:
        async with held(path, what="solution acme-corp", timeout=0.6, on_wait=messages.append):
            pass

    try:
        began = time.monotonic()
        with pytest.raises(LockTimeoutError) as caught:
            asyncio.run(wait_briefly())
        took = time.monotonic() - began
    finally:
        stop(holder)
    assert 0.6 <= took < 3
    assert str(caught.value).startswith("gave up waiting for solution acme-corp after 0.6 s (--lock-timeout): held "
                                        "by operation 20261201-213005-ab12 (roll, pid ")
    assert "orbit cancel 20261201-213005-ab12" in str(caught.value)
    assert caught.value.exit_code == 1
    assert len(messages) == 1 and "held by operation 20261201-213005-ab12" in messages[0]


def test_a_zero_timeout_does_not_wait(tmp_path: Path) -> None:
    path = lock_path(tmp_path / ".orbit", "solution-acme-corp")

    async def scenario() -> None:
        async with held(path, what="solution acme-corp", op_id="op-1", kind="sweep"):
            with pytest.raises(LockTimeoutError, match="held by operation op-1 \\(sweep, pid"):
                async with held(path, what="solution acme-corp", timeout=0):
                    pass

    asyncio.run(asyncio.wait_for(scenario(), 5))


def test_a_cancelled_wait_stops_at_once_and_never_takes_the_lock(tmp_path: Path) -> None:
    path = lock_path(tmp_path / ".orbit", "solution-acme-corp")
    entered: list[bool] = []

    async def scenario() -> float:
        async with held(path, what="solution acme-corp", op_id="op-1", kind="sweep"):
            async def waiter() -> None:
                async with held(path, what="solution acme-corp"):
                    entered.append(True)

            task = asyncio.create_task(waiter())
            await asyncio.sleep(0.5)
            began = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return time.monotonic() - began

    assert asyncio.run(scenario()) < 0.5
    assert entered == []
    assert asyncio.run(try_hold(path)) is True


def test_a_holder_releasing_the_lock_is_not_reported_as_another_process(tmp_path: Path) -> None:
    # A holder says who it is, then (releasing) empties its record a moment before it lets go: a waiter that
    # looks in between has seen a named holder for longer than the grace, and must not say "another process".
    import fcntl

    path = lock_path(tmp_path / ".orbit", "solution-acme-corp")
    path.write_bytes(json.dumps({"op_id": "20261204-195101-5fbf", "kind": "provision", "pid": os.getpid(),
                                 "host": socket.gethostname(), "since": "2026-12-04T19:51:01Z"}).encode())
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    messages: list[str] = []

    async def scenario() -> None:
        async def release() -> None:
            await asyncio.sleep(1.3)  # past the grace: a waiter that began meanwhile has waited that long
            path.write_bytes(b"")
            await asyncio.sleep(0.6)  # shorter than the grace: the releasing holder's last moment
            os.close(fd)

        releasing = asyncio.create_task(release())
        async with held(path, what="solution acme-corp", timeout=10, on_wait=messages.append):
            pass
        await releasing

    asyncio.run(scenario())
    assert messages == ["waiting for solution acme-corp: held by operation 20261204-195101-5fbf (provision, pid "
                        f"{os.getpid()} on {socket.gethostname()}, since 19:51:01)"]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b'{"op_id": "20261201-213005-ab12", "kind": "ro',  # a holder caught mid-write
        b"not json at all",
        b"[1, 2]",
        json.dumps({"op_id": "x", "kind": "roll", "pid": 2**22 + 12345, "host": socket.gethostname(),
                    "since": "2026-12-01T21:30:05Z"}).encode(),  # a holder of this host that is gone
    ],
    ids=["empty", "partial", "garbage", "not-an-object", "dead-process"],
)
def test_a_holder_that_did_not_say_who_it_is_reads_as_unknown(tmp_path: Path, content: bytes) -> None:
    import fcntl

    path = lock_path(tmp_path / ".orbit", "solution-acme-corp")
    path.write_bytes(content)
    messages: list[str] = []
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held by something that writes no record (as filelock)

    async def scenario() -> None:
        with pytest.raises(LockTimeoutError, match="held by another process"):
            async with held(path, what="solution acme-corp", timeout=1.5, on_wait=messages.append):
                pass

    try:
        asyncio.run(scenario())
    finally:
        os.close(fd)
    assert messages == ["waiting for solution acme-corp: held by another process (not an Orbit operation, or one "
                        "that has not said who it is)"]
