"""Fleet-scale reads without the cyclic garbage collector rescanning what they build.

Loading 10,000 solution files, listing 80,000 resources or computing 10,000 statuses allocates
hundreds of thousands of small objects that live on (specs, snapshots, statuses) and form no cycles.
CPython's collector, triggered by allocation counts, would promote them generation by generation
and run a full collection each time the old generation grows by a quarter, rescanning everything
built so far: about a quarter of ``orbit status`` over 10,000 solutions went there.

:func:`bulk_built` pauses automatic collection while such a loop runs and, when the last one ends,
moves every surviving object straight to the oldest generation (``gc.freeze()`` then
``gc.unfreeze()``, which splice lists and count nothing), so they are not scanned again until the
next full collection is due for other reasons. Nothing is kept from collection for good: garbage
made meanwhile, cycles included, is collected by that next full collection. A process that froze
objects itself (``gc.get_freeze_count()``) is left as it is, apart from the pause.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextlib.contextmanager
def bulk_built() -> Iterator[None]:
    """Pause automatic garbage collection while a bulk of long-lived, acyclic objects is built.

    Nests and may be used from several threads at once: collection resumes when the last one ends.
    Keep it around synchronous loops; never hold it across an ``await``.
    """
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                if gc.get_freeze_count() == 0:
                    gc.freeze()
                    gc.unfreeze()
                if _was_enabled:
                    gc.enable()
