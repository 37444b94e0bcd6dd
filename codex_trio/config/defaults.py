"""Renders config/default.yaml from the schema, with each field's description as its comment."""

from __future__ import annotations

import textwrap
from typing import Any

import orjson
from pydantic import BaseModel

from .schema import RESTART_REQUIRED, Settings

HEADER = """\
# codex-trio: every setting, with its default.
#
# Generated from codex_trio/config/schema.py by `codex-trio config defaults`; do not edit by hand.
# Put your changes in data/local.yaml (the dashboard writes there too); environment variables override both.
# Changes apply without restart, except where a setting says "Needs a restart."
"""


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return orjson.dumps(value).decode()  # a JSON string is a valid YAML scalar, quoted as needed


def _value_lines(value: Any, indent: str) -> list[str]:
    if isinstance(value, dict):
        if not value:
            return [" {}"]
        return [""] + [f"{indent}  {_scalar(k)}: {_scalar(v)}" for k, v in value.items()]
    if isinstance(value, list):
        if not value:
            return [" []"]
        return [""] + [f"{indent}  - {_scalar(v)}" for v in value]
    return [f" {_scalar(value)}"]


def render_defaults() -> str:
    settings = Settings()
    out = [HEADER]
    for section_name, section_field in Settings.model_fields.items():
        section: BaseModel = getattr(settings, section_name)
        out.append(f"{section_name}:")
        for name, info in type(section).model_fields.items():
            description = (info.description or "") + (" Needs a restart." if (section_name, name) in RESTART_REQUIRED
                                                       else "")
            for line in textwrap.wrap(description.strip(), width=100):
                out.append(f"  # {line}")
            value = section.model_dump(mode="json")[name]
            first, *rest = _value_lines(value, "  ")
            out.append(f"  {name}:{first}")
            out.extend(rest)
        out.append("")
    return "\n".join(out)
