"""Sans-IO translation between the canonical turn (a Codex Responses request) and a provider's wire, for a
client whose protocol is not the provider's. Requests: `build_request(wire, request, model)`. Streams: a
decoder per wire turns the provider's SSE events (decoded by `upstream.sse.SseDecoder`) into Responses events
through `ResponsesStream`. Translation always streams from the provider; a collected reply is assembled by the
route as for the backend."""

from __future__ import annotations

import json
from typing import Any, Callable

from ..upstream.events import CodexEvent
from .responses_stream import ResponsesStream

DEFAULT_MAX_TOKENS = 8192  # Anthropic requires max_tokens; the Responses request may not carry one
PASSED_SAMPLING = ("temperature", "top_p")


# ---- requests -------------------------------------------------------------------------------------------------

def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict) and isinstance(p.get("text"), str))


def _image_url(part: dict[str, Any]) -> str | None:
    url = part.get("image_url")
    if isinstance(url, dict):
        url = url.get("url")
    return url if isinstance(url, str) else None


def _function_tools(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Only function tools reach a provider: hosted tools (web_search, image_generation) are the backend's."""
    return [t for t in request.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]


def _system_texts(request: dict[str, Any]) -> list[str]:
    texts = [request["instructions"]] if isinstance(request.get("instructions"), str) and request["instructions"] else []
    for item in request.get("input") or []:
        if isinstance(item, dict) and item.get("type", "message") == "message" and item.get("role") in ("system", "developer"):
            texts.append(_text_of(item.get("content")))
    return [t for t in texts if t]


def _conversation(request: dict[str, Any]) -> list[dict[str, Any]]:
    items = request.get("input")
    if isinstance(items, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": items}]}]
    return [i for i in items or [] if isinstance(i, dict) and not (
        i.get("type", "message") == "message" and i.get("role") in ("system", "developer"))]


def _max_tokens(request: dict[str, Any]) -> int | None:
    value = request.get("max_output_tokens")
    return value if isinstance(value, int) and value > 0 else None


def to_chat(request: dict[str, Any], model: str) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": t} for t in _system_texts(request)]
    for item in _conversation(request):
        kind = item.get("type", "message")
        if kind == "message":
            content = item.get("content")
            if isinstance(content, list) and any(p.get("type") == "input_image" for p in content if isinstance(p, dict)):
                parts = []
                for p in content:
                    if p.get("type") == "input_image" and _image_url(p):
                        parts.append({"type": "image_url", "image_url": {"url": _image_url(p)}})
                    elif isinstance(p.get("text"), str):
                        parts.append({"type": "text", "text": p["text"]})
                messages.append({"role": item.get("role", "user"), "content": parts})
            else:
                messages.append({"role": item.get("role", "user"), "content": _text_of(content)})
        elif kind == "function_call":
            call = {"id": item.get("call_id"), "type": "function",
                    "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"),
                             "content": output if isinstance(output, str) else _text_of(output)})
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": True,
                            "stream_options": {"include_usage": True}}
    tools = _function_tools(request)
    if tools:
        body["tools"] = [{"type": "function", "function": {k: t[k] for k in ("name", "description", "parameters")
                                                           if k in t}} for t in tools]
        choice = request.get("tool_choice")
        if isinstance(choice, dict) and choice.get("name"):
            body["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        elif choice in ("auto", "none", "required"):
            body["tool_choice"] = choice
    if _max_tokens(request):
        body["max_tokens"] = _max_tokens(request)
    body.update({k: request[k] for k in PASSED_SAMPLING if k in request})
    return body


def _arguments(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) and text else {}
    except ValueError:
        value = {}
    return value if isinstance(value, dict) else {"value": value}


def _anthropic_image(url: str) -> dict[str, Any]:
    if url.startswith("data:") and ";base64," in url:
        media, _, data = url[5:].partition(";base64,")
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def to_anthropic(request: dict[str, Any], model: str) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for item in _conversation(request):
        kind = item.get("type", "message")
        if kind == "message":
            role = "assistant" if item.get("role") == "assistant" else "user"
            content = item.get("content")
            blocks = []
            for p in content if isinstance(content, list) else [{"type": "input_text", "text": content or ""}]:
                if p.get("type") == "input_image" and _image_url(p):
                    blocks.append(_anthropic_image(_image_url(p)))
                elif isinstance(p.get("text"), str) and p["text"]:
                    blocks.append({"type": "text", "text": p["text"]})
            if blocks:
                _append(messages, role, blocks)
        elif kind == "function_call":
            _append(messages, "assistant", [{"type": "tool_use", "id": item.get("call_id"), "name": item.get("name"),
                                             "input": _arguments(item.get("arguments"))}])
        elif kind == "function_call_output":
            output = item.get("output")
            _append(messages, "user", [{"type": "tool_result", "tool_use_id": item.get("call_id"),
                                        "content": output if isinstance(output, str) else _text_of(output)}])
    body: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(request) or DEFAULT_MAX_TOKENS,
                            "messages": messages, "stream": True}
    system = "\n\n".join(_system_texts(request))
    if system:
        body["system"] = system
    tools = _function_tools(request)
    choice = request.get("tool_choice")
    if tools and choice != "none":
        body["tools"] = [{"name": t["name"], "description": t.get("description") or "",
                          "input_schema": t.get("parameters") or {"type": "object", "properties": {}}} for t in tools]
        if isinstance(choice, dict) and choice.get("name"):
            body["tool_choice"] = {"type": "tool", "name": choice["name"]}
        elif choice == "required":
            body["tool_choice"] = {"type": "any"}
    body.update({k: request[k] for k in PASSED_SAMPLING if k in request})
    return body


def to_gemini(request: dict[str, Any], model: str) -> dict[str, Any]:
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # call id → function name (Gemini answers a call by name)

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for item in _conversation(request):
        kind = item.get("type", "message")
        if kind == "message":
            content = item.get("content")
            parts = []
            for p in content if isinstance(content, list) else [{"type": "input_text", "text": content or ""}]:
                url = _image_url(p) if p.get("type") == "input_image" else None
                if url and url.startswith("data:") and ";base64," in url:
                    media, _, data = url[5:].partition(";base64,")
                    parts.append({"inlineData": {"mimeType": media, "data": data}})
                elif isinstance(p.get("text"), str) and p["text"]:
                    parts.append({"text": p["text"]})
            if parts:
                add("model" if item.get("role") == "assistant" else "user", parts)
        elif kind == "function_call":
            names[item.get("call_id") or ""] = item.get("name") or ""
            add("model", [{"functionCall": {"name": item.get("name"), "args": _arguments(item.get("arguments"))}}])
        elif kind == "function_call_output":
            output = item.get("output")
            add("user", [{"functionResponse": {"name": names.get(item.get("call_id") or "", ""),
                                               "response": {"content": output if isinstance(output, str)
                                                            else _text_of(output)}}}])
    body: dict[str, Any] = {"contents": contents}
    system = "\n\n".join(_system_texts(request))
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    tools = _function_tools(request)
    if tools and request.get("tool_choice") != "none":
        body["tools"] = [{"functionDeclarations": [
            {"name": t["name"], "description": t.get("description") or "",
             **({"parametersJsonSchema": t["parameters"]} if t.get("parameters") else {})} for t in tools]}]
    config = {"maxOutputTokens": _max_tokens(request), "temperature": request.get("temperature"),
              "topP": request.get("top_p")}
    config = {k: v for k, v in config.items() if v is not None}
    if config:
        body["generationConfig"] = config
    return body


REQUEST_BUILDERS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "chat": to_chat, "anthropic": to_anthropic, "gemini": to_gemini,
}


def to_responses(request: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI-compatible Responses provider takes the canonical request itself (it is the Responses API)."""
    body = {k: v for k, v in request.items() if k not in ("prompt_cache_key", "client_metadata", "include")}
    body["tools"] = _function_tools(request) or None
    return {**{k: v for k, v in body.items() if v is not None}, "model": model, "stream": True}


REQUEST_BUILDERS["responses"] = to_responses


# ---- streams --------------------------------------------------------------------------------------------------

def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class ChatDecoder:
    """Chat Completions chunks → Responses events."""

    def __init__(self, out: ResponsesStream) -> None:
        self.out = out
        self.usage: dict[str, Any] = {}
        self.finish_reason: str | None = None

    def feed(self, event: CodexEvent) -> list[CodexEvent]:
        data = event.data
        if "error" in data and not data.get("choices"):
            code, message = _error(data.get("error"))
            return self.out.fail(code, message)
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        events: list[CodexEvent] = self.out.start()
        for choice in data.get("choices") or []:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                events += self.out.text(delta["content"])
            for call in delta.get("tool_calls") or []:
                function = call.get("function") or {}
                events += self.out.tool_call(("chat", call.get("index", 0)), call.get("id"), function.get("name"),
                                             function.get("arguments") or "")
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def end(self) -> list[CodexEvent]:
        if self.finish_reason is None:
            return []  # no finish: the relay reports a premature end
        details = self.usage.get("prompt_tokens_details") or {}
        output_details = self.usage.get("completion_tokens_details") or {}
        return self.out.finish(input_tokens=_int(self.usage.get("prompt_tokens")),
                               output_tokens=_int(self.usage.get("completion_tokens")),
                               cached_tokens=_int(details.get("cached_tokens")),
                               reasoning_tokens=_int(output_details.get("reasoning_tokens")),
                               incomplete_reason="max_output_tokens" if self.finish_reason == "length" else None)


class AnthropicDecoder:
    """Anthropic Messages stream events → Responses events."""

    def __init__(self, out: ResponsesStream) -> None:
        self.out = out
        self.input_tokens = self.cached_tokens = self.output_tokens = 0
        self.stop_reason: str | None = None
        self.tool_blocks: set[int] = set()

    def feed(self, event: CodexEvent) -> list[CodexEvent]:
        data, kind = event.data, event.type
        if kind == "message_start":
            usage = (data.get("message") or {}).get("usage") or {}
            self.cached_tokens = _int(usage.get("cache_read_input_tokens"))
            self.input_tokens = _int(usage.get("input_tokens")) + self.cached_tokens + _int(
                usage.get("cache_creation_input_tokens"))
            self.output_tokens = _int(usage.get("output_tokens"))
            return self.out.start()
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                self.tool_blocks.add(data.get("index", 0))
                return self.out.tool_call(("anthropic", data.get("index", 0)), block.get("id"), block.get("name"))
            if block.get("type") == "text" and block.get("text"):
                return self.out.text(block["text"])
            return []
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                return self.out.text(delta.get("text") or "")
            if delta.get("type") == "input_json_delta" and data.get("index", 0) in self.tool_blocks:
                return self.out.tool_call(("anthropic", data.get("index", 0)), None, None,
                                          delta.get("partial_json") or "")
            return []
        if kind == "message_delta":
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
            self.output_tokens = _int((data.get("usage") or {}).get("output_tokens")) or self.output_tokens
            return []
        if kind == "message_stop":
            return self.out.finish(input_tokens=self.input_tokens, output_tokens=self.output_tokens,
                                   cached_tokens=self.cached_tokens,
                                   incomplete_reason="max_output_tokens" if self.stop_reason == "max_tokens" else None)
        if kind == "error":
            code, message = _error(data.get("error"))
            return self.out.fail(code, message)
        return []

    def end(self) -> list[CodexEvent]:
        return []


class GeminiDecoder:
    """Gemini `streamGenerateContent?alt=sse` chunks → Responses events."""

    def __init__(self, out: ResponsesStream) -> None:
        self.out = out
        self.usage: dict[str, Any] = {}
        self.finish_reason: str | None = None
        self.calls = 0

    def feed(self, event: CodexEvent) -> list[CodexEvent]:
        data = event.data
        if "error" in data:
            code, message = _error(data.get("error"))
            return self.out.fail(code, message)
        if isinstance(data.get("usageMetadata"), dict):
            self.usage = data["usageMetadata"]
        events = self.out.start()
        for candidate in (data.get("candidates") or [])[:1]:
            for part in (candidate.get("content") or {}).get("parts") or []:
                if isinstance(part.get("text"), str) and not part.get("thought"):
                    events += self.out.text(part["text"])
                elif isinstance(part.get("functionCall"), dict):
                    call = part["functionCall"]
                    self.calls += 1
                    events += self.out.tool_call(("gemini", self.calls), call.get("id"), call.get("name"),
                                                 json.dumps(call.get("args") or {}))
            if candidate.get("finishReason"):
                self.finish_reason = candidate["finishReason"]
        return events

    def end(self) -> list[CodexEvent]:
        if self.finish_reason is None:
            return []
        thoughts = _int(self.usage.get("thoughtsTokenCount"))
        return self.out.finish(input_tokens=_int(self.usage.get("promptTokenCount")),
                               output_tokens=_int(self.usage.get("candidatesTokenCount")) + thoughts,
                               cached_tokens=_int(self.usage.get("cachedContentTokenCount")), reasoning_tokens=thoughts,
                               incomplete_reason="max_output_tokens" if self.finish_reason == "MAX_TOKENS" else None)


class ResponsesDecoder:
    """A Responses provider already speaks the backend's events: relayed as they are."""

    def __init__(self, out: ResponsesStream) -> None:
        self.out = out

    def feed(self, event: CodexEvent) -> list[CodexEvent]:
        if event.type in ("response.completed", "response.incomplete", "response.failed", "error"):
            self.out.finished = True
        return [event]

    def end(self) -> list[CodexEvent]:
        return []


DECODERS = {"chat": ChatDecoder, "anthropic": AnthropicDecoder, "gemini": GeminiDecoder,
            "responses": ResponsesDecoder}


def _error(error: Any) -> tuple[str, str]:
    if isinstance(error, dict):
        return str(error.get("code") or error.get("type") or error.get("status") or "provider_error"), str(
            error.get("message") or "the provider reported an error")
    return "provider_error", str(error or "the provider reported an error")
