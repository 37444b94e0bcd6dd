"""The upstream Codex backend client: identity, request rules, transports, decoding, error classification.

Sans-IO cores:
* `identity`  — `config/fingerprint.yaml` as typed `Identity` profiles (codex-tui, codex-exec, app-server);
                user-agent derivation.
* `context`   — `AccountAuth`, `ThreadContext`, `TurnContext`, `ModelTraits`: the values requests carry.
* `headers`   — header lists in the real client's order for every backend and auth call.
* `body`      — request bodies in the real field order, body rules, zstd, WebSocket frames, OAuth bodies.
* `sse`, `ws_frames` — bytes / frames -> `events.CodexEvent`.
* `errors`    — status/body/headers or a stream error -> `UpstreamFailure` (what to do next).
* `quota`     — rate-limit headers, `codex.rate_limits`, `/wham/usage` -> `QuotaSnapshot`.
* `ws_chain`  — what a Responses WebSocket already holds, and what to send next.

Async glue over `codex_trio.native`: `transport`.
"""
