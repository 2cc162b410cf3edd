"""Run inside a private mount namespace by ``test_state_dir.py``: every command against the mounted state folder.

Usage: ``python statedir_walk.py WORKSPACE COMMANDS.json RESULTS.json``. The caller has already mounted
``WORKSPACE/.orbit`` read-only or on a full tmpfs. Each command runs as its own ``orbit`` process, as an
operator would run it; the digests of the state folder's files are taken before and after the walk.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path


def digests(folder: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    if not folder.is_dir():
        return found
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if name == "fill":
                continue
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def main() -> None:
    workspace, commands_file, results_file = sys.argv[1:4]
    state = Path(workspace) / ".orbit"
    commands = json.loads(Path(commands_file).read_text())
    before = digests(state)
    results = []
    for args in commands:
        # ["-c", CODE, ...] runs CODE (python -c) with the workspace and the rest as its arguments.
        argv = ["-c", args[1], workspace, *args[2:]] if args[0] == "-c" else ["-m", "orbit_cli.main", "-w",
                                                                            workspace, *args]
        done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=120)
        results.append({"args": args, "rc": done.returncode, "out": done.stdout, "err": done.stderr})
    Path(results_file).write_text(json.dumps({"results": results, "before": before, "after": digests(state)}))


if __name__ == "__main__":
    main()
