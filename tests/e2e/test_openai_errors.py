"""Errors on the OpenAI surfaces end to end: client mistakes, gateway auth, and every kind of upstream failure,
each in the OpenAI error envelope with the right status; streams always end with their terminal frame."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"


def chat_body(text: str = "go", **extra) -> dict:
    return {"model": "gpt-5.5", "messages": [{"role": "user", "content": text}], **extra}


def responses_body(text: str = "go", **extra) -> dict:
    return {"model": "gpt-5.5", "input": text, **extra}


def raw_client(stack, key: str | None = "use-the-gateway-key") -> httpx.AsyncClient:
    headers = {} if key is None else {"authorization": f"Bearer {stack.key if key == 'use-the-gateway-key' else key}"}
    return httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30)


def envelope(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"], error
    return error


def sse_data(text: str) -> list[str]:
    return [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]


def sse_events(text: str) -> list[dict]:
    return [orjson.loads(data) for data in sse_data(text) if data != "[DONE]"]


# ---- client mistakes ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [CHAT, RESPONSES])
async def test_malformed_json_is_400(stack, path):
    async with raw_client(stack) as client:
        response = await client.post(path, content=b'{"model": "gpt-5.5", "messages": [',
                                     headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert envelope(response)["type"] == "invalid_request_error"
    assert not stack.upstream_turns()


@pytest.mark.parametrize("path,body,param", [
    (CHAT, {"model": "gpt-5.5", "messages": "hello"}, "messages"),
    (CHAT, {"model": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
    (CHAT, {"model": "gpt-5.5", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
    (RESPONSES, {"model": "gpt-5.5", "input": 42}, "input"),
    (RESPONSES, {"model": "gpt-5.5", "input": "x", "tools": "none"}, "tools"),
])
async def test_wrong_types_are_400_with_param(stack, path, body, param):
    async with raw_client(stack) as client:
        response = await client.post(path, json=body)
    assert response.status_code == 400, response.text
    error = envelope(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param or param in error["message"], error


async def test_unknown_model_is_404_model_not_found(stack):
    with pytest.raises(openai.NotFoundError) as caught:
        await stack.client.chat.completions.create(model="gpt-nonexistent-9",
                                                   messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 404
    assert caught.value.body["code"] == "model_not_found" and caught.value.body["param"] == "model"
    assert not stack.upstream_turns()


async def test_missing_key_is_401(stack):
    async with raw_client(stack, key=None) as raw:
        response = await raw.post(CHAT, json=chat_body())
    assert response.status_code == 401
    error = envelope(response)
    assert error["code"] == "invalid_api_key" and error["type"] == "authentication_error"


async def test_wrong_key_is_401(stack):
    client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        await client.chat.completions.create(**chat_body())
    assert caught.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        await client.models.list()
    await client.close()
    assert not stack.upstream_turns()


# ---- upstream failures before the first byte: an HTTP error, stream or not --------------------------------------

UPSTREAM_CASES = [
    ({"http_status": 500}, 500, "server_error"),
    ({"http_status": 503}, 503, "server_error"),
    ({"rate_limit": {"resets_in_seconds": 600}}, 429, "rate_limit_error"),
    ({"ban": True}, 401, "authentication_error"),
    ({"fail": {"code": "server_error", "message": "the model broke"}}, 500, "server_error"),
    ({"error_event": {"code": "server_error", "message": "an error event"}}, 500, "server_error"),
]


@pytest.mark.parametrize("reply,status,kind", UPSTREAM_CASES)
@pytest.mark.parametrize("path,body", [(CHAT, chat_body()), (RESPONSES, responses_body())])
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_failure_before_output(stack, reply, status, kind, path, body, stream):
    stack.sim.script({"match": {"user_text": "go"}, "reply": reply})
    async with raw_client(stack) as client:
        response = await client.post(path, json={**body, "stream": stream})
    assert response.status_code == status, response.text
    error = envelope(response)
    assert error["type"] == kind
    if "fail" in reply or "error_event" in reply:  # the upstream's own words reach the client first
        assert error["message"].startswith(reply.get("fail", reply.get("error_event"))["message"])
    if status == 429:
        assert error["code"] == "usage_limit_reached"
        assert int(response.headers["retry-after"]) > 0
    if reply.get("ban"):
        assert error["code"] == "account_deactivated"


async def test_upstream_401_token_revoked_beyond_refresh(stack):
    account = stack.sim.accounts[0]
    issuer = stack.sim.state.issuer
    stack.sim.clock.advance(account.tokens.expires_at - stack.sim.clock.now() + 60)  # access token expired
    issuer.revoke(account.refresh_token)  # ...and the refresh token is dead
    with pytest.raises(openai.AuthenticationError) as caught:
        await stack.client.chat.completions.create(**chat_body())
    assert caught.value.status_code == 401
    assert caught.value.body["type"] == "authentication_error"


# ---- failures after the stream started: the stream ends with its terminal frame --------------------------------

MID_STREAM = [
    {"text": "Partial answer that stops", "fail": {"code": "server_error", "message": "the model broke"}},
    {"text": "Partial answer that stops", "error_event": {"code": "server_error", "message": "an error event"}},
    {"text": "Partial answer that stops before its end, " * 4, "disconnect_after": 8},
]


@pytest.mark.parametrize("reply", MID_STREAM)
async def test_chat_stream_mid_failure_ends_with_error_then_done(stack, reply):
    stack.sim.script({"match": {"user_text": "go"}, "reply": reply})
    async with raw_client(stack) as client:
        response = await client.post(CHAT, json=chat_body(stream=True))
    assert response.status_code == 200
    data = sse_data(response.text)
    assert data[-1] == "[DONE]"
    events = [orjson.loads(d) for d in data[:-1]]
    assert any(e.get("choices") and e["choices"][0]["delta"].get("content") for e in events), "text came first"
    error = events[-1]["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "server_error"
    # The SDK surfaces it as an error, not as a silently short answer.
    stack.sim.script({"match": {"user_text": "again"}, "reply": reply})
    with pytest.raises(openai.APIError):
        stream = await stack.client.chat.completions.create(**chat_body("again"), stream=True)
        async for _ in stream:
            pass


@pytest.mark.parametrize("reply", MID_STREAM)
async def test_responses_stream_mid_failure_ends_with_response_failed(stack, reply):
    stack.sim.script({"match": {"user_text": "go"}, "reply": reply})
    async with raw_client(stack) as client:
        response = await client.post(RESPONSES, json=responses_body(stream=True))
    assert response.status_code == 200
    events = sse_events(response.text)
    types = [e["type"] for e in events]
    assert "response.output_text.delta" in types
    assert types[-1] == "response.failed"
    assert events[-1]["response"]["status"] == "failed" and events[-1]["response"]["error"]["message"]
    assert types.count("response.failed") == 1 and "response.completed" not in types


@pytest.mark.parametrize("path,body", [(CHAT, chat_body()), (RESPONSES, responses_body())])
async def test_collected_mid_failure_is_an_error_not_a_short_answer(stack, path, body):
    stack.sim.script({"match": {"user_text": "go"}, "reply": MID_STREAM[2]})
    async with raw_client(stack) as client:
        response = await client.post(path, json=body)
    assert response.status_code == 502
    assert envelope(response)["type"] == "server_error"


# ---- failover ------------------------------------------------------------------------------------------------------

def accounts_used(sim) -> list[str]:
    return [r.header("chatgpt-account-id") for r in sim.requests_to("/codex/responses")]


@pytest.mark.parametrize("stream", [False, True])
async def test_429_on_first_account_fails_over_before_first_byte(stack2, stream):
    sim = stack2.sim
    warm = await stack2.client.chat.completions.create(**chat_body("Warm up"))
    assert "Warm up" in warm.choices[0].message.content
    (first,) = set(accounts_used(sim))
    sim.script({"match": {"account_id": first}, "reply": {"rate_limit": {"resets_in_seconds": 900}}})
    if stream:
        chunks = await stack2.client.chat.completions.create(**chat_body("Fail me over"), stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    else:
        text = (await stack2.client.chat.completions.create(**chat_body("Fail me over"))).choices[0].message.content
    assert "Fail me over" in text
    used = accounts_used(sim)
    (second,) = set(used) - {first}
    assert {a.account_id for a in sim.accounts} == {first, second}
    # The second account took the turn after the first answered 429.
    assert used[-1] == second


async def test_429_failover_on_responses_stream(stack2):
    sim = stack2.sim
    await stack2.client.responses.create(model="gpt-5.5", input="Warm up")
    (first,) = set(accounts_used(sim))
    sim.script({"match": {"account_id": first}, "reply": {"rate_limit": {"resets_in_seconds": 900}}})
    stream = await stack2.client.responses.create(model="gpt-5.5", input="Fail me over", stream=True)
    events = [event async for event in stream]
    assert events[-1].type == "response.completed"
    assert "Fail me over" in "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert accounts_used(sim)[-1] != first
