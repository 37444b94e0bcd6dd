"""Rotation and cooldown of a provider's API keys, in memory (like the account pool's, per key): a 429 rests
the key until its Retry-After (or the configured cooldown), a refused key (401/403) rests ten times as long."""

from __future__ import annotations

from typing import Callable

REFUSED_FACTOR = 10


class KeyRing:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._resting: dict[tuple[str, str], float] = {}  # (provider id, key) → until
        self._next: dict[str, int] = {}

    def order(self, provider_id: str, keys: tuple[str, ...]) -> list[str]:
        """The keys to try for one request: the rested ones, round-robin from the next in turn (none when every
        key is resting: the caller answers 429 with `soonest_ready`)."""
        now = self._clock()
        start = self._next.get(provider_id, 0) % max(1, len(keys))
        self._next[provider_id] = start + 1
        rotated = keys[start:] + keys[:start]
        ready = [k for k in rotated if self._resting.get((provider_id, k), 0.0) <= now]
        return ready

    def rest(self, provider_id: str, key: str, seconds: float) -> None:
        self._resting[(provider_id, key)] = self._clock() + max(0.0, seconds)

    def soonest_ready(self, provider_id: str, keys: tuple[str, ...]) -> float | None:
        """Seconds until a key of the provider is usable again (None: one is usable now)."""
        now = self._clock()
        waits = [self._resting.get((provider_id, k), 0.0) - now for k in keys]
        return None if not waits or min(waits) <= 0 else min(waits)

    def status(self, provider_id: str, keys: tuple[str, ...]) -> list[float]:
        now = self._clock()
        return [max(0.0, self._resting.get((provider_id, k), 0.0) - now) for k in keys]
