"""Client protocol adapters. Each module is sans-IO and has the same shape:

* `parse_request(body, ...) -> Turn` — validate the client's request and build the canonical Codex request;
  raises `GatewayError` (never anything else) on bad input.
* `StreamEncoder` — a state machine: `feed(NormalizedEvent) -> bytes` gives the client frames for one event
  (possibly b""), `heartbeat() -> bytes`, `fail(GatewayError) -> bytes` ends a stream that already started
  with the protocol's own terminal error, `finish() -> bytes` flushes what a stream needs at its end.
* `encode_response(turn, events, meta) -> dict` — the non-streaming reply built from the collected events.
* `encode_error(GatewayError) -> tuple[int, dict]` — status and body in the protocol's error envelope.

No network, no clock, no globals: ids and timestamps come in through `ResponseMeta`.

Adapters: openai_chat, responses, anthropic, gemini, ollama, images, transcriptions. No adapter imports another;
what several need lives in a shared module here: json_body (request bodies), validators, failures (error mapping,
premature close), openai_envelope, stops, codex_request (default instructions, function tools, structured
output), schema, reasoning (signature carrier, effort from a budget), response_items, image_tool,
generated_images, token_count, meta, multipart_form, cors (tests/test_layout.py keeps it so).
"""
