"""Where the kill loops of ``tests/resilience`` strike: one random point in each of ``kills`` equal slices of a window.

Drawing every delay uniformly over the window needs many kills before all of it is hit (a random draw leaves
slices empty and crowds others); a point drawn inside each equal slice covers the whole window, start to end,
with every kill, so a loop covers each phase of the operation with far fewer kills. The slices are visited in
a shuffled order, so early and late kills still fall on every stage of the loop (e.g. the fleet being created
and, later, drift sweeps). Seeded by the caller's ``random.Random``: a failing round is replayed exactly.
"""

from __future__ import annotations

import random


def kill_delays(rng: random.Random, kills: int, window: float) -> list[float]:
    """``kills`` delays in [0, ``window``): one uniformly drawn in each of ``kills`` equal slices, shuffled."""
    slices = list(range(kills))
    rng.shuffle(slices)
    return [window * (index + rng.random()) / kills for index in slices]
