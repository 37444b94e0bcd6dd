"""Sans-IO: build a well-formed Responses event stream (the backend's vocabulary) from a translated provider's
pieces — text deltas, tool calls, usage, a finish or a failure — so every protocol encoder serves a provider's
turn exactly as it serves the backend's (the Responses adapter even relays these events raw)."""

from __future__ import annotations

from typing import Any

from ..upstream.events import CodexEvent


class ResponsesStream:
    def __init__(self, response_id: str, model: str) -> None:
        self.response_id = response_id
        self.model = model
        self.started = False
        self.finished = False
        self._output: list[dict[str, Any]] = []  # finished output items
        self._text_item: dict[str, Any] | None = None  # the open message item
        self._calls: dict[Any, dict[str, Any]] = {}  # provider's call key → open function_call item
        self._counter = 0

    def _event(self, kind: str, **fields: Any) -> CodexEvent:
        return CodexEvent(kind, {"type": kind, **fields})

    def _response(self, status: str, **extra: Any) -> dict[str, Any]:
        return {"id": self.response_id, "object": "response", "model": self.model, "status": status,
                "output": list(self._output), **extra}

    def _next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_{self.response_id}_{self._counter}"

    def start(self) -> list[CodexEvent]:
        if self.started:
            return []
        self.started = True
        return [self._event("response.created", response=self._response("in_progress"))]

    def text(self, delta: str) -> list[CodexEvent]:
        if not delta:
            return []
        out = self.start()
        if self._text_item is None:
            self._text_item = {"id": self._next_id("msg"), "type": "message", "role": "assistant",
                               "status": "in_progress", "content": [], "_text": [],
                               "_index": len(self._output) + len(self._calls)}
            item = {k: v for k, v in self._text_item.items() if not k.startswith("_")}
            out.append(self._event("response.output_item.added", output_index=self._text_item["_index"], item=item))
            out.append(self._event("response.content_part.added", item_id=item["id"],
                                   output_index=self._text_item["_index"], content_index=0,
                                   part={"type": "output_text", "text": "", "annotations": []}))
        self._text_item["_text"].append(delta)
        out.append(self._event("response.output_text.delta", item_id=self._text_item["id"],
                               output_index=self._text_item["_index"], content_index=0, delta=delta))
        return out

    def _close_text(self) -> list[CodexEvent]:
        item, self._text_item = self._text_item, None
        if item is None:
            return []
        text, index = "".join(item["_text"]), item["_index"]
        part = {"type": "output_text", "text": text, "annotations": []}
        done = {"id": item["id"], "type": "message", "role": "assistant", "status": "completed", "content": [part]}
        self._output.append(done)
        return [self._event("response.output_text.done", item_id=item["id"], output_index=index, content_index=0,
                            text=text),
                self._event("response.content_part.done", item_id=item["id"], output_index=index, content_index=0,
                            part=part),
                self._event("response.output_item.done", output_index=index, item=done)]

    def tool_call(self, key: Any, call_id: str | None, name: str | None, arguments: str = "") -> list[CodexEvent]:
        """A tool call begins (or, with the same `key` again, continues with more argument text)."""
        out = self.start()
        call = self._calls.get(key)
        if call is None:
            out += self._close_text()
            call = {"id": self._next_id("fc"), "type": "function_call", "call_id": call_id or self._next_id("call"),
                    "name": name or "", "arguments": "", "status": "in_progress",
                    "_index": len(self._output) + len(self._calls)}
            self._calls[key] = call
            item = {k: v for k, v in call.items() if not k.startswith("_")}
            out.append(self._event("response.output_item.added", output_index=call["_index"], item=item))
        if arguments:
            call["arguments"] += arguments
            out.append(self._event("response.function_call_arguments.delta", item_id=call["id"],
                                   output_index=call["_index"], delta=arguments))
        return out

    def _close_calls(self) -> list[CodexEvent]:
        out = []
        for call in sorted(self._calls.values(), key=lambda c: c["_index"]):
            item = {k: v for k, v in call.items() if not k.startswith("_")}
            item["status"] = "completed"
            self._output.append(item)
            out.append(self._event("response.function_call_arguments.done", item_id=item["id"],
                                   output_index=call["_index"], arguments=item["arguments"]))
            out.append(self._event("response.output_item.done", output_index=call["_index"], item=item))
        self._calls.clear()
        return out

    def finish(self, *, input_tokens: int = 0, output_tokens: int = 0, cached_tokens: int = 0,
               reasoning_tokens: int = 0, incomplete_reason: str | None = None) -> list[CodexEvent]:
        if self.finished:
            return []
        out = self.start() + self._close_text() + self._close_calls()
        self.finished = True
        usage = {"input_tokens": input_tokens, "output_tokens": output_tokens,
                 "total_tokens": input_tokens + output_tokens,
                 "input_tokens_details": {"cached_tokens": cached_tokens},
                 "output_tokens_details": {"reasoning_tokens": reasoning_tokens}}
        if incomplete_reason:
            response = self._response("incomplete", usage=usage, incomplete_details={"reason": incomplete_reason})
            return out + [self._event("response.incomplete", response=response)]
        return out + [self._event("response.completed", response=self._response("completed", usage=usage))]

    def fail(self, code: str, message: str) -> list[CodexEvent]:
        if self.finished:
            return []
        self.finished = True
        error = {"code": code, "message": message}
        return self.start() + [self._event("response.failed", response=self._response("failed", error=error))]
