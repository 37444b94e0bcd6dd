"""The live configuration: first-start set-up, validated edits written back round-trip, hot reload.

Components read `store.settings` when they need a value, so most changes apply on the next request;
components that hold resources (the Ollama listener) subscribe to change notifications.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import trio

from ..files import ensure_private_dir, tighten_to_owner, write_private_atomic
from .loader import ConfigError, LoadedConfig, OverriddenByEnvironment, check_nesting, load, read_yaml
from .schema import RESTART_REQUIRED, Settings
from .writer import _apply, render, update_local_file

log = logging.getLogger(__name__)

LOCAL_HEADER = """\
# codex-trio: your settings. Anything here overrides config/default.yaml (which lists every setting).
# The dashboard and the admin API write to this file; your comments are kept.
"""


@dataclass(frozen=True)
class Change:
    old: Settings
    new: Settings

    def sections(self) -> set[str]:
        return {name for name in Settings.model_fields if getattr(self.old, name) != getattr(self.new, name)}

    def needs_restart(self) -> list[str]:
        return [f"{s}.{k}" for s, k in sorted(RESTART_REQUIRED)
                if getattr(getattr(self.old, s), k) != getattr(getattr(self.new, s), k)]


Listener = Callable[[Change], Any]


def _leaf_paths(changes: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in changes.items():
        if isinstance(value, Mapping) and value:
            yield from _leaf_paths(value, prefix + (key,))
        else:
            yield prefix + (key,)


def _overlaps(a: tuple, b: tuple) -> bool:
    """One setting path lies within the other (a whole section, or one key of a mapping setting)."""
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def _value_at(settings: Any, path: tuple) -> Any:
    node: Any = settings
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else getattr(node, part, None)
    return node


class ConfigStore:
    def __init__(self, data_dir: Path, base_file: Path | None = None, environ: Mapping[str, str] | None = None):
        self.data_dir = data_dir
        self._base_file = base_file
        self._environ = environ
        self.loaded: LoadedConfig = load(data_dir, base_file, environ)
        self._listeners: list[Listener] = []
        self._local_stamp = self._stamp()
        # called with the changes of each `update` that was applied (store/shared_settings.py shares them)
        self.update_hooks: list[Callable[[Mapping[str, Any]], None]] = []

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    @property
    def local_file(self) -> Path:
        return self.loaded.local_file

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` after every change that applies; returns the function that stops the calls."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def ensure_first_start(self) -> str | None:
        """Create the data dir and local.yaml; generate the API key if no layer sets one. Returns a new key."""
        ensure_private_dir(self.data_dir)
        loose = tighten_to_owner(self.data_dir)
        if loose is not None:
            log.warning("data directory %s was mode %04o; changed it to 0700 (it holds your accounts' tokens and the "
                        "API key)", self.data_dir, loose)
        if not self.local_file.exists():
            write_private_atomic(self.local_file, LOCAL_HEADER)
        if self.settings.server.proxy_api_key:
            return None
        key = "ct-" + secrets.token_urlsafe(32)
        self.update({"server": {"proxy_api_key": key}})
        return key

    def update(self, changes: Mapping[str, Any]) -> Change:
        """Validate `changes` merged over local.yaml, then write the file and apply. Raises ConfigError, or
        OverriddenByEnvironment for a new value an environment variable would hide (nothing is written)."""
        check_nesting(changes, "the change")
        document = read_yaml(self.local_file)
        _apply(document, changes)
        candidate = load(self.data_dir, self._base_file, self._environ, local_document=document)
        if self.settings.server.proxy_api_key and not candidate.settings.server.proxy_api_key:
            # Every route needs the key: removing it would lock every client (and the admin API) out.
            raise ConfigError("server.proxy_api_key cannot be removed while the gateway runs; set a new key instead")
        self._refuse_overridden(changes, document, candidate)
        if not self.local_file.exists():
            write_private_atomic(self.local_file, LOCAL_HEADER + render(document))
        else:
            update_local_file(self.local_file, changes)
        self._local_stamp = self._stamp()
        change = self._swap(candidate)
        for hook in list(self.update_hooks):
            hook(changes)
        return change

    def _refuse_overridden(self, changes: Mapping[str, Any], document: Any, candidate: LoadedConfig) -> None:
        """A change is refused when it touches a setting an environment variable sets and asks for another
        value than the variable's (sending the current value back, as a form does, is fine)."""
        touched = list(_leaf_paths(changes))
        hit = {path: name for path, name in candidate.env_overrides.items()
               if any(_overlaps(path, leaf) for leaf in touched)}
        if not hit:
            return
        environ = os.environ if self._environ is None else self._environ
        without = {k: v for k, v in environ.items() if k not in set(hit.values())}
        wished = load(self.data_dir, self._base_file, without, local_document=document).settings
        differing = {".".join(map(str, path)): name for path, name in hit.items()
                     if _value_at(wished, path) != _value_at(candidate.settings, path)}
        if differing:
            raise OverriddenByEnvironment(differing)

    def overridden_in_file(self) -> dict[str, str]:
        """Settings local.yaml sets that an environment variable overrides (setting -> variable): the file's
        value does not apply, which `config check` and a hot reload say."""
        try:
            document = read_yaml(self.local_file)
        except ConfigError:
            return {}
        return {".".join(map(str, path)): name for path, name in self.loaded.env_overrides.items()
                if _value_at(document, path) is not None}

    def reload(self) -> Change | None:
        """Re-read the files. An invalid file is logged and the current settings stay in force."""
        self._local_stamp = self._stamp()
        try:
            candidate = load(self.data_dir, self._base_file, self._environ)
        except ConfigError as exc:
            log.error("%s\n(keeping the previous settings until the file is fixed)", exc)
            return None
        change = self._swap(candidate)
        for setting, variable in self.overridden_in_file().items():
            log.warning("%s in %s does not apply: the environment variable %s overrides it", setting,
                        self.local_file, variable)
        return change

    def _swap(self, candidate: LoadedConfig) -> Change:
        change = Change(self.loaded.settings, candidate.settings)
        self.loaded = candidate
        if change.sections():
            for section in change.needs_restart():
                log.warning("%s changed: it takes effect after a restart", section)
            for listener in list(self._listeners):
                listener(change)
        return change

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.local_file.stat()
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    async def watch(self, *, interval: float = 1.0, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Hot reload: poll local.yaml (cheap, portable; trio has no file-watch primitive)."""
        task_status.started()
        while True:
            await trio.sleep(interval)
            if self._stamp() != self._local_stamp:
                self.reload()
