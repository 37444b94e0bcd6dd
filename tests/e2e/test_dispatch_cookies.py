"""Cloudflare cookies per account, end to end: the gateway talks to `https://chatgpt.com/backend-api` through an
egress proxy that leads to the simulator (its certificate covers chatgpt.com), so the account's cookie jar sees
the real backend host. A `set-cookie` of the backend is kept for that account and sent on its next HTTPS
requests; the WebSocket never carries cookies (codex-rs's store skips wss); another account never gets them."""

from __future__ import annotations

import httpx
import trio

from codex_trio.sim import running_sim
from tests.conftest import api_key, gateway_on_sim

from .dispatch_helpers import accounts_asked, chat, pool_account


async def connect_proxy(target_port: int, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """A minimal HTTP CONNECT proxy that tunnels every CONNECT to 127.0.0.1:`target_port`."""

    async def tunnel(client: trio.SocketStream) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await client.receive_some(4096)
            if not chunk:
                return
            head += chunk
        assert head.startswith(b"CONNECT ")
        upstream = await trio.open_tcp_stream("127.0.0.1", target_port)
        await client.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        rest = head.split(b"\r\n\r\n", 1)[1]
        if rest:
            await upstream.send_all(rest)

        async def pump(source: trio.SocketStream, sink: trio.SocketStream) -> None:
            try:
                while data := await source.receive_some(65536):
                    await sink.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            finally:
                await sink.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump, client, upstream)
            nursery.start_soon(pump, upstream, client)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(tunnel, listeners)


def cookie_of(record) -> str | None:
    return record.header("cookie")


async def test_backend_cookies_are_kept_per_account_and_replayed_on_its_next_requests(data_dir, nursery):
    async with running_sim(accounts=2, websocket=False) as sim:
        proxy_port = await nursery.start(connect_proxy, sim.urls.port)
        local = {"api": {"base_url": "https://chatgpt.com/backend-api", "auth_base_url": "https://auth.openai.com"},
                 "tls": {"ca_file": sim.ca_file, "proxy_url": f"http://127.0.0.1:{proxy_port}"}}
        async with gateway_on_sim(data_dir, sim, local=local, clock=sim.clock.now) as (gateway, url):
            async with httpx.AsyncClient(base_url=url, timeout=30,
                                         headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
                sim.script({"times": 1, "reply": {"set_cookies": True}})
                response = await client.post("/v1/chat/completions", json=chat("first", user="jar"))
                assert response.status_code == 200, response.text
                first = sim.requests_to("/codex/responses", "POST")[-1]
                assert first.header("host") == "chatgpt.com" and cookie_of(first) is None
                chosen = accounts_asked(sim)[-1]
                stored = pool_account(gateway, chosen).cookies
                assert sorted(c["name"] for c in stored) == ["__cf_bm", "cf_clearance"]
                record = await gateway.services.store.get(pool_account(gateway, chosen).id)
                assert sorted(c["name"] for c in record.cookies) == ["__cf_bm", "cf_clearance"]  # persisted

                response = await client.post("/v1/chat/completions", json=chat("second", user="jar"))
                assert response.status_code == 200
                second = sim.requests_to("/codex/responses", "POST")[-1]
                assert second.header("chatgpt-account-id") == chosen
                sent = dict(part.split("=", 1) for part in cookie_of(second).split("; "))
                assert sent == {c["name"]: c["value"] for c in stored}
                # where reqwest puts it: its cookie layer runs inside the decompression layer (0.171.0's
                # accept-encoding), and hyper adds host and content-length after both
                tail = ["cookie", "host", "content-length"]
                if gateway.services.identity.accept_encoding:
                    tail.insert(0, "accept-encoding")
                assert second.header_names()[-len(tail):] == tail
                # the WebSocket attempt (refused with 426) carried no cookie
                assert all(r.header("cookie") is None for r in sim.requests_to("/codex/responses", "GET"))

                # another account never gets this account's cookies
                other = next(a for a in gateway.services.pool.accounts() if a.account_id != chosen)
                sim.script({"match": {"account_id": chosen}, "reply": {"rate_limit": {"resets_in_seconds": 60}}})
                response = await client.post("/v1/chat/completions", json=chat("third", user="jar"))
                assert response.status_code == 200
                third = sim.requests_to("/codex/responses", "POST")[-1]
                assert third.header("chatgpt-account-id") == other.account_id and cookie_of(third) is None


async def test_cookies_of_a_host_that_is_not_the_backend_are_not_kept(data_dir):
    # the plain sim setup: the backend is https://127.0.0.1:PORT, whose cookies the jar refuses
    async with running_sim(accounts=1, websocket=False) as sim:
        async with gateway_on_sim(data_dir, sim, clock=sim.clock.now) as (gateway, url):
            async with httpx.AsyncClient(base_url=url, timeout=30,
                                         headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
                sim.script({"reply": {"set_cookies": True}})
                for text in ("one", "two"):
                    response = await client.post("/v1/chat/completions", json=chat(text, user="jar"))
                    assert response.status_code == 200
                assert gateway.services.pool.accounts()[0].cookies == []
                assert all(r.header("cookie") is None for r in sim.requests_to("/codex/responses", "POST"))
