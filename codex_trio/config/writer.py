"""Round-trip edits of data/local.yaml: comments, key order and the user's formatting survive."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping

from ruamel.yaml.comments import CommentedMap

from ..files import write_private_atomic
from .loader import read_yaml, yaml_round_trip


def _apply(node: CommentedMap, changes: Mapping[str, Any]) -> None:
    for key, value in changes.items():
        current = node.get(key)
        if isinstance(value, Mapping) and isinstance(current, CommentedMap):
            _apply(current, value)
        elif isinstance(value, Mapping):
            fresh = CommentedMap()
            _apply(fresh, value)
            node[key] = fresh
        else:
            node[key] = value


def render(document: CommentedMap) -> str:
    buffer = io.StringIO()
    yaml = yaml_round_trip()
    # Write None as `null`, not as an empty value, so the file reads unambiguously.
    yaml.representer.add_representer(
        type(None), lambda rep, _value: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    yaml.dump(document, buffer)
    return buffer.getvalue()


def update_local_file(path: Path, changes: Mapping[str, Any]) -> str:
    """Merge `changes` (nested by section) into the file and write it back atomically with mode 0600.

    Returns the new text. The caller validates the merged settings before calling this.
    """
    document = read_yaml(path)
    # A file holding only comments parses to nothing; keep those comments above the new content.
    preamble = ""
    if not document and path.exists():
        preamble = path.read_text(encoding="utf-8").rstrip("\n") + "\n"
    _apply(document, changes)
    text = preamble + render(document)
    write_private_atomic(path, text)
    return text
