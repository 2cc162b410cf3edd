"""Whether the process that owns an operation (or holds a lock) is still alive.

A process that dies mid-operation cannot say so. The index records each operation's owner: host, pid
and the pid's start time (``/proc/<pid>/stat`` field 22, which tells a reused pid from the original).
Whoever next reads an active operation asks :func:`owner_gone`, and records ``interrupted`` when the
answer is a reason. Another machine's processes cannot be seen, so their operations stay as recorded.
An owner in this very process is alive only while its runner is (:func:`hold` / :func:`let_go`): a
runner dropped without running its operation to the end leaves it abandoned.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

HOST = socket.gethostname()
_HAVE_PROC = os.path.exists("/proc/self/stat")

# Operations whose runner is alive in this process: an owner pid equal to ours is only alive for these.
_live_here: set[str] = set()


def process_started(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks since boot, /proc/<pid>/stat field 22); None if dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None  # a zombie has exited; only its exit status is left
    return fields[19]


# When this process started, as recorded for the operations it owns (None where there is no /proc).
OWN_START = process_started(os.getpid()) if _HAVE_PROC else None


def pid_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one we may not signal exists too)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def hold(op_id: str) -> None:
    """The runner of ``op_id`` lives in this process from now on."""
    _live_here.add(op_id)


def let_go(op_id: str) -> None:
    """The runner of ``op_id`` is done (or gone): from now on the operation is abandoned if still active."""
    _live_here.discard(op_id)


def owner_gone(op_id: str, host: str, pid: int, pid_started: str | None) -> str | None:
    """Why the operation's owner is known to be gone, or None while it may still be running."""
    if host != HOST:
        return None  # another machine's processes cannot be seen from here
    if pid == os.getpid() and pid_started == OWN_START:
        if op_id in _live_here:
            return None
        return f"abandoned by its process ({pid} on {host}) before it finished"
    if _HAVE_PROC:
        current = process_started(pid)
        alive = current is not None and (pid_started is None or current == pid_started)
    else:
        alive = pid_exists(pid)
    return None if alive else f"its process ({pid} on {host}) ended before it finished"
