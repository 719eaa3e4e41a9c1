"""Waiting for a state, never for a time budget.

The machine running the suite is shared and often loaded: a fixed budget per step (300 s for a loop,
say) fails a correct run when the machine is slow. Every wait here polls for the state itself and gives
up only at one generous deadline (``MLOPS_TEST_DEADLINE`` seconds, 3600 by default): long enough that
only a hang reaches it, and then the error says which state never came.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

DEADLINE = float(os.environ.get("MLOPS_TEST_DEADLINE", "3600"))

T = TypeVar("T")


def wait_until(found: Callable[[], T | None], what: str, *, poll: float = 2.0,
               check: Callable[[], None] | None = None) -> T:
    """Poll ``found()`` until it returns something truthy and return that; ``check()`` (e.g. "are the
    processes still alive?") runs each round and may raise to fail fast."""
    deadline = time.monotonic() + DEADLINE
    while True:
        value = found()
        if value:
            return value
        if check is not None:
            check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within the suite's deadline of {DEADLINE:.0f}s "
                               "(MLOPS_TEST_DEADLINE)")
        time.sleep(poll)
