"""Client protocol adapters. Each module is sans-IO and has the same shape:

* `parse_request(body, ...) -> Turn` — validate the client's request and build the canonical Codex request;
  raises `GatewayError` (never anything else) on bad input.
* `StreamEncoder` — a state machine: `feed(NormalizedEvent) -> bytes` gives the client frames for one event
  (possibly b""), `heartbeat() -> bytes`, `fail(GatewayError) -> bytes` ends a stream that already started
  with the protocol's own terminal error, `finish() -> bytes` flushes what a stream needs at its end.
* `encode_response(turn, events, meta) -> dict` — the non-streaming reply built from the collected events.
* `encode_error(GatewayError) -> tuple[int, dict]` — status and body in the protocol's error envelope.

No network, no clock, no globals: ids and timestamps come in through `ResponseMeta`.
"""
