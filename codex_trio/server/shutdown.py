"""Graceful shutdown of open streams.

When shutdown starts, listeners stop accepting. Open streams may finish for a grace period; then every
stream still open is cut, and its relay ends it with the protocol's terminal error frame, so no client sees
a silent EOF.
"""

from __future__ import annotations

import trio


class ShutdownCoordinator:
    def __init__(self) -> None:
        self.draining = trio.Event()
        self._open: set[trio.CancelScope] = set()
        self._cut: set[trio.CancelScope] = set()
        self._idle = trio.Event()
        self._idle.set()

    def register(self, scope: trio.CancelScope) -> None:
        self._open.add(scope)
        self._idle = trio.Event() if self._idle.is_set() else self._idle

    def unregister(self, scope: trio.CancelScope) -> None:
        self._open.discard(scope)
        self._cut.discard(scope)
        if not self._open:
            self._idle.set()

    def was_cut(self, scope: trio.CancelScope) -> bool:
        return scope in self._cut

    @property
    def open_streams(self) -> int:
        return len(self._open)

    async def drain(self, grace_seconds: float) -> int:
        """Wait up to `grace_seconds` for open streams; cut the rest. Returns how many were cut."""
        self.draining.set()
        with trio.move_on_after(grace_seconds):
            await self._idle.wait()
        remaining = list(self._open)
        for scope in remaining:
            self._cut.add(scope)
            scope.cancel()
        return len(remaining)
