"""When Python's cyclic garbage collector runs in the gateway process.

CPython collects its youngest generation whenever 700 more container objects (dicts, lists, tuples, task and
cancel-scope state) have been allocated than freed, every tenth of those collects the middle generation, and a
full collection follows when enough has been promoted. A gateway relaying many slow streams allocates a few such
objects per event and frees them microseconds later, yet the count passes 700 inside one scheduler pass, so the
young collection ran every few dozen events; what it found alive (the events in flight) was promoted, and the
promotions brought a full collection every second or two — each a walk over every stream's objects (40-85 ms
with 200 streams) during which no stream gets an event.

Measured with 200 streams at 20 events/s each (`benches/stream_pacing.py`'s servers, `gc.callbacks` timing each
collection, 40,000 relayed deltas): at 700, 1,116 young, 102 middle and 10 full collections took 1.75 s of the
gateway's CPU (18 % of it); at 10,000, 10 young, 1 middle and no full collection took 0.05 s. What a young
collection walks stays as small (the objects allocated since the last one that are still alive), so a higher
threshold costs at most that many objects' worth of unreclaimed cycles for a little longer.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # net container allocations between young collections (CPython's default: 700)


def collect_young_less_often() -> None:
    """Raise the young generation's threshold (process-wide; the older generations' stay as they are)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
