"""The upstream Codex backend client: identity, request rules, transports, decoding, error classification."""
