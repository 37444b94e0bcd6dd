"""`codex-trio identity check`: compare the real Codex CLI's wire with the gateway's, on loopback."""
