"""Learning new Codex releases from the public release feed (the npm package `@openai/codex`).

Only when `client.learn_versions` is on. A newer release is adopted only when this gateway ships a verified
profile for it (`config/fingerprint.yaml` → `releases`): its version string then comes with its own wire
(headers, accept-encoding, ...). A release without one is reported — "release X seen, no verified profile"
in the log, in `codex-trio doctor` and at `GET /admin/release-watch` — and the gateway keeps presenting the
newest verified release it may (never a new version string on an old release's wire). The adopted version
is written to local.yaml like any setting, so it survives restarts. Pre-releases are never considered.

The outcome of the last check is kept in `<data dir>/release-watch.json`, where `doctor` (another process)
reads it.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import trio

from ..config.loader import ConfigError
from .identity import FingerprintConfig, load_fingerprint, presented_release, verified_releases

if TYPE_CHECKING:
    from ..server.host import GatewayHost

log = logging.getLogger(__name__)

RELEASE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
STATUS_FILE = "release-watch.json"


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


@dataclass(frozen=True, slots=True)
class Decision:
    """What one look at the feed means (pure): the release to adopt, if any, and the newest release seen
    that this gateway has no verified profile for, if any."""

    adopt: str | None
    unverified: str | None


def decide(latest: str | None, current: str, fingerprint: FingerprintConfig) -> Decision:
    """`latest` is the feed's release, `current` the configured `client.version`. The target is the newest
    verified release not newer than `latest`; it is adopted when it is newer than what is presented now."""
    if latest is None:
        return Decision(None, None)
    presented, _ = presented_release(fingerprint, current)
    reachable = [v for v in verified_releases(fingerprint) if not newer(v, latest)]
    target = reachable[-1] if reachable else None
    adopt = target if target is not None and target != current and not newer(presented, target) else None
    unverified = latest if latest not in fingerprint.releases and newer(latest, presented) else None
    return Decision(adopt, unverified)


@dataclass(slots=True)
class WatchStatus:
    """The outcome of the last feed check (what doctor and the admin API show)."""

    checked_at: float | None = None
    feed_url: str | None = None
    latest: str | None = None  # the feed's release
    presented: str | None = None  # the release the gateway presents after the check
    adopted: str | None = None  # set when this check adopted a release
    unverified: str | None = None  # the feed's release when no verified profile exists for it
    error: str | None = None  # the feed could not be read

    def message(self) -> str | None:
        if self.unverified:
            return (f"release {self.unverified} seen, no verified profile: presenting Codex {self.presented} "
                    "(a codex-trio update with a captured profile of that release will adopt it)")
        return None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "message": self.message()}


def read_status(data_dir: Path) -> WatchStatus | None:
    try:
        data = json.loads((Path(data_dir) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    known = set(WatchStatus.__slots__)  # type: ignore[attr-defined]
    return WatchStatus(**{k: v for k, v in data.items() if k in known}) if isinstance(data, dict) else None


def write_status(data_dir: Path, status: WatchStatus) -> None:
    path = Path(data_dir) / STATUS_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(status), indent=1), encoding="utf-8")
    temporary.chmod(0o600)
    temporary.replace(path)


async def check_release(gateway: "GatewayHost") -> str | None:
    """Read the feed once; adopt a newer verified release, report an unverified one. Returns the adopted
    version, if any."""
    from ..native import Client, UpstreamError

    settings = gateway.config.settings
    fingerprint = load_fingerprint()
    status = WatchStatus(checked_at=time.time(), feed_url=settings.client.release_feed_url)
    client = Client(profile="openssl", proxy=settings.tls.proxy_url, ca_file=settings.tls.ca_file,
                    resolve=settings.tls.resolve)
    try:
        response = await client.request("GET", settings.client.release_feed_url, [("accept", "application/json")])
    except UpstreamError as exc:
        log.warning("release feed %s not reachable: %s", settings.client.release_feed_url, exc)
        response = None
        status.error = str(exc)
    if response is not None:
        status.latest = feed_version(bytes(response.body)) if response.status == 200 else None
        if status.latest is None:
            status.error = f"the feed answered {response.status} without a plain release version"
    decision = decide(status.latest, settings.client.version, fingerprint)
    previous = read_status(gateway.config.data_dir)
    if decision.adopt is not None:
        try:
            gateway.config.update({"client": {"version": decision.adopt}})
        except ConfigError as exc:  # e.g. the version is pinned by an environment variable
            log.warning("not adopting Codex %s from the release feed: %s", decision.adopt, exc)
        else:
            log.warning("adopted Codex %s from the release feed (was %s)", decision.adopt, settings.client.version)
            status.adopted = decision.adopt
    status.presented = presented_release(fingerprint, gateway.config.settings.client.version)[0]
    status.unverified = decision.unverified
    if status.unverified and (previous is None or previous.unverified != status.unverified):
        log.warning("%s", status.message())
    write_status(gateway.config.data_dir, status)
    return decision.adopt


def release_watch_report(data_dir: Path, configured: str, presented: str) -> dict[str, Any]:
    """`GET /admin/release-watch`: what is presented, what could be, and the last check's outcome."""
    fingerprint = load_fingerprint()
    status = read_status(data_dir)
    return {"configured_version": configured, "presented_version": presented,
            "verified_releases": verified_releases(fingerprint),
            "version_problem": presented_release(fingerprint, configured)[1],
            "last_check": status.to_json() if status is not None else None}


def doctor_check(data_dir: Path, current: str) -> list[tuple[bool, str, str]]:
    """`doctor`: the presented release, and what the last release check saw."""
    fingerprint = load_fingerprint()
    presented, problem = presented_release(fingerprint, current)
    checks = [(problem is None, problem or f"presenting Codex {presented} (verified releases: "
               f"{', '.join(verified_releases(fingerprint))})",
               f"set client.version to one of {', '.join(verified_releases(fingerprint))}")]
    status = read_status(data_dir)
    if status is not None and status.unverified:
        checks.append((False, status.message() or "", "update codex-trio when a release with a verified profile "
                       f"of Codex {status.unverified} is out; until then the gateway stays on Codex {presented}"))
    return checks


async def run_release_watch(gateway: "GatewayHost", *, task_status=trio.TASK_STATUS_IGNORED) -> None:
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
