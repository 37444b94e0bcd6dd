"""Cost estimate of a record from the configured price table (`usage_stats.prices`)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Mapping

from ..config.schema import ModelPrice

PER_TOKEN = 1e-6  # prices are per million tokens


def price_for(model: str, prices: Mapping[str, ModelPrice]) -> ModelPrice | None:
    """The exact entry, else the most specific (longest) glob pattern that matches: a pattern you add to
    local.yaml is never shadowed by a broader shipped one, whatever the merge order."""
    if model in prices:
        return prices[model]
    matching = [pattern for pattern in prices if fnmatchcase(model, pattern)]
    return prices[max(matching, key=len)] if matching else None


def estimate_cost(model: str, input_tokens: int, cached_tokens: int, output_tokens: int,
                  prices: Mapping[str, ModelPrice]) -> float:
    price = price_for(model, prices) if model else None
    if price is None:
        return 0.0
    uncached = max(0, input_tokens - cached_tokens)
    return (uncached * price.input + cached_tokens * price.cached_input + output_tokens * price.output) * PER_TOKEN
