"""Third-party API-key providers (OpenAI-compatible, Anthropic, Gemini): their store, HTTP clients, and the relays
that pass a client's request through unchanged or translate it through the canonical turn (docs/providers.md)."""
