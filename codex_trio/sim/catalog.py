"""The model catalog the simulated backend serves, per plan.

Fourteen entries with the slugs, visibility, priority, minimal client version and flags of the catalog that
Codex 0.171.0 bundles (fixtures/chatgpt-mode-0.171.0/stand-in-replies/codex-models.response.shape.json: the
0.169.0 twelve plus gpt-6.2-sol and gpt-6.2-astra, priorities reshuffled), in the real key order. Long prompt
strings are shortened. Which plans see which model is the simulator's own choice, so tests can exercise "model
outside the plan".
"""

from __future__ import annotations

import hashlib

import orjson

ALL_PLANS = ("free", "go", "plus", "pro", "team", "business", "enterprise", "edu")
PAID_PLANS = ("plus", "pro", "team", "business", "enterprise", "edu")
TOP_PLANS = ("pro", "enterprise")

# slug, visibility, priority, minimal_client_version, use_responses_lite, tool_mode, prefer_websockets, plans
_MODELS: tuple[tuple[str, str, int, str, bool, str | None, bool, tuple[str, ...]], ...] = (
    ("gpt-6.2-sol", "list", 1, "0.166.0", True, "code_mode_only", True, ALL_PLANS),
    ("gpt-6.2-astra", "list", 2, "0.166.0", True, "code_mode_only", True, TOP_PLANS),
    ("gpt-6-astra", "list", 5, "0.153.0", True, "code_mode_only", True, TOP_PLANS),
    ("gpt-6.1-sol", "list", 4, "0.153.0", True, "code_mode_only", True, ALL_PLANS),
    ("gpt-6.1-terra", "list", 3, "0.153.0", True, "code_mode_only", True, PAID_PLANS),
    ("gpt-6-sol", "list", 6, "0.155.0", True, "code_mode_only", True, PAID_PLANS),
    ("gpt-6-luna", "list", 7, "0.155.0", True, "code_mode_only", True, ALL_PLANS),
    ("gpt-5.6-sol", "list", 8, "0.144.0", True, "code_mode_only", True, PAID_PLANS),
    ("gpt-5.6-terra", "list", 9, "0.144.0", True, "code_mode_only", True, PAID_PLANS),
    ("gpt-5.6-luna", "list", 10, "0.144.0", True, "code_mode_only", True, PAID_PLANS),
    ("gpt-daybreak-blue-latest", "hide", 11, "0.144.0", True, "code_mode_only", True, TOP_PLANS),
    ("gpt-daybreak-red-latest", "hide", 12, "0.142.2", True, "code_mode_only", True, TOP_PLANS),
    ("gpt-5.5", "list", 13, "0.124.0", False, None, True, ALL_PLANS),
    ("codex-auto-review", "hide", 43, "0.98.0", True, "code_mode_only", True, PAID_PLANS),
)

_LEVELS = (
    ("low", "Fast responses with lighter reasoning"),
    ("medium", "Balances speed and reasoning depth for everyday tasks"),
    ("high", "Greater reasoning depth for complex problems"),
    ("xhigh", "Extra high reasoning depth for complex problems"),
)
# the GPT-6 family (responses-lite) adds these two, as in the bundled 0.169.0 catalog
_LITE_LEVELS = (
    ("max", "Maximum reasoning depth for the hardest problems"),
    ("ultra", "Maximum reasoning with automatic task delegation"),
)


def _display_name(slug: str) -> str:
    return "-".join(part.capitalize() if not part[0].isdigit() else part for part in slug.split("-")).replace("Gpt", "GPT")


def _entry(slug: str, visibility: str, priority: int, min_version: str, lite: bool, tool_mode: str | None,
           prefer_ws: bool, plans: tuple[str, ...]) -> dict:
    return {
        "slug": slug,
        "prefer_websockets": prefer_ws,
        "support_verbosity": True,
        "default_verbosity": "low",  # codex sends text.verbosity "low" for gpt-6.1-sol and gpt-5.5 alike
        "apply_patch_tool_type": "freeform",
        "web_search_tool_type": "text_and_image",
        "input_modalities": ["text", "image"],
        "supports_image_detail_original": True,
        "truncation_policy": {"mode": "tokens", "limit": 10000},
        "supports_parallel_tool_calls": True,
        "tool_mode": tool_mode,
        "multi_agent_version": "v2",
        "multi_agent_reasoning_effort": "xhigh",
        "use_responses_lite": lite,
        "include_skills_usage_instructions": False,
        "include_apps_usage_instructions": False,
        "include_plugin_usage_instructions": False,
        "guardian": None,
        "node_repl_auto_review_required": lite,  # false in gpt-5.5's captured turn metadata
        "node_repl_disabled": False,
        "requires_sandboxed_review": False,
        "auto_review_model_override": None,
        "model_specialty": None,
        "context_window": 272000,
        "max_context_window": 872000,
        "auto_compact_token_limit": None,
        "comp_hash": "3000",
        "default_reasoning_summary": "none",
        "display_name": _display_name(slug),
        "description": f"{_display_name(slug)} served by the codex-trio simulator.",
        "default_reasoning_level": "low" if lite else "medium",
        "supported_reasoning_levels": [{"effort": e, "description": d}
                                       for e, d in _LEVELS + (_LITE_LEVELS if lite else ())],
        "shell_type": "shell_command",
        "visibility": visibility,
        "minimal_client_version": min_version,
        "supported_in_api": True,
        "availability_nux": None,
        "upgrade": None,
        "priority": priority,
        "model_messages": {"instructions_template": "You are Codex, a coding agent (simulated catalog entry)."},
        "experimental_supported_tools": ["send_user_message_async", "clock"] if lite else [],
        "available_in_plans": list(plans),
        "supports_search_tool": True,
        "supports_experimental_context": False,
        "default_service_tier": None,
        "service_tiers": [{"id": "priority", "name": "Fast", "description": "2x speed, increased usage"}],
        "additional_speed_tiers": ["fast"],
        "supports_reasoning_summary_parameter": True,
        "supports_reasoning_summaries": True,
        "supports_reasoning_effort_updates": True,
    }


def _version_tuple(text: str) -> tuple[int, ...]:
    digits = []
    for part in text.split("-")[0].split("."):
        digits.append(int(part) if part.isdigit() else 0)
    return tuple(digits)


class Catalog:
    def __init__(self) -> None:
        self.entries = [_entry(*row) for row in _MODELS]
        self._by_slug = {e["slug"]: e for e in self.entries}
        self._rendered: dict[tuple[str, str | None], tuple[bytes, str]] = {}

    def knows(self, slug: str) -> bool:
        return slug in self._by_slug

    def allowed(self, slug: str, plan: str) -> bool:
        entry = self._by_slug.get(slug)
        return entry is not None and plan in entry["available_in_plans"]

    def is_lite(self, slug: str) -> bool:
        entry = self._by_slug.get(slug)
        return entry is not None and entry["use_responses_lite"] is True

    def efforts(self, slug: str) -> list[str]:
        """Reasoning efforts the model accepts: its catalog levels plus `none` and `minimal`."""
        entry = self._by_slug.get(slug)
        levels = [level["effort"] for level in entry["supported_reasoning_levels"]] if entry else []
        return ["none", "minimal", *levels]

    def for_plan(self, plan: str, client_version: str | None) -> tuple[bytes, str]:
        """(JSON body, ETag) of the catalog an account on `plan` sees from a client of `client_version`."""
        key = (plan, client_version)
        if key not in self._rendered:
            self._rendered[key] = self._render(plan, client_version)
        return self._rendered[key]

    def _render(self, plan: str, client_version: str | None) -> tuple[bytes, str]:
        wanted = _version_tuple(client_version) if client_version else None
        models = [
            e for e in self.entries
            if plan in e["available_in_plans"]
            and (wanted is None or _version_tuple(e["minimal_client_version"]) <= wanted)
        ]
        body = orjson.dumps({"models": models})
        return body, 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'
