"""Cloudflare-only cookie jar (spec/upstream.md §7.6)."""

from __future__ import annotations

import json

from codex_trio.cookies import CookieJar

URL = "https://chatgpt.com/backend-api/codex/responses"


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_only_cloudflare_cookies_for_backend_hosts_are_kept():
    jar = CookieJar(Clock())
    changed = jar.capture(
        URL,
        [
            ("set-cookie", "__cf_bm=abc; path=/; expires=Sat, 22-Nov-36 04:43:00 GMT; domain=.chatgpt.com; HttpOnly; Secure"),
            ("Set-Cookie", "_cfuvid=u1; path=/; domain=.chatgpt.com; HttpOnly; Secure; SameSite=None"),
            ("set-cookie", "cf_chl_rc_m=1; Path=/"),
            ("set-cookie", "__Secure-next-auth.session-token=secret; Path=/; Secure"),
            ("set-cookie", "oai-did=device; Path=/"),
            ("set-cookie", "__cflb=x; Domain=openai.com; Path=/"),  # outside the request's domain
            ("content-type", "text/event-stream"),
        ],
    )
    assert changed == 3
    assert jar.header_for("https://chatgpt.com/backend-api/wham/usage") == "__cf_bm=abc; _cfuvid=u1; cf_chl_rc_m=1"
    # Domain cookies reach subdomains; the host-only one does not.
    assert jar.header_for("https://ab.chatgpt.com/x") == "__cf_bm=abc; _cfuvid=u1"
    assert jar.header_for("https://auth.openai.com/oauth/token") is None
    assert jar.header_for("wss://chatgpt.com/backend-api/codex/responses") is None
    assert jar.capture("http://chatgpt.com/", [("set-cookie", "cf_clearance=z")]) == 0
    assert jar.capture("https://evilchatgpt.com/", [("set-cookie", "cf_clearance=z")]) == 0


def test_expiry_max_age_beats_expires_and_deletion():
    clock = Clock()
    jar = CookieJar(clock)
    jar.capture(URL, [("set-cookie", "cf_clearance=c; Max-Age=60; Expires=Thu, 01 Jan 2099 00:00:00 GMT; Path=/")])
    jar.capture(URL, [("set-cookie", "__cf_bm=b; Expires=Thu, 01 Jan 2099 00:00:00 GMT; Path=/")])
    assert jar.header_for(URL) == "cf_clearance=c; __cf_bm=b"
    clock.t += 61
    assert jar.header_for(URL) == "__cf_bm=b"
    jar.capture(URL, [("set-cookie", "__cf_bm=gone; Max-Age=0; Path=/")])
    assert jar.header_for(URL) is None
    jar.capture(URL, [("set-cookie", "__cf_bm=old; Expires=Thu, 01 Jan 1970 00:00:10 GMT; Path=/")])
    assert len(jar) == 0


def test_export_round_trip_drops_expired():
    clock = Clock()
    jar = CookieJar(clock)
    jar.capture(URL, [("set-cookie", "cf_clearance=keep; Max-Age=3600; Path=/; Domain=chatgpt.com")])
    jar.capture(URL, [("set-cookie", "__cf_bm=short; Max-Age=10; Path=/")])
    exported = json.loads(json.dumps(jar.export()))
    assert {entry["name"] for entry in exported} == {"cf_clearance", "__cf_bm"}
    clock.t += 20
    restored = CookieJar.from_export(exported, now=clock)
    assert restored.header_for("https://sub.chatgpt.com/") == "cf_clearance=keep"
    assert [entry["name"] for entry in restored.export()] == ["cf_clearance"]


def test_path_scoping_and_replacement():
    jar = CookieJar(Clock())
    jar.capture("https://chatgpt.com/backend-api/codex/responses", [("set-cookie", "cf_chl_a=1")])
    jar.capture(URL, [("set-cookie", "cf_chl_b=2; Path=/")])
    assert jar.header_for("https://chatgpt.com/backend-api/codex/models") == "cf_chl_a=1; cf_chl_b=2"
    assert jar.header_for("https://chatgpt.com/other") == "cf_chl_b=2"
    jar.capture(URL, [("set-cookie", "cf_chl_b=3; Path=/")])
    assert jar.header_for("https://chatgpt.com/other") == "cf_chl_b=3"
