"""The canonical request: what every protocol adapter's `parse_request` produces.

`request` is the body of a Codex Responses call (`POST /codex/responses`), built by the adapter from the
client's request. Fields the gateway decides later (account-scoped `prompt_cache_key`, `client_metadata`,
`store`, `stream`, `include` for reasoning) are filled in by the upstream client, not by adapters.

Everything else the adapter needs to remember to answer the client the way it asked goes into `Turn`
fields; nothing in the middle reads the client's original body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Turn:
    # Codex Responses request body. Keys an adapter may set: model (the client's model name, resolved by the
    # router later), instructions, input, tools, tool_choice, parallel_tool_calls, reasoning, text,
    # service_tier, include, prompt_cache_key (a client-supplied one), previous_response_id.
    request: dict[str, Any]
    # The model name exactly as the client sent it; echoed back where a protocol echoes it.
    requested_model: str
    # Whether the client wants a stream. Upstream always streams; non-streaming clients get a collected reply.
    stream: bool = True
    # Conversation identity from the client (Chat `user`, Anthropic metadata.user_id session, Gemini headers,
    # Responses prompt_cache_key). Drives account affinity and the prompt cache key.
    conversation_id: str | None = None
    # Effort / service tier the client asked for explicitly (protocol field), before suffixes and defaults.
    reasoning_effort: str | None = None
    service_tier: str | None = None
    # Whether the client wants reasoning text exposed (Chat reasoning_content, Anthropic thinking, ...).
    expose_reasoning: bool = True
    # Stop sequences the gateway enforces itself (the backend has no `stop`).
    stop_sequences: list[str] = field(default_factory=list)
    # Tool calls synthesised for built-in features (e.g. image_generation) that should reach the client
    # inline instead of as tool calls.
    inline_images: bool = True
    # Protocol-specific options for the encoder (e.g. {"include_usage": True}); opaque to the middle.
    options: dict[str, Any] = field(default_factory=dict)
