"""Health of the egress proxies: a check is one HTTPS GET of an IP-echo URL through the proxy (connect, the
proxy handshake, TLS with the real client's hello, an answer), timed, with the exit IP read from the answer.

A proxy that fails `failure_threshold` checks in a row is excluded (`Health.UNHEALTHY`): the pool stops
routing through it, its auto accounts are moved by the caller (`ProxyService.rebalance`), and it is re-checked
with doubling delays until a check passes, which re-admits it. The scheduled job (`run`, started with
`nursery.start`) checks the healthy ones every `check_interval_seconds` and the excluded ones on their backoff.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import Awaitable, Callable

import orjson
import trio

from ..native import Client, UpstreamError
from .proxies import Health, Proxy, ProxyPool

log = logging.getLogger(__name__)

MAX_CHECKS_AT_ONCE = 8
FIRST_BACKOFF_SECONDS = 30.0
# `connection: close`: the check's connection is never reused, so the next check connects through the proxy again
CHECK_HEADERS = [("accept", "*/*"), ("connection", "close")]


def exit_ip_of(body: bytes) -> str | None:
    """The caller's address in an IP-echo answer: Cloudflare trace lines (`ip=…`), JSON `{"ip": …}`, or the
    bare address. None when the answer holds no address."""
    text = body.decode("utf-8", "replace").strip()
    candidates = [line[3:] for line in text.splitlines() if line.startswith("ip=")]
    if text.startswith("{"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict) and isinstance(value.get("ip"), str):
            candidates.append(value["ip"])
    candidates.append(text)
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate.strip()))
        except ValueError:
            continue
    return None


class ProxyChecker:
    def __init__(self, pool: ProxyPool, client_for: Callable[[str], Client], *, check_url: Callable[[], str],
                 failure_threshold: Callable[[], int], interval: Callable[[], float],
                 max_backoff: Callable[[], float], timeout: Callable[[], float],
                 on_change: Callable[[], Awaitable[None]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._pool = pool
        self._client_for = client_for
        self._check_url = check_url
        self._failure_threshold = failure_threshold
        self._interval = interval
        self._max_backoff = max_backoff
        self._timeout = timeout
        self._on_change = on_change  # after exclusions / re-admissions: move the accounts (rebalance)
        self._clock = clock
        self._limiter = trio.CapacityLimiter(MAX_CHECKS_AT_ONCE)
        self._wake = trio.Event()
        self.progress: dict[str, int] = {"total": 0, "done": 0}  # of the last check of several proxies

    async def _probe(self, proxy: Proxy) -> tuple[float, str | None]:
        """(latency in ms, exit IP) or raises with why the proxy failed."""
        timeout = self._timeout()
        started = time.monotonic()
        with trio.fail_after(timeout + 1.0):  # the native timeout first; this bounds a stuck connect too
            response = await self._client_for(proxy.url).request("GET", self._check_url(), CHECK_HEADERS,
                                                                 timeout=timeout)
        latency = (time.monotonic() - started) * 1000.0
        if response.status >= 400:
            raise UpstreamError(f"the check URL answered HTTP {response.status} through the proxy")
        return latency, exit_ip_of(bytes(response.body))

    async def check(self, proxy: Proxy) -> Proxy:
        """Check one proxy now and record the outcome (stored)."""
        async with self._limiter:
            try:
                latency, exit_ip = await self._probe(proxy)
            except (UpstreamError, trio.TooSlowError) as exc:
                why = str(exc) or "no answer in time"
                if isinstance(exc, trio.TooSlowError):
                    why = f"no answer within {self._timeout():.0f} s"
                changed = self._failed(proxy, why)
            else:
                changed = proxy.health != Health.HEALTHY
                proxy.health, proxy.failures, proxy.last_error, proxy.next_check_at = Health.HEALTHY, 0, None, None
                proxy.latency_ms, proxy.exit_ip = round(latency, 1), exit_ip
            proxy.checked_at = self._clock()
        if proxy.id in self._pool.proxies:  # removed while it was being checked: nothing to store
            await self._pool.save(proxy)
        if changed and self._on_change is not None:
            await self._on_change()
        return proxy

    def _failed(self, proxy: Proxy, why: str) -> bool:
        proxy.failures += 1
        proxy.last_error = why
        threshold = self._failure_threshold()
        excluded = proxy.failures >= threshold
        if excluded:
            base = self._interval() or FIRST_BACKOFF_SECONDS
            delay = min(base * 2 ** (proxy.failures - threshold), self._max_backoff())
            proxy.next_check_at = self._clock() + delay
        newly = excluded and proxy.health != Health.UNHEALTHY
        if newly:
            log.warning("proxy %s excluded after %d failed checks: %s", proxy.id, proxy.failures, why)
            proxy.health = Health.UNHEALTHY
        return newly

    async def check_all(self, proxies: list[Proxy]) -> list[Proxy]:
        self.progress = {"total": len(proxies), "done": 0}

        async def one(proxy: Proxy) -> None:
            await self.check(proxy)
            self.progress["done"] += 1

        async with trio.open_nursery() as nursery:
            for proxy in proxies:
                nursery.start_soon(one, proxy)
        return proxies

    def due(self) -> list[Proxy]:
        """The proxies a scheduled round checks now: enabled ones whose time has come."""
        now, interval = self._clock(), self._interval()
        return [p for p in self._pool.proxies.values() if p.enabled and (
            (p.next_check_at or 0) <= now if p.health == Health.UNHEALTHY else
            p.checked_at is None or p.checked_at + interval <= now)]

    def reschedule(self) -> None:
        self._wake.set()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Background job: scheduled checks (every `check_interval_seconds`; 0 = only on demand)."""
        task_status.started()
        while True:
            interval = self._interval()
            if interval > 0:
                due = self.due()
                if due:
                    await self.check_all(due)
            wait = interval if interval > 0 else 3600.0
            excluded = [p.next_check_at for p in self._pool.proxies.values()
                        if p.enabled and p.health == Health.UNHEALTHY and p.next_check_at]
            if excluded and interval > 0:
                wait = max(1.0, min(wait, min(excluded) - self._clock()))
            with trio.move_on_after(wait):
                await self._wake.wait()
            self._wake = trio.Event()
