"""Stop sequences, which the backend cannot enforce: one scanner and one rule for every protocol, sans-IO.

The rule is the one a model that generates text character by character and stops the moment the text ends
with a stop sequence would follow: the occurrence that *ends* first wins (on a tie, the one that starts first,
i.e. the longer one), and the reply is the text before it. With stops ["abcd", "bc"] and the text "abcdX"
that is "a": "bc" is complete before "abcd" is. Because the rule only looks at where occurrences end, the
result does not depend on how the upstream splits its deltas — a property test holds every protocol to that.

Text that could still become a stop sequence is held back until the next delta decides it, and released by
`flush()` when the text ends without one.
"""

from __future__ import annotations

from typing import Any, Iterable

from .schema import OPT_TUPLE_SCHEMA


class StopScanner:
    __slots__ = ("_stops", "_firsts", "_prefixes", "_longest", "_held", "matched")

    def __init__(self, stops: Iterable[str]) -> None:
        self._stops = tuple(dict.fromkeys(s for s in stops if s))
        self._firsts = tuple({s[0] for s in self._stops})
        self._prefixes = frozenset(s[:k] for s in self._stops for k in range(1, len(s)))
        self._longest = max((len(s) for s in self._stops), default=0)
        self._held = ""
        self.matched: str | None = None  # the stop sequence that ended the text, once one did

    @property
    def hit(self) -> bool:
        return self.matched is not None

    def feed(self, text: str) -> str:
        """The part of `text` (after what was held) that is safe to emit now; "" once a stop matched."""
        if self.matched is not None:
            return ""
        if not self._held and not any(c in text for c in self._firsts):
            return text  # nothing here can start a stop sequence (also the no-stops case)
        buffer = self._held + text
        cut, cut_end, matched = -1, -1, None
        for stop in self._stops:
            # A stop's first occurrence is also the one that ends first (all its occurrences have one length).
            pos = buffer.find(stop)
            if pos != -1:
                end = pos + len(stop)
                if cut == -1 or end < cut_end or (end == cut_end and pos < cut):
                    cut, cut_end, matched = pos, end, stop
        if matched is not None:
            self.matched, self._held = matched, ""
            return buffer[:cut]
        # Hold the longest tail that is the start of some stop sequence. No occurrence can start before it
        # (it would be a longer such tail), so what is released now can never be part of a later match.
        hold = 0
        for k in range(min(self._longest - 1, len(buffer)), 0, -1):
            if buffer[-k:] in self._prefixes:
                hold = k
                break
        self._held = buffer[len(buffer) - hold:] if hold else ""
        return buffer[: len(buffer) - hold]

    def flush(self) -> str:
        """The held text, when the text ended (or a non-text part follows) without a stop sequence."""
        held, self._held = self._held, ""
        return "" if self.matched is not None else held


def apply_stops(text: str, stops: Iterable[str]) -> tuple[str, str | None]:
    """A whole text cut at its stop sequence: (text before it, the stop that matched or None)."""
    scanner = StopScanner(stops)
    out = scanner.feed(text) + scanner.flush()
    return out, scanner.matched


def early_stops(turn: Any) -> list[str]:
    """The stop sequences that may end a turn while it streams. Structured output with tuples is mapped back
    only once the whole text is in (`restore_tuples`), so its stops are applied to the finished text instead."""
    if turn.options.get(OPT_TUPLE_SCHEMA) is not None:
        return []
    return list(turn.stop_sequences)
