"""Helpers shared by the protocol adapter tests: upstream events from real captures, and body corruption for
the parser fuzz tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from codex_trio.upstream.events import CodexEvent, EventNormalizer
from codex_trio.upstream.sse import SseDecoder


def normalize(raw_events: list[dict]) -> list:
    """Raw backend event objects → the normalized events every encoder consumes."""
    normalizer, out = EventNormalizer(), []
    for raw in raw_events:
        out += normalizer.feed(CodexEvent(raw["type"], raw))
    return out


def sse_events(path: Path) -> list:
    """A captured SSE reply, decoded by the production decoder, then normalized."""
    decoder = SseDecoder()
    raw = decoder.feed(path.read_bytes()) + decoder.close()
    normalizer, out = EventNormalizer(), []
    for event in raw:
        out += normalizer.feed(event)
    return out


scalars = st.none() | st.booleans() | st.integers(-3, 70000) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
# Values that trip careless code: unhashables where a string is expected, empty containers, bools as ints.
awkward = st.sampled_from([{}, [{}], [[]], {"a": {}}, [None], True, 0, -1, 1.5, "", "x", None]) | json_values


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            out += paths(inner, prefix + (key,))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            out += paths(inner, prefix + (i,))
    return out


@st.composite
def corrupted(draw, strategy):
    """A body from `strategy` with one value replaced by an awkward one, or one key dropped."""
    body = copy.deepcopy(draw(strategy))  # `just(...)` values are shared objects: never mutate them
    path = draw(st.sampled_from(paths(body)[1:] or [()]))
    if not path:
        return body
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(awkward)
    return body
