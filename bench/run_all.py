"""Run every benchmark and print their markdown sections (paste into bench/RESULTS.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for script in ("bench_foundation.py", "bench_worktree.py", "bench_context.py"):
    subprocess.run([sys.executable, str(HERE / script)], check=True)
    print()
