"""Proxy health, checked through real local proxies against the simulator's `/cdn-cgi/trace` (which echoes the
caller's address): latency and exit IP on demand and on schedule; a proxy failing `failure_threshold` checks is
excluded, its auto accounts move to a healthy proxy (never to direct), accounts pinned to it pause with the
reason shown and their turns go to another account; a passing re-check re-admits it."""

from __future__ import annotations

import httpx
import pytest
import trio

from codex_trio.accounts.proxy_health import exit_ip_of
from codex_trio.sim import running_sim
from tests.conftest import api_key, gateway_on_sim

from ..e2e.dispatch_helpers import accounts_asked, chat
from .local_proxies import local_proxy


@pytest.mark.parametrize("body, ip", [
    (b"fl=1\nh=chatgpt.com\nip=203.0.113.7\nts=1.0\n", "203.0.113.7"),
    (b'{"ip": "2001:db8::1"}', "2001:db8::1"),
    (b"198.51.100.2\n", "198.51.100.2"),
    (b"<html>blocked</html>", None),
])
def test_the_exit_ip_is_read_from_each_echo_format(body, ip):
    assert exit_ip_of(body) == ip


async def test_the_simulator_echoes_the_callers_address(tmp_path):
    async with running_sim(accounts=1) as sim:
        async with httpx.AsyncClient(verify=sim.ssl_context()) as client:
            answer = await client.get(sim.urls.backend_base.removesuffix("/backend-api") + "/cdn-cgi/trace")
        assert answer.status_code == 200 and "ip=127.0.0.1\n" in answer.text


async def routes(client) -> dict[str, dict]:
    return {r["account_id"]: r for r in (await client.get("/admin/proxies/assignments")).json()["assignments"]}


async def test_a_dead_proxy_is_excluded_its_accounts_move_or_pause_and_it_returns_when_healthy(data_dir):
    async with running_sim(accounts=3) as sim, \
            local_proxy("http", "127.0.0.2", resolve=sim.urls.resolve) as first, \
            local_proxy("socks5", "127.0.0.3", resolve=sim.urls.resolve) as second:
        local = {"proxies": {"check_interval_seconds": 0, "failure_threshold": 2, "check_timeout_seconds": 5}}
        async with gateway_on_sim(data_dir, sim, local=local, clock=sim.clock.now, real_hosts=True) as (gateway, url):
            async with httpx.AsyncClient(base_url=url, timeout=60,
                                         headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
                ids = sorted(a.id for a in await gateway.services.store.list())
                a = (await client.post("/admin/proxies", json={"url": first.url, "label": "a"})).json()
                checked = (await client.post(f"/admin/proxies/{a['id']}/check")).json()
                assert (checked["health"], checked["exit_ip"]) == ("healthy", "127.0.0.2") and checked["latency_ms"] > 0
                # both auto accounts land on the only proxy; the third is pinned to it
                await client.post("/admin/proxies/assign", json={"account_ids": ids[:2], "proxy": "auto"})
                await client.post("/admin/proxies/assign", json={"account_id": ids[2], "proxy": a["id"]})
                b = (await client.post("/admin/proxies", json={"url": second.url, "label": "b"})).json()
                everything = (await client.post("/admin/proxies/check")).json()["proxies"]
                assert {p["id"]: p["exit_ip"] for p in everything} == {a["id"]: "127.0.0.2", b["id"]: "127.0.0.3"}
                assert (await client.get("/admin/proxies/check")).json()["progress"] == {"total": 2, "done": 2}
                assert {r["proxy_id"] for r in (await routes(client)).values()} == {a["id"]}  # stable: nobody moved

                for n in range(3):  # open upstream sockets through the first proxy, which the move must retire
                    response = await client.post("/v1/chat/completions", json=chat("hello", user="sticky"))
                    assert response.status_code == 200, response.text

                first.down = True
                once = (await client.post(f"/admin/proxies/{a['id']}/check")).json()
                assert (once["health"], once["failures"]) == ("healthy", 1) and once["last_error"]
                twice = (await client.post(f"/admin/proxies/{a['id']}/check")).json()
                assert (twice["health"], twice["usable"]) == ("unhealthy", False)
                now = await routes(client)
                assert [now[i]["proxy_id"] for i in ids[:2]] == [b["id"], b["id"]]  # moved, not direct
                assert now[ids[2]]["paused"] is True and a["id"] in now[ids[2]]["reason"]

                # the paused account's turns go to the others; nothing of it leaves through another route
                start = len(sim.requests)
                for n in range(4):  # the same conversation as before: its socket through the dead proxy is retired
                    response = await client.post("/v1/chat/completions", json=chat("hello", user="sticky"))
                    assert response.status_code == 200, response.text
                paused_chatgpt_id = (await gateway.services.store.get(ids[2])).account_id
                assert paused_chatgpt_id not in accounts_asked(sim)[-4:]
                assert all(r.connection.peer == "127.0.0.3" for r in sim.requests[start:]
                           if r.header("chatgpt-account-id"))

                first.down = False
                back = (await client.post(f"/admin/proxies/{a['id']}/check")).json()
                assert (back["health"], back["failures"], back["usable"]) == ("healthy", 0, True)
                now = await routes(client)
                assert now[ids[2]]["paused"] is False and now[ids[2]]["proxy_id"] == a["id"]
                assert [now[i]["proxy_id"] for i in ids[:2]] == [b["id"], b["id"]]  # auto stays put

                second.down = True  # the last healthy proxy of the auto accounts fails too: they pause
                for _ in range(2):
                    await client.post(f"/admin/proxies/{b['id']}/check")
                now = await routes(client)
                assert [now[i]["proxy_id"] for i in ids[:2]] == [a["id"], a["id"]]
                await client.patch(f"/admin/proxies/{a['id']}", json={"enabled": False})
                now = await routes(client)
                assert all(now[i]["paused"] and now[i]["proxy_url"] is None for i in ids)


async def test_scheduled_checks_find_the_exit_ip_without_being_asked(data_dir):
    async with running_sim(accounts=1) as sim, local_proxy("socks5", "127.0.0.4", resolve=sim.urls.resolve) as proxy:
        local = {"proxies": {"check_interval_seconds": 0.5}}
        async with gateway_on_sim(data_dir, sim, local=local, real_hosts=True) as (gateway, url):
            async with httpx.AsyncClient(base_url=url, timeout=60,
                                         headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
                added = (await client.post("/admin/proxies", json={"url": proxy.url})).json()
                with trio.fail_after(20):
                    while (now := (await client.get(f"/admin/proxies/{added['id']}")).json())["health"] == "unchecked":
                        await trio.sleep(0.2)
                assert (now["health"], now["exit_ip"]) == ("healthy", "127.0.0.4")


async def test_an_excluded_proxy_is_rechecked_with_backoff_and_readmitted_on_its_own(data_dir):
    async with running_sim(accounts=1) as sim, \
            local_proxy("http", "127.0.0.6", resolve=sim.urls.resolve) as flaky, \
            local_proxy("http", "127.0.0.7", resolve=sim.urls.resolve) as steady:
        local = {"proxies": {"check_interval_seconds": 0.5, "failure_threshold": 1, "check_timeout_seconds": 5}}
        async with gateway_on_sim(data_dir, sim, local=local, real_hosts=True) as (gateway, url):
            async with httpx.AsyncClient(base_url=url, timeout=60,
                                         headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
                account_id = (await gateway.services.store.list())[0].id
                bad = (await client.post("/admin/proxies", json={"url": flaky.url})).json()
                await client.post("/admin/proxies/assign", json={"account_id": account_id, "proxy": bad["id"]})
                flaky.down = True
                good = (await client.post("/admin/proxies", json={"url": steady.url})).json()
                await client.post("/admin/proxies/assign", json={"account_id": account_id, "proxy": "auto"})

                async def proxy(proxy_id: str) -> dict:
                    return (await client.get(f"/admin/proxies/{proxy_id}")).json()

                with trio.fail_after(20):
                    while (await proxy(bad["id"]))["health"] != "unhealthy":
                        await trio.sleep(0.1)
                assert (await routes(client))[account_id]["proxy_id"] == good["id"]
                excluded_at = (await proxy(bad["id"]))["checked_at"]
                await trio.sleep(3.0)
                # without backoff a 0.5 s schedule would have re-checked about 6 times; doubling delays (0.5, 1, 2)
                # allow at most 3
                later = await proxy(bad["id"])
                assert later["health"] == "unhealthy" and 1 <= later["failures"] - 1 <= 3, later
                assert later["next_check_at"] > later["checked_at"] > excluded_at

                flaky.down = False
                with trio.fail_after(20):
                    while (back := await proxy(bad["id"]))["health"] != "healthy":
                        await trio.sleep(0.1)
                assert (back["failures"], back["exit_ip"]) == (0, "127.0.0.6")
                assert (await routes(client))[account_id]["proxy_id"] == good["id"]  # auto stays where it is
