"""Loading settings: schema defaults < base file (config/default.yaml) < data/local.yaml < environment.

Every value remembers where it came from, so a validation error can name the key, the file and the line
(or the environment variable) instead of printing a traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from .schema import Settings

PACKAGED_DEFAULTS = Path(__file__).with_name("default.yaml")

# Environment variable → setting path. Values are strings; pydantic coerces them ("8080", "true", "1").
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "PORT": ("server", "port"),
    "HTTPS_PROXY": ("tls", "proxy_url"),
    "CODEX_PLATFORM": ("client", "platform"),
    "CODEX_ARCH": ("client", "arch"),
    "OLLAMA_BRIDGE_ENABLED": ("ollama", "enabled"),
    "OLLAMA_BRIDGE_HOST": ("ollama", "host"),
    "OLLAMA_BRIDGE_PORT": ("ollama", "port"),
    "OLLAMA_BRIDGE_VERSION": ("ollama", "version"),
    "OLLAMA_BRIDGE_DISABLE_VISION": ("ollama", "disable_vision"),
    "CODEX_TRIO_PROXY_API_KEY": ("server", "proxy_api_key"),
}
# Any setting can also be set as CODEX_TRIO__<SECTION>__<KEY>, e.g. CODEX_TRIO__MODEL__DEFAULT=gpt-5.5.
GENERIC_ENV_PREFIX = "CODEX_TRIO__"

Path_ = tuple[str | int, ...]

# The schema's deepest value (model.custom_models[i].supported_reasoning_efforts[j]) sits five levels down. A
# deeper document is a mistake, and a very deep one would exhaust Python's recursion limit while merging.
MAX_NESTING = 8


class ConfigError(Exception):
    """An invalid configuration, with a message meant for the user (no traceback)."""


class OverriddenByEnvironment(ConfigError):
    """A change to a setting that an environment variable overrides: written, it would silently not apply."""

    def __init__(self, overridden: dict[str, str]) -> None:  # setting ("ollama.port") -> variable name
        self.overridden = overridden
        names = ", ".join(f"{setting} (set by the environment variable {variable})"
                          for setting, variable in overridden.items())
        super().__init__(f"cannot change {names}: the environment overrides the settings file. Unset the "
                         "variable and restart to manage the setting here, or change the variable instead.")


@dataclass
class LoadedConfig:
    settings: Settings
    base_file: Path | None
    local_file: Path
    provenance: dict[Path_, str] = field(default_factory=dict)  # setting path -> "file:line" or "env VAR"
    env_overrides: dict[Path_, str] = field(default_factory=dict)  # setting path -> environment variable

    def source_of(self, path: Path_) -> str:
        for end in range(len(path), 0, -1):
            if path[:end] in self.provenance:
                return self.provenance[path[:end]]
        return "built-in default"


def yaml_round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)  # keeps "  - item" lists as users write them
    yaml.preserve_quotes = True
    yaml.width = 120
    return yaml


def read_yaml(path: Path) -> CommentedMap:
    """Parse one YAML layer; an empty file is an empty mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return CommentedMap()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml_round_trip().load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML ({problem})") from None
    except RecursionError:  # ruamel's composer recurses once per level
        raise ConfigError(f"{path}: nested far deeper than any setting; check the structure") from None
    if data is None:
        return CommentedMap()
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}:1: the top level must be a mapping of sections (server:, model:, ...)")
    return data


def check_nesting(document: Any, where: str) -> None:
    """Refuse a settings document nested deeper than any setting (checked without recursion)."""
    pending: list[tuple[Any, Path_]] = [(document, ())]
    while pending:
        node, path = pending.pop()
        children = node.items() if isinstance(node, Mapping) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            if len(path) >= MAX_NESTING:
                shown = ".".join(str(p) for p in path[:4])
                raise ConfigError(f"{where}: {shown}...: settings are never nested more than {MAX_NESTING} levels "
                                  f"deep; check the structure (`codex-trio config defaults` shows every setting)")
            pending.append((child, path + (key,)))


def _record(provenance: dict[Path_, str], node: Any, path: Path_, file: Path) -> None:
    if not isinstance(node, CommentedMap):
        return
    for key in node:
        line = node.lc.key(key)[0] + 1 if node.lc.data and key in node.lc.data else None
        provenance[path + (key,)] = f"{file}:{line}" if line else str(file)
        _record(provenance, node[key], path + (key,), file)


def _merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    """Mappings merge key by key (so one alias in local.yaml keeps the shipped ones); anything else replaces."""
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _env_layer(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[Path_, str]]:
    """The environment's settings and, for each setting path, the variable that sets it."""
    layer: dict[str, Any] = {}
    variables: dict[Path_, str] = {}
    targets = [(name, path) for name, path in ENV_OVERRIDES.items() if name in environ]
    targets += [(name, tuple(name[len(GENERIC_ENV_PREFIX):].lower().split("__")))
                for name in environ if name.startswith(GENERIC_ENV_PREFIX)]
    for name, path in targets:
        value: Any = environ[name]
        if path[-1] in ("proxy_url", "proxy_api_key", "platform", "arch") and value == "":
            value = None
        node = layer
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
        variables[path] = name
    return layer, variables


def format_validation_error(exc: ValidationError, loaded_provenance: LoadedConfig) -> str:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling; `codex-trio config defaults` lists every setting)"
        problems.append(f"{key}: {message} — set in {loaded_provenance.source_of(loc)}")
    if len(problems) == 1:  # one line, so a command's error stays one line
        return f"invalid configuration: {problems[0]}"
    return "\n".join(["invalid configuration:", *(f"  {problem}" for problem in problems)])


def load(data_dir: Path, base_file: Path | None = None, environ: Mapping[str, str] | None = None,
         local_document: CommentedMap | None = None) -> LoadedConfig:
    """Build the effective settings. Raises ConfigError with a user-facing message when invalid.

    `local_document` replaces the contents of data/local.yaml, to validate an edit before it is written.
    """
    environ = os.environ if environ is None else environ
    if base_file is None and environ.get("CODEX_TRIO_CONFIG"):
        base_file = Path(environ["CODEX_TRIO_CONFIG"])
    if base_file is not None and not base_file.exists():
        raise ConfigError(f"config file {base_file} does not exist (from --config or CODEX_TRIO_CONFIG)")
    base = base_file or PACKAGED_DEFAULTS
    local_file = data_dir / "local.yaml"
    loaded = LoadedConfig(Settings(), base_file=base, local_file=local_file)
    merged: dict[str, Any] = {}
    for file in (base, local_file):
        layer = local_document if (file == local_file and local_document is not None) else read_yaml(file)
        check_nesting(layer, str(file))
        _record(loaded.provenance, layer, (), file)
        _merge(merged, layer)
    env, loaded.env_overrides = _env_layer(environ)
    loaded.provenance.update({path: f"environment variable {name}" for path, name in loaded.env_overrides.items()})
    _merge(merged, env)
    try:
        loaded.settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, loaded)) from None
    return loaded


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get("CODEX_TRIO_DATA_DIR"):
        return Path(environ["CODEX_TRIO_DATA_DIR"]).expanduser()
    xdg = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "codex-trio"
