"""Run every benchmark and print their markdown sections (paste into bench/RESULTS.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

SCRIPTS = ("bench_foundation.py", "bench_worktree.py", "bench_context.py", "bench_fleet.py", "bench_azure.py",
           "bench_tui.py")

for script in SCRIPTS:
    subprocess.run([sys.executable, str(HERE / script)], check=True)
    print()
