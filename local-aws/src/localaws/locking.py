"""One lock around moto's in-memory state.

moto's backends are plain dicts and lists, not made for the concurrency the local AWS has
(request threads, stack operations running in the background, Lambda handlers calling back in).
Every request and every engine step holds `BACKEND_LOCK`; whoever waits for something that
needs the server (a Lambda subprocess, a custom-resource response) lets go with `unlocked()`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

BACKEND_LOCK = threading.RLock()


@contextmanager
def unlocked() -> Iterator[None]:
    """Release BACKEND_LOCK entirely (however often this thread holds it), then take it back."""
    lock: Any = BACKEND_LOCK
    if not lock._is_owned():
        yield
        return
    state = lock._release_save()
    try:
        yield
    finally:
        lock._acquire_restore(state)
