"""Models, image analysis and the Responses WebSocket downstream, against the running gateway + sim."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import orjson
import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, RejectConnection, Request,
                            TextMessage)

from codex_trio.config.schema import DEFAULT_ALIASES


async def test_models_list_has_default_and_aliases(stack):
    ids = [model.id async for model in stack.client.models.list()]
    assert "gpt-5.5" in ids
    assert set(DEFAULT_ALIASES) <= set(ids)
    assert len(ids) == len(set(ids))
    one = await stack.client.models.retrieve("claude-sonnet-4-6")
    assert one.id == "claude-sonnet-4-6"


async def test_models_catalog_and_info(stack):
    catalog = (await stack.client.get("/models/catalog", cast_to=object))
    slugs = [entry["slug"] for entry in catalog["data"]]
    assert "gpt-5.5" in slugs
    assert catalog["aliases"]["claude-opus-4-7"] == "gpt-5.5-high"
    info = await stack.client.get("/models/claude-opus-4-7/info", cast_to=object)
    assert info["resolved_model"] == "gpt-5.5" and info["reasoning_effort"] == "high"
    assert info["info"]["slug"] == "gpt-5.5"


async def test_image_analysis(stack):
    uri = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    body = await stack.client.post("/codex/image-analysis", cast_to=object,
                                   body={"prompt": "What colour is it?", "image_url": uri})
    assert body["object"] == "image_analysis" and "What colour is it?" in body["text"]
    assert body["usage"]["total_tokens"] > 0
    sent = [t for t in stack.upstream_turns() if t.get("generate") is not False][-1]
    parts = sent["input"][-1]["content"]
    assert {"type": "input_image", "image_url": uri} in parts


async def test_image_analysis_takes_an_images_list_in_both_documented_shapes(stack):
    first, second = ("data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + tag).decode()
                     for tag in (b"one", b"two"))
    body = await stack.client.post("/codex/image-analysis", cast_to=object, body={
        "prompt": "Compare them.", "images": [{"image_url": {"url": first}}, {"image_url": second}]})
    assert body["object"] == "image_analysis"
    sent = [t for t in stack.upstream_turns() if t.get("generate") is not False][-1]
    images = [p["image_url"] for p in sent["input"][-1]["content"] if p["type"] == "input_image"]
    assert images == [first, second]


class WsClient:
    """A minimal WebSocket client (wsproto over a trio stream), enough to drive GET /v1/responses."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pending: list = []

    @classmethod
    async def connect(cls, url: str, path: str, key: str | None) -> "WsClient":
        parts = urlsplit(url)
        client = cls(await trio.open_tcp_stream(parts.hostname, parts.port))
        headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
        await client.stream.send_all(client.ws.send(Request(host=parts.netloc, target=path, extra_headers=headers)))
        return client

    async def event(self):
        while not self.pending:
            data = await self.stream.receive_some(65536)
            self.ws.receive_data(data or None)
            self.pending.extend(self.ws.events())
        return self.pending.pop(0)

    async def handshake(self):
        return await self.event()

    async def send(self, message: dict) -> None:
        await self.stream.send_all(self.ws.send(TextMessage(data=orjson.dumps(message).decode())))

    async def receive(self) -> dict:
        parts = []
        while True:
            event = await self.event()
            if isinstance(event, (TextMessage, BytesMessage)):
                parts.append(event.data if isinstance(event.data, str) else event.data.decode())
                if event.message_finished:
                    return orjson.loads("".join(parts))
            elif isinstance(event, CloseConnection):
                raise AssertionError(f"socket closed: {event.code} {event.reason}")

    async def turn(self, message: dict) -> list[dict]:
        await self.send(message)
        events = []
        while True:
            event = await self.receive()
            events.append(event)
            if event["type"] in ("response.completed", "response.failed", "response.incomplete", "error"):
                return events


async def test_responses_websocket_two_chained_turns(stack):
    client = await WsClient.connect(stack.url, "/v1/responses", stack.key)
    assert isinstance(await client.handshake(), AcceptConnection)
    first = await client.turn({"type": "response.create", "model": "gpt-5.5", "input": "Socket turn one"})
    assert first[0]["type"] == "response.created" and first[-1]["type"] == "response.completed"
    assert "Socket turn one" in "".join(e["delta"] for e in first if e["type"] == "response.output_text.delta")
    response_id = first[-1]["response"]["id"]
    second = await client.turn({"type": "response.create", "model": "gpt-5.5", "previous_response_id": response_id,
                                "input": [{"role": "user", "content": [{"type": "input_text",
                                                                        "text": "Socket turn two"}]}]})
    assert second[-1]["type"] == "response.completed"
    assert "Socket turn two" in "".join(e["delta"] for e in second if e["type"] == "response.output_text.delta")
    (socket,) = stack.sockets()
    frames = [m for m in socket.ws_messages if isinstance(m, dict) and m.get("generate") is not False]
    assert frames[-1]["previous_response_id"] == response_id
    assert len(frames[-1]["input"]) == 1
    # A bad frame is answered with an error frame and the socket stays usable.
    bad = await client.turn({"type": "response.create", "model": 5, "input": "x"})
    assert bad[-1]["type"] == "error" and bad[-1]["status_code"] == 400
    third = await client.turn({"type": "response.create", "model": "gpt-5.5", "input": "Still here"})
    assert third[-1]["type"] == "response.completed"
    await client.stream.aclose()


async def test_responses_websocket_upstream_failure_ends_the_turn(stack):
    stack.sim.script({"match": {"user_text": "break"},
                      "reply": {"text": "Half an answer", "fail": {"code": "server_error", "message": "broke"}}})
    stack.sim.script({"match": {"user_text": "cut"}, "reply": {"text": "Half an answer " * 8, "disconnect_after": 8}})
    client = await WsClient.connect(stack.url, "/v1/responses", stack.key)
    assert isinstance(await client.handshake(), AcceptConnection)
    for text in ("break", "cut"):
        events = await client.turn({"type": "response.create", "model": "gpt-5.5", "input": text})
        types = [e["type"] for e in events]
        assert "response.output_text.delta" in types
        assert types[-1] == "response.failed" and types.count("response.failed") == 1, types
        assert events[-1]["response"]["error"]["message"]
    ok = await client.turn({"type": "response.create", "model": "gpt-5.5", "input": "after the failures"})
    assert ok[-1]["type"] == "response.completed"
    await client.stream.aclose()


@pytest.mark.parametrize("key", [None, "wrong-key"])
async def test_responses_websocket_rejects_bad_key(stack, key):
    client = await WsClient.connect(stack.url, "/v1/responses", key)
    event = await client.handshake()
    # refused at the HTTP level like the HTTP routes (401), not accepted and then closed
    assert isinstance(event, RejectConnection) and event.status_code == 401
    await client.stream.aclose()
