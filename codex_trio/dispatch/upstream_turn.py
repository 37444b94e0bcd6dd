"""The interface between the dispatcher and the routes: one upstream turn that has started streaming."""

from __future__ import annotations

from typing import AsyncIterator, Protocol

from ..upstream.events import CodexEvent


class UpstreamTurn(Protocol):
    account_id: str
    model: str  # the Codex model id the turn runs on
    # Headers to pass on to the client (x-codex-* quota headers, x-request-id), in order.
    forward_headers: list[tuple[str, str]]

    def batches(self) -> AsyncIterator[list[CodexEvent]]:
        """Every event the upstream sent since the last batch; ends after the terminal event or EOF.

        Raises GatewayError when the upstream fails mid-stream (transport error, idle timeout)."""
        ...

    async def aclose(self) -> None:
        """Release the account and abort the upstream call if it is still running. Idempotent."""
        ...
