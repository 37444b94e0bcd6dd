"""Learning new Codex releases from the public release feed (the npm package `@openai/codex`).

Only when `client.learn_versions` is on: the adopted version is written to local.yaml like any setting, so it
survives restarts and shows in `config check`. Pre-releases (`-alpha`, `-beta`, ...) are never adopted.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import orjson
import trio

from ..config.loader import ConfigError

if TYPE_CHECKING:
    from ..app import Gateway

log = logging.getLogger(__name__)

RELEASE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def release_tuple(version: str) -> tuple[int, int, int] | None:
    match = RELEASE.match(version.strip())
    return tuple(int(p) for p in match.groups()) if match else None  # type: ignore[return-value]


def feed_version(body: bytes) -> str | None:
    """The version in an npm registry `…/latest` document, if it is a plain release."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, str) and release_tuple(version) else None


def newer(candidate: str | None, current: str) -> bool:
    new, old = release_tuple(candidate or ""), release_tuple(current)
    return new is not None and (old is None or new > old)


async def check_release(gateway: "Gateway") -> str | None:
    """Read the feed once; adopt a newer release. Returns the adopted version, if any."""
    from ..native import Client, UpstreamError

    settings = gateway.config.settings
    client = Client(profile="openssl", proxy=settings.tls.proxy_url, ca_file=settings.tls.ca_file,
                    resolve=settings.tls.resolve)
    try:
        response = await client.request("GET", settings.client.release_feed_url, [("accept", "application/json")])
    except UpstreamError as exc:
        log.warning("release feed %s not reachable: %s", settings.client.release_feed_url, exc)
        return None
    version = feed_version(bytes(response.body)) if response.status == 200 else None
    if not newer(version, settings.client.version):
        return None
    try:
        gateway.config.update({"client": {"version": version}})
    except ConfigError as exc:  # e.g. the version is pinned by an environment variable
        log.warning("not adopting Codex version %s from the release feed: %s", version, exc)
        return None
    log.warning("adopted Codex version %s from the release feed (was %s)", version, settings.client.version)
    return version


async def run_release_watch(gateway: "Gateway", *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Background job: while `client.learn_versions` is on, check the feed every `release_check_hours`."""
    task_status.started()
    waiting: trio.CancelScope | None = None

    def on_change(change) -> None:  # learn_versions or the interval changed: look at them now, not hours later
        if waiting is not None and "client" in change.sections():
            waiting.cancel()

    stop_following = gateway.config.subscribe(on_change)
    try:
        while True:
            if gateway.config.settings.client.learn_versions:
                await check_release(gateway)
            with trio.CancelScope() as waiting:
                await trio.sleep(gateway.config.settings.client.release_check_hours * 3600)
            waiting = None
    finally:
        stop_following()
