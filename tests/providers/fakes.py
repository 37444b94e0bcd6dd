"""Small local fake providers for the tests: OpenAI-compatible (Chat Completions, Responses, models, embeddings),
Anthropic Messages and Gemini generateContent, all on one 127.0.0.1 listener. Each is strict about its own
auth header and body shape (a wrong one is a 401 / 400 in its vendor's envelope, and the test sees it), and it
records what it received and the exact bytes it sent back.

Behaviour: with tools offered and a user message last, the model calls the first tool with {"city": "Paris"};
after a tool result it answers "The tool said: <result>"; otherwise "Hello from <vendor>!" in two deltas.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response, request
from quart_trio import QuartTrio

OPENAI_KEY = "sk-fake-openai-0123456789"
ANTHROPIC_KEY = "sk-ant-fake-0123456789"
GEMINI_KEY = "AIza-fake-gemini-0123456789"
LIMITED_KEY = "sk-fake-limited-000000000"  # always answered with 429
ARGS = {"city": "Paris"}
CUT_MODEL = "fake-cut"  # a Chat model whose streams end early
ANTHROPIC_MODELS = ("claude-fake-1",)  # any other model is a 404 not_found_error, as Anthropic's API answers


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes


@dataclass
class FakeProviders:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)  # the exact bytes of each answer, in order
    fail_next: int = 0  # answer the next N requests with 503 (Chat only)

    def last(self, path_part: str) -> Received:
        return [r for r in self.received if path_part in r.path][-1]


def _sse(events: list[Any], *, named: bool = False) -> bytes:
    out = []
    for event in events:
        if event == "[DONE]":
            out.append(b"data: [DONE]\n\n")
        elif named:
            out.append(b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n")
        else:
            out.append(b"data: " + orjson.dumps(event) + b"\n\n")
    return b"".join(out)


def _plan(last_is_user: bool, tools: list[Any], tool_result: str | None, vendor: str) -> tuple[str, list[str]]:
    """("tool", []) to call the first tool, or ("text", deltas)."""
    if tools and last_is_user:
        return "tool", []
    if tool_result is not None:
        return "text", ["The tool said: ", tool_result]
    return "text", ["Hello from ", f"{vendor}!"]


def build_app(state: FakeProviders) -> QuartTrio:
    app = QuartTrio("fake_providers", static_folder=None)

    async def record() -> tuple[Any, bytes]:
        raw = await request.get_data()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        state.received.append(Received(request.full_path.rstrip("?"), {k.lower(): v for k, v in request.headers.items()}, body, raw))
        return body, raw

    def reply(payload: bytes, status: int = 200, content_type: str = "application/json") -> Response:
        state.sent.append(payload)
        return Response(payload, status=status, content_type=content_type)

    def openai_error(status: int, message: str) -> Response:
        return reply(orjson.dumps({"error": {"message": message, "type": "invalid_request_error", "code": None}}),
                     status)

    def openai_auth() -> Response | None:
        auth = request.headers.get("authorization", "")
        if auth == f"Bearer {LIMITED_KEY}":
            return openai_error(429, "Rate limit reached for this key.")
        if auth != f"Bearer {OPENAI_KEY}":
            return openai_error(401, "Incorrect API key provided.")
        return None

    # ---- OpenAI-compatible ----------------------------------------------------------------------------------

    @app.get("/v1/models")
    async def openai_models() -> Response:
        if request.headers.get("x-api-key") == ANTHROPIC_KEY and request.headers.get("anthropic-version"):
            return reply(orjson.dumps({"data": [{"id": "claude-fake-1", "type": "model"}], "has_more": False}))
        return openai_auth() or reply(orjson.dumps({"object": "list", "data": [
            {"id": "fake-gpt", "object": "model"}, {"id": "fake-embed", "object": "model"}]}))

    @app.post("/v1/chat/completions")
    async def chat() -> Response:
        body, _ = await record()
        if (refused := openai_auth()) is not None:
            return refused
        if state.fail_next:
            state.fail_next -= 1
            return openai_error(503, "overloaded")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body.get("messages"):
            return openai_error(400, "model and messages are required")
        for message in body["messages"]:
            if message.get("role") not in ("system", "user", "assistant", "tool"):
                return openai_error(400, f"bad role {message.get('role')!r}")
            if message["role"] == "tool" and not message.get("tool_call_id"):
                return openai_error(400, "a tool message needs tool_call_id")
        for tool in body.get("tools") or []:
            if tool.get("type") != "function" or not tool.get("function", {}).get("name"):
                return openai_error(400, "tools must be {type: function, function: {name, parameters}}")
        last = body["messages"][-1]
        kind, deltas = _plan(last["role"] == "user", body.get("tools") or [],
                             last.get("content") if last["role"] == "tool" else None, "fake-openai")
        model, created = body["model"], 1700000000
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model}
        usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        call = {"id": "call_fake_1", "type": "function",
                "function": {"name": (body.get("tools") or [{}])[0].get("function", {}).get("name"),
                             "arguments": orjson.dumps(ARGS).decode()}}
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(deltas) if kind == "text" else None}
            if kind == "tool":
                message["tool_calls"] = [call]
            return reply(orjson.dumps({"id": "chatcmpl-fake", "object": "chat.completion", "created": created,
                                       "model": model, "choices": [{"index": 0, "message": message,
                                       "finish_reason": "stop" if kind == "text" else "tool_calls"}],
                                       "usage": usage}))
        chunks: list[Any] = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                   "finish_reason": None}]}]
        if kind == "text":
            chunks += [{**base, "choices": [{"index": 0, "delta": {"content": d}, "finish_reason": None}]}
                       for d in deltas]
        else:
            args = call["function"]["arguments"]
            chunks.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "id": call["id"], "type": "function",
                 "function": {"name": call["function"]["name"], "arguments": ""}}]}, "finish_reason": None}]})
            for piece in (args[:5], args[5:]):
                chunks.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": 0, "function": {"arguments": piece}}]}, "finish_reason": None}]})
        chunks.append({**base, "choices": [{"index": 0, "delta": {},
                                            "finish_reason": "stop" if kind == "text" else "tool_calls"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": usage})
        if model == CUT_MODEL:  # the connection ends after the first words: no finish, no [DONE]
            return reply(_sse(chunks[:2]), content_type="text/event-stream")
        return reply(_sse(chunks + ["[DONE]"]), content_type="text/event-stream")

    @app.post("/v1/responses")
    async def responses() -> Response:
        body, _ = await record()
        if (refused := openai_auth()) is not None:
            return refused
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or "input" not in body:
            return openai_error(400, "model and input are required")
        text = "Hello from fake-responses!"
        item = {"id": "msg_fake", "type": "message", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}]}
        response = {"id": "resp_fake", "object": "response", "created_at": 1700000000, "model": body["model"],
                    "status": "completed", "output": [item],
                    "usage": {"input_tokens": 5, "output_tokens": 4, "total_tokens": 9}}
        if not body.get("stream"):
            return reply(orjson.dumps(response))
        events = [{"type": "response.created", "sequence_number": 0,
                   "response": {**response, "status": "in_progress", "output": [], "usage": None}},
                  {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
                   "item": {**item, "status": "in_progress", "content": []}},
                  {"type": "response.content_part.added", "sequence_number": 2, "item_id": "msg_fake",
                   "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}},
                  {"type": "response.output_text.delta", "sequence_number": 3, "item_id": "msg_fake",
                   "output_index": 0, "content_index": 0, "delta": text, "logprobs": []},
                  {"type": "response.output_text.done", "sequence_number": 4, "item_id": "msg_fake",
                   "output_index": 0, "content_index": 0, "text": text, "logprobs": []},
                  {"type": "response.content_part.done", "sequence_number": 5, "item_id": "msg_fake",
                   "output_index": 0, "content_index": 0, "part": item["content"][0]},
                  {"type": "response.output_item.done", "sequence_number": 6, "output_index": 0, "item": item},
                  {"type": "response.completed", "sequence_number": 7, "response": response}]
        return reply(_sse(events, named=True), content_type="text/event-stream")

    @app.post("/v1/embeddings")
    async def embeddings() -> Response:
        body, _ = await record()
        if (refused := openai_auth()) is not None:
            return refused
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or "input" not in body:
            return openai_error(400, "model and input are required")
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": [0.25, -0.5, float(len(str(text)))]}
                for i, text in enumerate(inputs)]
        return reply(orjson.dumps({"object": "list", "data": data, "model": body["model"],
                                   "usage": {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)}}))

    # ---- Anthropic --------------------------------------------------------------------------------------------

    def anthropic_error(status: int, kind: str, message: str) -> Response:
        return reply(orjson.dumps({"type": "error", "error": {"type": kind, "message": message}}), status)

    @app.post("/v1/messages")
    async def messages() -> Response:
        body, _ = await record()
        if request.headers.get("x-api-key") != ANTHROPIC_KEY:
            return anthropic_error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return anthropic_error(400, "invalid_request_error", "anthropic-version header is required")
        if (not isinstance(body, dict) or not isinstance(body.get("max_tokens"), int)
                or not isinstance(body.get("messages"), list) or not body["messages"]):
            return anthropic_error(400, "invalid_request_error", "model, max_tokens and messages are required")
        if body.get("model") not in ANTHROPIC_MODELS:
            return anthropic_error(404, "not_found_error", f"model: {body.get('model')}")
        for message in body["messages"]:
            if message.get("role") not in ("user", "assistant"):
                return anthropic_error(400, "invalid_request_error", "roles must be user or assistant")
        for tool in body.get("tools") or []:
            if not tool.get("name") or not isinstance(tool.get("input_schema"), dict):
                return anthropic_error(400, "invalid_request_error", "tools need name and input_schema")
        last = body["messages"][-1]
        content = last["content"] if isinstance(last["content"], list) else [{"type": "text", "text": last["content"]}]
        results = [b for b in content if b.get("type") == "tool_result"]
        tool_result = None
        if results:
            result = results[-1].get("content")
            tool_result = result if isinstance(result, str) else "".join(b.get("text", "") for b in result or [])
        kind, deltas = _plan(last["role"] == "user" and not results, body.get("tools") or [], tool_result,
                             "fake-anthropic")
        tool_name = (body.get("tools") or [{}])[0].get("name")
        usage_in = {"input_tokens": 13, "output_tokens": 1}
        block = ({"type": "text", "text": "".join(deltas)} if kind == "text" else
                 {"type": "tool_use", "id": "toolu_fake_1", "name": tool_name, "input": ARGS})
        stop = "end_turn" if kind == "text" else "tool_use"
        message = {"id": "msg_fake", "type": "message", "role": "assistant", "model": body["model"],
                   "content": [block], "stop_reason": stop, "stop_sequence": None,
                   "usage": {"input_tokens": 13, "output_tokens": 6}}
        if not body.get("stream"):
            return reply(orjson.dumps(message))
        events: list[Any] = [{"type": "message_start", "message": {**message, "content": [], "stop_reason": None,
                                                                    "usage": usage_in}}]
        if kind == "text":
            events.append({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
            events += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}}
                       for d in deltas]
        else:
            events.append({"type": "content_block_start", "index": 0,
                           "content_block": {"type": "tool_use", "id": "toolu_fake_1", "name": tool_name, "input": {}}})
            args = orjson.dumps(ARGS).decode()
            events += [{"type": "content_block_delta", "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": piece}} for piece in (args[:4], args[4:])]
        events += [{"type": "content_block_stop", "index": 0},
                   {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": 6}},
                   {"type": "message_stop"}]
        return reply(_sse(events, named=True), content_type="text/event-stream")

    # ---- Gemini -----------------------------------------------------------------------------------------------

    def gemini_error(status: int, message: str) -> Response:
        return reply(orjson.dumps({"error": {"code": status, "message": message,
                                             "status": "UNAUTHENTICATED" if status == 401 else "INVALID_ARGUMENT"}}),
                     status)

    @app.get("/v1beta/models")
    async def gemini_models() -> Response:
        if request.headers.get("x-goog-api-key") != GEMINI_KEY:
            return gemini_error(401, "API key not valid.")
        return reply(orjson.dumps({"models": [{"name": "models/gemini-fake", "displayName": "Fake"}]}))

    @app.post("/v1beta/models/<path:tail>")
    async def gemini(tail: str) -> Response:
        body, _ = await record()
        if request.headers.get("x-goog-api-key") != GEMINI_KEY:
            return gemini_error(401, "API key not valid.")
        model, _, action = tail.partition(":")
        if action not in ("generateContent", "streamGenerateContent") or not model:
            return gemini_error(400, f"unknown action {action!r}")
        if not isinstance(body, dict) or not isinstance(body.get("contents"), list) or not body["contents"]:
            return gemini_error(400, "contents is required")
        if "model" in body:
            return gemini_error(400, "Invalid JSON payload received. Unknown name \"model\".")
        for content in body["contents"]:
            if content.get("role") not in ("user", "model") or not content.get("parts"):
                return gemini_error(400, "each content needs role user/model and parts")
        declarations = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
        last = body["contents"][-1]
        responses = [p["functionResponse"] for p in last["parts"] if "functionResponse" in p]
        tool_result = None
        if responses:
            answer = responses[-1].get("response") or {}
            tool_result = answer.get("content") if isinstance(answer.get("content"), str) else orjson.dumps(answer).decode()
        kind, deltas = _plan(last["role"] == "user" and not responses, declarations, tool_result, "fake-gemini")
        usage = {"promptTokenCount": 9, "candidatesTokenCount": 5, "totalTokenCount": 14}
        if kind == "tool":
            parts_list = [[{"functionCall": {"name": declarations[0]["name"], "args": ARGS}}]]
        else:
            parts_list = [[{"text": d}] for d in deltas]
        chunks = [{"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
                   "modelVersion": model} for parts in parts_list]
        chunks[-1]["candidates"][0]["finishReason"] = "STOP"
        chunks[-1]["usageMetadata"] = usage
        if action == "generateContent":
            parts = [p for ps in parts_list for p in ps]
            if kind == "text":
                parts = [{"text": "".join(deltas)}]
            return reply(orjson.dumps({"candidates": [{"content": {"role": "model", "parts": parts},
                                                       "finishReason": "STOP", "index": 0}],
                                       "usageMetadata": usage, "modelVersion": model}))
        if request.args.get("alt") == "sse":
            return reply(b"".join(b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in chunks),
                         content_type="text/event-stream")
        return reply(b"[" + b",\r\n".join(orjson.dumps(c) for c in chunks) + b"]", content_type="application/json")

    return app


@asynccontextmanager
async def running_fakes() -> AsyncIterator[FakeProviders]:
    state = FakeProviders()
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, build_app(state), config)
        state.url = binds[0]
        try:
            yield state
        finally:
            nursery.cancel_scope.cancel()
