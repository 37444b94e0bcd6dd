"""The pool's candidates kept in the order of its strategy, so a choice among thousands of accounts is a
bisect instead of a scan (issue #20: 5,000 accounts, a choice in <= 50 us).

An index holds, for one model context (the plans offering the model, its per-model limit), every account that
the scan in `AccountPool._choose` would call a candidate — not blocked and not at its concurrency limit —
as `(rank, position, runtime)` tuples in a sorted list: `rank` is the strategy's sort key, `position` the
account's place in the pool's insertion order (the scan sorts stably, so equal ranks keep that order). Positions
are unique, so tuple comparison never reaches the runtime.

Nothing here looks at the clock by itself. The pool marks an account dirty whenever something the ranking or
the blocked check reads changes (`touch`), and wakes it when a time it depends on passes (a cooldown end, a
window reset: `wake_time`); `update` then moves just that account. The least-used ranking also depends on the
earliest known reset among all candidates (the "horizon", see `AccountPool._least_used`): when it moves, only
the accounts whose reset lies between the old and the new horizon change rank.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from typing import Any, Callable, Generic, Hashable, TypeVar

R = TypeVar("R", bound=Hashable)

Rank = tuple[Any, ...]
Entry = tuple[Rank, int, Any]


class ChoiceIndex(Generic[R]):
    def __init__(self, *, is_candidate: Callable[[R, float], bool], rank: Callable[[R, float, float], Rank],
                 reset_of: Callable[[R, float], float | None] | None, horizon_slack: float,
                 position: Callable[[R], int]) -> None:
        self._is_candidate = is_candidate
        self._rank = rank
        self._reset_of = reset_of  # least_used only: the candidate's earliest known reset
        self._slack = horizon_slack
        self._position = position
        self.entries: list[Entry] = []
        self._entry_of: dict[R, Entry] = {}
        self._resets: list[tuple[float, int, R]] = []  # candidates' known resets, sorted
        self._reset_entry: dict[R, tuple[float, int, R]] = {}
        self.horizon = math.inf
        self.dirty: set[R] = set()

    def build(self, runtimes: list[R], now: float) -> None:
        """From scratch, like the scan: candidates first, then the horizon, then the ranks."""
        candidates = [rt for rt in runtimes if self._is_candidate(rt, now)]
        if self._reset_of is not None:
            for rt in candidates:
                reset = self._reset_of(rt, now)
                if reset is not None:
                    item = (reset, self._position(rt), rt)
                    self._resets.append(item)
                    self._reset_entry[rt] = item
            self._resets.sort()
        self.horizon = self._resets[0][0] + self._slack if self._resets else math.inf
        for rt in candidates:
            entry = (self._rank(rt, now, self.horizon), self._position(rt), rt)
            self.entries.append(entry)
            self._entry_of[rt] = entry
        self.entries.sort()
        self.dirty.clear()

    def contains(self, rt: R) -> bool:
        return rt in self._entry_of

    def apply(self, now: float) -> None:
        """Move every dirty account to where the scan would put it now."""
        if not self.dirty:
            return
        dirty, self.dirty = self.dirty, set()
        for rt in dirty:
            self._drop(rt)
            if not self._is_candidate(rt, now):
                continue
            if self._reset_of is not None:
                reset = self._reset_of(rt, now)
                if reset is not None:
                    item = (reset, self._position(rt), rt)
                    insort(self._resets, item)
                    self._reset_entry[rt] = item
            self._insert(rt, now)
        horizon = self._resets[0][0] + self._slack if self._resets else math.inf
        if horizon != self.horizon:
            low, high = sorted((self.horizon, horizon))
            self.horizon = horizon
            # ranks compare a reset with the horizon: only resets between the two horizons change side
            start = bisect_left(self._resets, (low,))
            end = bisect_left(self._resets, (high,))
            for _, _, rt in self._resets[start:end]:
                self._remove_entry(rt)
                self._insert(rt, now)

    def _insert(self, rt: R, now: float) -> None:
        entry = (self._rank(rt, now, self.horizon), self._position(rt), rt)
        insort(self.entries, entry)
        self._entry_of[rt] = entry

    def _remove_entry(self, rt: R) -> None:
        entry = self._entry_of.pop(rt, None)
        if entry is not None:
            del self.entries[bisect_left(self.entries, entry)]

    def _drop(self, rt: R) -> None:
        self._remove_entry(rt)
        item = self._reset_entry.pop(rt, None)
        if item is not None:
            del self._resets[bisect_left(self._resets, item)]

    def ties(self) -> int:
        """How many candidates share the best rank (the least-used strategy lets them take turns)."""
        if not self.entries:
            return 0
        return bisect_right(self.entries, (self.entries[0][0], math.inf))

    def first_after(self, rank: Rank) -> R:
        """The first candidate ranked after `rank`, wrapping around (round robin)."""
        i = bisect_right(self.entries, (rank, math.inf))
        return self.entries[i if i < len(self.entries) else 0][2]
