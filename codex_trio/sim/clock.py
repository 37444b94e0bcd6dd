"""The simulator's clock: wall time plus an offset that tests can move forward.

Token expiry, quota windows and the WebSocket age cap all read this clock, so a test can jump five hours
without waiting. Pacing delays inside a stream are real time (they exist to test timing behaviour).
"""

from __future__ import annotations

import time


class SimClock:
    def __init__(self, offset: float = 0.0) -> None:
        self._offset = offset

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        self._offset += seconds
