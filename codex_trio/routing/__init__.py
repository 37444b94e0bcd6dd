"""Model routing: client model names → Codex model id, reasoning effort and service tier."""

from codex_trio.routing.models import EFFORTS, TIERS, ModelRouter, ResolvedModel

__all__ = ["EFFORTS", "TIERS", "ModelRouter", "ResolvedModel"]
