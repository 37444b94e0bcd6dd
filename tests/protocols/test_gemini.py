"""Gemini adapter: golden requests from real clients, exact stream frames in both framings, SDK round trips."""

from __future__ import annotations

import json

import httpx
import orjson
import pytest
from google import genai
from google.genai import types

from codex_trio.errors import ErrorKind, GatewayError
from codex_trio.protocols import gemini
from codex_trio.protocols.codex_request import DEFAULT_INSTRUCTIONS
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.turn import Turn
from tests.conftest import FIXTURES
from tests.protocols.helpers import normalize, sse_events

CLIENTS = FIXTURES / "clients"
REPLIES = FIXTURES / "chatgpt-mode/stand-in-replies"
META = ResponseMeta("resp_abc", "gemini-mock", 1795318737)


def sse_chunks(data: bytes) -> list[dict]:
    assert data.endswith(b"\r\n\r\n")
    blocks = data.decode().split("\r\n\r\n")[:-1]
    assert all(b.startswith("data: ") for b in blocks)
    return [json.loads(b[6:]) for b in blocks]


def encode_stream(turn: Turn, events: list, sse: bool = True) -> bytes:
    encoder = gemini.StreamEncoder(turn, META, sse=sse)
    return b"".join(encoder.feed(e) for e in events) + encoder.finish()


def turn_for(body: dict, model: str = "gemini-mock") -> Turn:
    return gemini.parse_request(model, orjson.dumps(body), True)


def said(text: str, role: str = "user") -> dict:
    return {"role": role, "parts": [{"text": text}]}


def chunk(parts: list[dict], finish: str | None = None, usage: dict | None = None) -> dict:
    candidate: dict = {"content": {"parts": parts, "role": "model"}}
    if finish:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    out: dict = {"candidates": [candidate]}
    if usage:
        out["usageMetadata"] = usage
    return {**out, "modelVersion": "gemini-mock", "responseId": "resp_abc"}


REASONING_TEXT_TURN = [
    {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-5.4"}},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "summary_index": 0, "delta": "Thinking"},
    {"type": "response.output_item.done", "output_index": 0, "item": {
        "type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Thinking"}],
        "encrypted_content": "gAAAA-enc"}},
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "delta": "Hello"},
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "delta": " there"},
    {"type": "response.completed", "response": {"id": "resp_1", "usage": {
        "input_tokens": 100, "input_tokens_details": {"cached_tokens": 64}, "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 20}}}},
]
USAGE = {"promptTokenCount": 100, "candidatesTokenCount": 10, "totalTokenCount": 130,
         "cachedContentTokenCount": 64, "thoughtsTokenCount": 20}


def text_turn(*deltas: str, incomplete: str | None = None) -> list[dict]:
    raw: list[dict] = [{"type": "response.created", "response": {"id": "r"}}]
    raw += [{"type": "response.output_text.delta", "item_id": "m", "output_index": 0, "delta": d} for d in deltas]
    response: dict = {"id": "r", "usage": {"input_tokens": 4, "output_tokens": 2}}
    if incomplete:
        response.update(status="incomplete", incomplete_details={"reason": incomplete})
    raw.append({"type": "response.incomplete" if incomplete else "response.completed", "response": response})
    return raw


# ---- requests from real clients ---------------------------------------------------------------------------


def test_gemini_cli_main_request():
    raw = json.loads((CLIENTS / "gemini-cli.streamGenerateContent.json").read_text())
    turn = gemini.parse_request("gemini-mock", (CLIENTS / "gemini-cli.streamGenerateContent.json").read_bytes(), True)
    assert turn.requested_model == "gemini-mock" and turn.stream
    assert turn.expose_reasoning and turn.reasoning_effort is None  # includeThoughts without budget/level
    assert turn.request["instructions"] == "\n".join(p["text"] for p in raw["systemInstruction"]["parts"]).strip()
    assert turn.request["input"] == [{"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": p["text"]} for p in raw["contents"][0]["parts"]]}]
    declarations = raw["tools"][0]["functionDeclarations"]
    assert turn.request["tools"] == [
        {"type": "function", "name": d["name"], "description": d["description"], "strict": False,
         "parameters": d["parametersJsonSchema"]} for d in declarations]
    assert turn.request["tool_choice"] == "auto" and "text" not in turn.request


def test_gemini_cli_function_response_keeps_client_ids():
    turn = gemini.parse_request(
        "gemini-mock", (CLIENTS / "gemini-cli.streamGenerateContent.function-response.json").read_bytes(), True)
    assert turn.request["input"][1:] == [
        {"type": "function_call", "call_id": "list_directory_1795316467670_0", "name": "list_directory",
         "arguments": '{"dir_path":"."}'},
        {"type": "function_call_output", "call_id": "list_directory_1795316467670_0",
         "output": '{"output":"Directory listing for /home/tester/project:\\nsample.txt (6 bytes)"}'}]


def test_gemini_cli_router_structured_output():
    turn = gemini.parse_request(
        "gemini-3.5-flash-lite", (CLIENTS / "gemini-cli.router.generateContent.json").read_bytes(), False)
    assert turn.stream is False and turn.reasoning_effort == "high" and turn.expose_reasoning
    assert turn.request["text"] == {"format": {"type": "json_schema", "name": "response", "strict": True, "schema": {
        "type": "object",
        "properties": {
            "complexity_reasoning": {"type": "string", "description": "Brief explanation for the score."},
            "complexity_score": {"type": "integer", "description": "Complexity score from 1-100."}},
        "required": ["complexity_reasoning", "complexity_score"],
        "additionalProperties": False}}}
    assert [m["role"] for m in turn.request["input"]] == ["user", "user"]


def test_google_genai_python_snake_case_schema_and_synthesised_ids():
    turn = gemini.parse_request(
        "gemini-mock", (CLIENTS / "google-genai-python.generateContent.function-response.json").read_bytes(), False)
    assert turn.request == {
        "model": "gemini-mock",
        "instructions": DEFAULT_INSTRUCTIONS,
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "TOOLCALL weather in Paris?"}]},
            {"type": "function_call", "call_id": "fc_0", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "fc_0", "output": '{"temp_c":21}'}],
        "tools": [{"type": "function", "name": "get_weather", "description": "Weather for a city", "strict": False,
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"},
    }


def test_litellm_snake_case_generation_config():
    turn = gemini.parse_request("models/gemini-mock", (CLIENTS / "litellm.gemini.generateContent.json").read_bytes(), False)
    assert turn.requested_model == "gemini-mock" and turn.options == {"max_output_tokens": 64}


# ---- request mapping ---------------------------------------------------------------------------------------


def test_call_ids_unique_across_turns_and_matched_by_name():
    turn = turn_for({"contents": [
        said("go"),
        {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {}}}, {"functionCall": {"name": "b"}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "b", "response": {"r": 2}}},
                                   {"functionResponse": {"name": "a", "response": {"r": 1}}}]},
        {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {"x": 1}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "a", "response": {"r": 3}}}]}]})
    pairs = [(i["type"], i["call_id"]) for i in turn.request["input"] if "call_id" in i]
    assert pairs == [("function_call", "fc_0"), ("function_call", "fc_1"), ("function_call_output", "fc_1"),
                     ("function_call_output", "fc_0"), ("function_call", "fc_2"), ("function_call_output", "fc_2")]


def test_parts_images_files_thoughts_and_system():
    turn = turn_for({
        "system_instruction": {"parts": [{"text": "Be nice."}, {"text": "Be brief."}]},
        "contents": [
            {"parts": [{"text": "see"}, {"inline_data": {"mime_type": "image/png", "data": "iVBO"}},
                       {"fileData": {"mimeType": "application/pdf", "fileUri": "https://f.test/a.pdf"}},
                       {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}}]},
            {"role": "model", "parts": [{"text": "secret plan", "thought": True}, {"text": "ok"},
                                        {"inlineData": {"mimeType": "image/png", "data": "x"}}]}]})
    assert turn.request["instructions"] == "Be nice.\nBe brief."
    assert turn.request["input"] == [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "see"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBO"},
            {"type": "input_file", "file_url": "https://f.test/a.pdf"},
            {"type": "input_file", "filename": "file", "file_data": "data:application/pdf;base64,JVBE"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}]


def test_thought_signature_round_trip():
    signature = gemini.thought_signature("rs_7", "enc-data")
    turn = turn_for({"contents": [said("q"), {"role": "model", "parts": [
        {"text": "calling", "thoughtSignature": signature}, {"functionCall": {"id": "c1", "name": "f", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"id": "c1", "name": "f", "response": {}}}]},
        {"role": "model", "parts": [{"text": "x", "thoughtSignature": "Cr0BAY89a1/real+gemini=="}]}]})
    assert turn.request["input"][1] == {"type": "reasoning", "id": "rs_7", "summary": [], "encrypted_content": "enc-data"}
    assert [i["type"] for i in turn.request["input"]] == [
        "message", "reasoning", "message", "function_call", "function_call_output", "message"]


def test_tools_google_search_and_tool_config():
    tools = [{"functionDeclarations": [
        {"name": "a", "parameters": {"type": "OBJECT", "properties": {"n": {"type": "INTEGER", "nullable": True}},
                                     "propertyOrdering": ["n"]}},
        {"name": "b"}]}, {"googleSearch": {}}, {"google_search_retrieval": {}}]
    turn = turn_for({"contents": [said("x")], "tools": tools,
                     "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a"]}}})
    assert turn.request["tools"] == [
        {"type": "function", "name": "a", "strict": False,
         "parameters": {"type": "object", "properties": {"n": {"type": ["integer", "null"]}}}},
        {"type": "web_search"}]
    assert turn.request["tool_choice"] == {"type": "function", "name": "a"}
    for mode, expected in (("AUTO", "auto"), ("NONE", "none"), ("ANY", "required")):
        got = turn_for({"contents": [said("x")], "tools": tools,
                        "tool_config": {"function_calling_config": {"mode": mode}}})
        assert got.request["tool_choice"] == expected and len(got.request["tools"]) == 3


@pytest.mark.parametrize("config, effort, expose", [
    ({"thinkingBudget": 1024}, "low", False), ({"thinkingBudget": 4096}, "medium", False),
    ({"thinkingBudget": 10000}, "high", False), ({"thinking_budget": 24576, "include_thoughts": True}, "xhigh", True),
    ({"thinkingBudget": 0}, None, False), ({"thinkingBudget": -1}, None, False),
    ({"thinkingLevel": "LOW"}, "low", False), ({"thinkingLevel": "high", "includeThoughts": True}, "high", True)])
def test_thinking_config(config, effort, expose):
    turn = turn_for({"contents": [said("x")], "generationConfig": {"thinkingConfig": config}})
    assert (turn.reasoning_effort, turn.expose_reasoning) == (effort, expose)


def test_json_modes_and_openapi_schema():
    plain = turn_for({"contents": [said("x")], "generationConfig": {"responseMimeType": "application/json"}})
    assert plain.request["text"] == {"format": {"type": "json_object"}}
    loose = turn_for({"contents": [said("x")], "generation_config": {
        "response_mime_type": "application/json",
        "response_schema": {"type": "ARRAY", "items": {"type": "OBJECT", "properties": {
            "a": {"type": "STRING"}, "b": {"type": "NUMBER", "nullable": True}}, "required": ["a"]}}}})
    assert loose.request["text"]["format"] == {"type": "json_schema", "name": "response", "strict": False, "schema": {
        "type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"},
                                                                   "b": {"type": ["number", "null"]}},
                                   "required": ["a"], "additionalProperties": False}}}
    assert "text" not in turn_for({"contents": [said("x")], "generationConfig": {"responseMimeType": "text/plain"}}).request


def test_stop_sequences_and_candidate_count():
    assert turn_for({"contents": [said("x")], "generationConfig": {"stopSequences": ["##"]}}).stop_sequences == ["##"]
    assert turn_for({"contents": [said("x")], "generationConfig": {"candidateCount": 1}}).stop_sequences == []


@pytest.mark.parametrize("body, param", [
    (b"nope", None),
    ({"contents": []}, "contents"),
    ({"contents": [{"role": "system", "parts": []}]}, "contents[0].role"),
    ({"contents": [{"parts": [{"text": 5}]}]}, "contents[0].parts[0].text"),
    ({"contents": [said("x")], "generationConfig": {"candidateCount": 2}}, "generationConfig.candidateCount"),
    ({"contents": [said("x")], "generationConfig": {"responseMimeType": "text/x.enum"}},
     "generationConfig.responseMimeType"),
    ({"contents": [said("x")], "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
     "toolConfig.functionCallingConfig.mode"),
    ({"contents": [said("x")], "generationConfig": {"thinkingConfig": {"thinkingLevel": "ULTRA"}}},
     "generationConfig.thinkingConfig.thinkingLevel"),
    ({"contents": [{"parts": [{"functionCall": {"args": {}}}]}]}, "contents[0].parts[0].functionCall.name"),
])
def test_validation_errors(body, param):
    with pytest.raises(GatewayError) as caught:
        gemini.parse_request("m", body if isinstance(body, bytes) else orjson.dumps(body), False)
    assert caught.value.status == 400 and caught.value.param == param
    assert gemini.encode_error(caught.value) == (
        400, {"error": {"code": 400, "message": caught.value.message, "status": "INVALID_ARGUMENT"}})


@pytest.mark.parametrize("error, status, name", [
    (GatewayError(401, "k", ErrorKind.AUTHENTICATION), 401, "UNAUTHENTICATED"),
    (GatewayError(403, "k", ErrorKind.PERMISSION), 403, "PERMISSION_DENIED"),
    (GatewayError(404, "k", ErrorKind.NOT_FOUND), 404, "NOT_FOUND"),
    (GatewayError(429, "k", ErrorKind.RATE_LIMIT), 429, "RESOURCE_EXHAUSTED"),
    (GatewayError(529, "k", ErrorKind.OVERLOADED), 503, "UNAVAILABLE"),
    (GatewayError(500, "k", ErrorKind.SERVER), 500, "INTERNAL"),
    (GatewayError(504, "k", ErrorKind.TIMEOUT), 504, "DEADLINE_EXCEEDED"),
])
def test_encode_error(error, status, name):
    assert gemini.encode_error(error) == (status, {"error": {"code": status, "message": "k", "status": name}})


# ---- streaming ----------------------------------------------------------------------------------------------


def test_sse_text_fixture_exact():
    turn = turn_for({"contents": [said("hi")]})
    data = encode_stream(turn, sse_events(REPLIES / "codex-responses.text.sse"))
    assert data.startswith(b'data: {"candidates":[{"content":{"parts":[{"text":"MOCK_OK: hi from"}],"role":"model"}')
    assert sse_chunks(data) == [
        *[chunk([{"text": t}]) for t in ["MOCK_OK: hi from", " the local ChatG", "PT backend stand", "-in."]],
        chunk([{"text": ""}], "STOP", {"promptTokenCount": 1234, "candidatesTokenCount": 12, "totalTokenCount": 1246})]


def test_json_array_framing_exact():
    turn = turn_for({"contents": [said("hi")]})
    encoder = gemini.StreamEncoder(turn, META, sse=False)
    events = sse_events(REPLIES / "codex-responses.function-call-exec_command.sse")
    pieces = [encoder.feed(e) for e in events]
    assert encoder.done and encoder.finish() == b""
    data = b"".join(pieces)
    assert data.startswith(b"[{") and data.endswith(b"}]") and b"}\r\n,{" not in data
    assert json.loads(data) == [
        chunk([{"functionCall": {"id": "call_f1099219195643f28b43322e", "name": "exec_command",
                                 "args": {"cmd": "echo MOCK_TOOL_RAN"}}}]),
        chunk([{"text": ""}], "STOP", {"promptTokenCount": 1234, "candidatesTokenCount": 12, "totalTokenCount": 1246})]


def test_thoughts_usage_and_signature_on_next_part():
    turn = turn_for({"contents": [said("hi")], "generationConfig": {"thinkingConfig": {"includeThoughts": True}}})
    signature = gemini.thought_signature("rs_1", "gAAAA-enc")
    assert sse_chunks(encode_stream(turn, normalize(REASONING_TEXT_TURN))) == [
        chunk([{"text": "Thinking", "thought": True}]),
        chunk([{"text": "Hello", "thoughtSignature": signature}]),
        chunk([{"text": " there"}]),
        chunk([{"text": ""}], "STOP", USAGE)]
    hidden = turn_for({"contents": [said("hi")]})
    response = gemini.encode_response(hidden, normalize(REASONING_TEXT_TURN), META)
    assert response == chunk([{"text": "Hello there", "thoughtSignature": signature}], "STOP", USAGE)


def test_array_stream_empty_and_failure():
    turn = turn_for({"contents": [said("x")]})
    encoder = gemini.StreamEncoder(turn, META, sse=False)
    assert encoder.fail(GatewayError(429, "quota", ErrorKind.RATE_LIMIT)) == (
        b'[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}]')
    assert encoder.done and encoder.finish() == b""


def test_failed_mid_stream_sse():
    turn = turn_for({"contents": [said("x")]})
    raw = text_turn("part")[:-1] + [{"type": "error", "error": {"code": "server_error", "message": "kaput"}}]
    encoder = gemini.StreamEncoder(turn, META)
    got = sse_chunks(b"".join(encoder.feed(e) for e in normalize(raw)) + encoder.finish())
    assert got == [chunk([{"text": "part"}]), {"error": {"code": 500, "message": "kaput", "status": "INTERNAL"}}]
    assert encoder.done


def test_max_tokens_and_safety_finish_reasons():
    turn = turn_for({"contents": [said("x")]})
    got = sse_chunks(encode_stream(turn, normalize(text_turn("a", incomplete="max_output_tokens"))))
    assert got[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"
    response = gemini.encode_response(turn, normalize(text_turn("a", incomplete="content_filter")), META)
    assert response["candidates"][0]["finishReason"] == "SAFETY"


def test_stop_sequence_across_chunks_and_finish_without_terminal():
    turn = turn_for({"contents": [said("x")], "generationConfig": {"stopSequences": ["END"]}})
    encoder = gemini.StreamEncoder(turn, META)
    data = b"".join(encoder.feed(e) for e in normalize(text_turn("abc E", "N", "D tail")[:-1]))
    assert encoder.stopped and not encoder.done
    data += encoder.finish()
    got = sse_chunks(data)
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in got] == ["abc ", ""]
    assert got[-1]["candidates"][0]["finishReason"] == "STOP" and encoder.done


def test_image_output_part():
    raw = [{"type": "response.created", "response": {"id": "r"}},
           {"type": "response.output_item.done", "item": {"type": "image_generation_call", "id": "ig", "result": "QUJD",
                                                          "output_format": "webp"}},
           {"type": "response.completed", "response": {"id": "r"}}]
    response = gemini.encode_response(turn_for({"contents": [said("x")]}), normalize(raw), META)
    assert response["candidates"][0]["content"]["parts"] == [{"inlineData": {"mimeType": "image/webp", "data": "QUJD"}}]


def test_non_stream_failure_raises():
    with pytest.raises(GatewayError) as caught:
        gemini.encode_response(turn_for({"contents": [said("x")]}), normalize(
            [{"type": "response.failed", "response": {"error": {"code": "rate_limit_exceeded", "message": "m"}}}]), META)
    assert caught.value.status == 429


def test_model_bodies():
    assert gemini.list_models(["gpt-5.4", {"id": "gpt-5.5", "display_name": "GPT 5.5", "description": "d",
                                           "context_window": 400000, "max_output_tokens": 128000}]) == {"models": [
        {"name": "models/gpt-5.4", "baseModelId": "gpt-5.4", "version": "001", "displayName": "gpt-5.4",
         "description": "", "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
         "thinking": True},
        {"name": "models/gpt-5.5", "baseModelId": "gpt-5.5", "version": "001", "displayName": "GPT 5.5",
         "description": "d", "inputTokenLimit": 400000, "outputTokenLimit": 128000,
         "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"], "thinking": True}]}


# ---- the real google-genai SDK consumes what we produce -----------------------------------------------------


def _sdk(replies: list[bytes], captured: list) -> genai.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        reply = replies.pop(0)
        kind = "text/event-stream" if reply.startswith(b"data: ") else "application/json"
        return httpx.Response(200, headers={"content-type": kind}, content=reply)

    return genai.Client(api_key="k", http_options=types.HttpOptions(
        base_url="http://127.0.0.1:9/", api_version="v1beta", httpx_client=httpx.Client(transport=httpx.MockTransport(handler))))


def test_sdk_stream_tool_round_trip():
    captured: list = []
    turn = turn_for({"contents": [said("run it")]})
    done = gemini.encode_response(turn, sse_events(REPLIES / "codex-responses.text.sse"), META)
    client = _sdk([encode_stream(turn, sse_events(REPLIES / "codex-responses.function-call-exec_command.sse")),
                   orjson.dumps(done)], captured)
    chunks = list(client.models.generate_content_stream(model="gemini-mock", contents="run it"))
    call = chunks[0].function_calls[0]
    assert (call.id, call.name, call.args) == ("call_f1099219195643f28b43322e", "exec_command", {"cmd": "echo MOCK_TOOL_RAN"})
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.total_token_count == 1246
    # The SDK's follow-up request carries the id back; our parser pairs call and output by it.
    answer = client.models.generate_content(model="gemini-mock", contents=[
        types.Content(role="user", parts=[types.Part(text="run it")]), chunks[0].candidates[0].content,
        types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
            id=call.id, name=call.name, response={"output": "ok"}))])])
    assert answer.text == "MOCK_OK: hi from the local ChatGPT backend stand-in."
    follow_up = gemini.parse_request("gemini-mock", captured[-1].content, False)
    assert [(i["type"], i.get("call_id")) for i in follow_up.request["input"]] == [
        ("message", None), ("function_call", call.id), ("function_call_output", call.id)]


def test_sdk_non_stream_response_validates():
    turn = turn_for({"contents": [said("hi")], "generationConfig": {"thinkingConfig": {"includeThoughts": True}}})
    body = gemini.encode_response(turn, normalize(REASONING_TEXT_TURN), META)
    captured: list = []
    client = _sdk([orjson.dumps(body), b"{}"], captured)
    response = client.models.generate_content(model="gemini-mock", contents="hi")
    assert response.text == "Hello there"
    assert response.usage_metadata.thoughts_token_count == 20 and response.response_id == "resp_abc"
    assert response.candidates[0].content.parts[0].thought is True
    # The SDK keeps the signature as bytes and re-encodes it; sending the turn back restores the reasoning.
    client.models.generate_content(model="gemini-mock", contents=[
        types.Content(role="user", parts=[types.Part(text="hi")]), response.candidates[0].content,
        types.Content(role="user", parts=[types.Part(text="more")])])
    follow_up = gemini.parse_request("gemini-mock", captured[-1].content, False)
    assert follow_up.request["input"][1] == {"type": "reasoning", "id": "rs_1", "summary": [],
                                             "encrypted_content": "gAAAA-enc"}
    assert follow_up.request["input"][2] == {"type": "message", "role": "assistant",
                                             "content": [{"type": "output_text", "text": "Hello there"}]}


def test_back_to_back_reasoning_items_keep_both_signatures():
    second = {"type": "response.output_item.done", "output_index": 1, "item": {
        "type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "enc-2"}}
    raw = REASONING_TEXT_TURN[:3] + [second] + REASONING_TEXT_TURN[3:]
    turn = turn_for({"contents": [said("hi")]})
    response = gemini.encode_response(turn, normalize(raw), META)
    parts = response["candidates"][0]["content"]["parts"]
    assert parts == [{"text": "", "thoughtSignature": gemini.thought_signature("rs_1", "gAAAA-enc")},
                     {"text": "Hello there", "thoughtSignature": gemini.thought_signature("rs_2", "enc-2")}]
    again = turn_for({"contents": [said("hi"), {"role": "model", "parts": parts}, said("more")]})
    assert [(i["type"], i.get("id")) for i in again.request["input"]] == [
        ("message", None), ("reasoning", "rs_1"), ("reasoning", "rs_2"), ("message", None), ("message", None)]


def test_split_model_action():
    assert gemini.split_model_action("gemini-2.5-pro:streamGenerateContent") == ("gemini-2.5-pro", "streamGenerateContent")
    assert gemini.split_model_action("models/ft:a:b:countTokens") == ("ft:a:b", "countTokens")
    for bad in ("gemini-2.5-pro", ":generateContent", "m:embedContent"):
        with pytest.raises(GatewayError) as caught:
            gemini.split_model_action(bad)
        assert caught.value.status == 400


@pytest.mark.parametrize("sse", [True, False])
def test_stream_cut_off_without_terminal_ends_with_error(sse):
    encoder = gemini.StreamEncoder(turn_for({"contents": [said("x")]}), META, sse=sse)
    data = b"".join(encoder.feed(e) for e in normalize(text_turn("partial")[:-1])) + encoder.finish()
    error = {"error": {"code": 502, "message": "The upstream response ended before it was complete; please retry.",
                       "status": "UNAVAILABLE"}}
    got = sse_chunks(data) if sse else json.loads(data)
    assert got == [chunk([{"text": "partial"}]), error]
    assert encoder.done and encoder.finish() == b""


def test_tuple_schema_restored_in_stream_and_response():
    schema = {"type": "ARRAY", "prefixItems": [{"type": "STRING"}, {"type": "INTEGER"}]}
    turn = turn_for({"contents": [said("x")], "generationConfig": {
        "responseMimeType": "application/json", "responseJsonSchema": schema}})
    assert turn.request["text"]["format"]["schema"] == {
        "type": "object", "properties": {"0": {"type": "string"}, "1": {"type": "integer"}},
        "required": ["0", "1"], "additionalProperties": False}
    raw = text_turn('{"0":"a",', '"1":7}')
    body = gemini.encode_response(turn, normalize(raw), META)
    assert orjson.loads(body["candidates"][0]["content"]["parts"][0]["text"]) == ["a", 7]
    chunks = sse_chunks(encode_stream(turn, normalize(raw)))
    assert orjson.loads("".join(p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"])) == ["a", 7]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_inline_data_in_url_safe_base64_goes_up_standard():
    turn = turn_for({"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K-M_A8B8"}}]}]})
    assert turn.request["input"][0]["content"][0] == {"type": "input_image",
                                                      "image_url": "data:image/png;base64,iVBORw0K+M/A8B8="}


def test_schema_conversion_walks_every_place_json_schema_nests_a_subschema():
    # the walk uses protocols/schema.py's list of subschema keys (one list for every protocol), plus
    # additionalProperties: upper-case types are lowered wherever they are nested
    converted = gemini.json_schema({
        "type": "OBJECT",
        "propertyNames": {"type": "STRING"},
        "dependentSchemas": {"a": {"type": "OBJECT", "nullable": True}},
        "additionalProperties": {"type": "INTEGER"},
        "prefixItems": [{"type": "NUMBER"}],
    })
    assert converted == {
        "type": "object",
        "propertyNames": {"type": "string"},
        "dependentSchemas": {"a": {"type": ["object", "null"]}},
        "additionalProperties": {"type": "integer"},
        "prefixItems": [{"type": "number"}],
    }


@pytest.mark.parametrize("sse", [True, False])
def test_plain_text_chunks_are_the_bytes_the_stop_scanning_path_builds(sse):
    """Without a stop sequence a text delta takes a shorter path; its chunks must be exactly those of the general
    path (which a stop sequence that never matches takes), in both framings, a thought signature included."""
    pieces = ["plain", ' "quoted" \\ ', "é🙂\n", "\u2028\x00", "</script>"]
    raw = text_turn(*pieces)[:-1] + REASONING_TEXT_TURN[1:]
    events = normalize(raw)

    def turn(**kw) -> Turn:
        return Turn(request={"model": "gemini-mock"}, requested_model="gemini-mock", **kw)

    plain = encode_stream(turn(), events, sse=sse)
    assert plain == encode_stream(turn(stop_sequences=["NEVER-IN-THE-TEXT"]), events, sse=sse)
    chunks = sse_chunks(plain) if sse else json.loads(plain)
    texts = [part["text"] for c in chunks for part in c["candidates"][0]["content"]["parts"]
             if "text" in part and not part.get("thought")]
    assert "".join(texts) == "".join(pieces) + "Hello there"
    assert any("thoughtSignature" in part for c in chunks for part in c["candidates"][0]["content"]["parts"])
