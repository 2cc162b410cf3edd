"""Cross-process locks: one holder at a time, whoever takes it (Orbit, filelock, another process)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from orbit_ops.errors import RefusedError
from orbit_ops.locks import held, lock_path

ROOT = Path(__file__).parents[2]

HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from orbit_ops.locks import held

    async def main():
        async with held(Path(sys.argv[1]), what="solution acme-corp"):
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
    assert messages == ["waiting: another operation holds solution acme-corp"]


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_a_removed_lock_folder_is_made_again(tmp_path: Path) -> None:
    state_dir = tmp_path / ".orbit"
    path = lock_path(state_dir, "solution-acme-corp")
    (state_dir / "locks").rmdir()

    assert asyncio.run(try_hold(path)) is True
    assert path.exists()
