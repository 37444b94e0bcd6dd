"""Conversations stay on their account and their upstream WebSocket: the second turn is chained
(`previous_response_id` + only the new items); a lost chain is replayed once in full. Cooldowns end at the
backend's reset."""

from __future__ import annotations

from codex_trio.accounts.model import AccountStatus

from .dispatch_helpers import accounts_asked, chat, gateway_and_sim, pool_account


def turns_on(socket) -> list[dict]:
    return [m for m in socket.ws_messages if isinstance(m, dict) and m.get("generate") is not False]


def text_of(item: dict) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


async def test_chat_user_keeps_a_conversation_on_its_account(data_dir):
    # round robin spreads new conversations; affinity keeps each where it started
    async with gateway_and_sim(data_dir, accounts=3, local={"auth": {"rotation_strategy": "round_robin"}}) as (
            sim, gateway, client):
        for conversation in ("alice", "bob", "carol"):
            for n in range(3):
                response = await client.post("/v1/chat/completions", json=chat(f"turn {n}", user=conversation))
                assert response.status_code == 200, response.text
        asked = accounts_asked(sim)
        by_conversation = [asked[i:i + 3] for i in (0, 3, 6)]
        assert all(len(set(turns)) == 1 for turns in by_conversation)
        assert len({turns[0] for turns in by_conversation}) == 3  # and they were spread over the accounts


async def test_second_turn_is_chained_on_the_same_websocket_then_replayed_once_when_the_chain_is_lost(data_dir):
    async with gateway_and_sim(data_dir, accounts=2) as (sim, gateway, client):
        history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "first question"}]
        first = await client.post("/v1/chat/completions", json={"model": "gpt-5.5", "messages": history})
        assert first.status_code == 200
        history += [first.json()["choices"][0]["message"], {"role": "user", "content": "second question"}]
        second = await client.post("/v1/chat/completions", json={"model": "gpt-5.5", "messages": history})
        assert second.status_code == 200 and second.json()["choices"][0]["message"]["content"]

        sockets = sim.requests_to("/codex/responses", "GET")
        assert len(sockets) == 1  # one upgrade: the derived conversation reused its socket
        turn1, turn2 = turns_on(sockets[0])
        assert [text_of(i) for i in turn1["input"] if i.get("role") == "user"] == ["first question"]
        # chained on the first response, carrying only what is new since its output
        assert turn2["previous_response_id"].startswith("resp_")
        assert turn2["previous_response_id"] != turn1.get("previous_response_id")  # turn 1 chains on the prewarm
        assert [(i.get("role"), text_of(i)) for i in turn2["input"]] == [("user", "second question")]
        assert turn2["prompt_cache_key"] == turn1["prompt_cache_key"]

        # the backend loses the chain: the gateway resends the whole history once, on the same socket
        sim.forget_chains()
        history += [second.json()["choices"][0]["message"], {"role": "user", "content": "third question"}]
        third = await client.post("/v1/chat/completions", json={"model": "gpt-5.5", "messages": history})
        assert third.status_code == 200, third.text
        assert third.json()["choices"][0]["message"]["content"] == "Echo: third question"
        assert len(sim.requests_to("/codex/responses", "GET")) == 1
        chained, replayed = turns_on(sockets[0])[2:]
        assert chained["previous_response_id"] and [text_of(i) for i in chained["input"]] == ["third question"]
        assert "previous_response_id" not in replayed
        assert [text_of(i) for i in replayed["input"] if i.get("role") == "user"] == \
            ["first question", "second question", "third question"]


async def test_cooldowns_end_at_the_reset_and_the_account_serves_again(data_dir):
    async with gateway_and_sim(data_dir, accounts=2) as (sim, gateway, client):
        sim.script({"times": 2, "reply": {"rate_limit": {"resets_in_seconds": 900}}})
        response = await client.post("/v1/chat/completions", json=chat("anyone?"))
        assert response.status_code == 429
        limited = accounts_asked(sim)
        assert len(set(limited)) == 2
        assert all(pool_account(gateway, a).status is AccountStatus.RATE_LIMITED for a in limited)

        sim.clock.advance(890)  # both clocks: the sim's and the pool's (the gateway runs on the sim's)
        response = await client.post("/v1/chat/completions", json=chat("still?"))
        assert response.status_code == 429 and 1 <= int(response.headers["retry-after"]) <= 10
        assert accounts_asked(sim) == limited  # refused by the pool, the backend was not asked

        sim.clock.advance(11)
        response = await client.post("/v1/chat/completions", json=chat("now?"))
        assert response.status_code == 200, response.text
        served = accounts_asked(sim)[-1]
        assert pool_account(gateway, served).status is AccountStatus.ACTIVE


async def test_rate_limit_headers_reach_every_protocol(data_dir):
    async with gateway_and_sim(data_dir, accounts=1, local={"ollama": {"enabled": True, "port": 0}}) as (
            sim, gateway, client):
        ollama = gateway.ollama.listener.status.url
        ollama_chat = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
        calls = [
            ("/v1/chat/completions", chat("hi")),
            ("/v1/chat/completions", chat("hi", stream=True)),
            ("/v1/responses", {"model": "gpt-5.5", "input": "hi"}),
            ("/v1/responses", {"model": "gpt-5.5", "input": "hi", "stream": True}),
            ("/v1/messages", {"model": "claude-sonnet-4-6", "max_tokens": 50,
                              "messages": [{"role": "user", "content": "hi"}]}),
            ("/v1beta/models/gpt-5.5:generateContent", {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
            (f"{ollama}/api/chat", {**ollama_chat, "stream": False}),
            (f"{ollama}/api/chat", {**ollama_chat, "stream": True}),
        ]
        quota = sim.accounts[0].quota.headers(sim.clock.now())
        expected = {k for k, _ in quota if "primary" in k or "secondary" in k or "credits" in k}
        reported = dict(quota)["x-codex-primary-used-percent"]
        for path, body in calls:
            response = await client.post(path, json=body)
            assert response.status_code == 200, (path, response.text)
            got = {k for k in response.headers if k.startswith("x-codex")}
            assert expected <= got, (path, expected - got)
            assert response.headers["x-codex-primary-window-minutes"] == "300"
            assert "x-codex-turn-state" not in response.headers
            # the numbers are the backend's at the time of the turn (they grow as the account is used)
            assert response.headers["x-codex-primary-used-percent"] == reported, path
            reported = dict(sim.accounts[0].quota.headers(sim.clock.now()))["x-codex-primary-used-percent"]
