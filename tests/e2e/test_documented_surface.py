"""Routes the README documents that no other test reached through the running gateway: the Responses aliases and
review paths, compaction, JSON image edits, the Anthropic root probe."""

from __future__ import annotations

import base64

import httpx

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nreference").decode()


def client_of(stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.url, timeout=30, headers={"authorization": f"Bearer {stack.key}"})


def last_turn(stack) -> dict:
    return [t for t in stack.upstream_turns() if t.get("generate") is not False][-1]


async def test_responses_alias_and_the_review_paths_answer(stack):
    async with client_of(stack) as client:
        for path in ("/responses", "/v1/responses/review", "/responses/review"):
            response = await client.post(path, json={"model": "gpt-5.5", "input": f"via {path}"})
            assert response.status_code == 200, (path, response.text)
            assert response.json()["object"] == "response" and response.json()["status"] == "completed"
            assert f"via {path}" in response.json()["output"][-1]["content"][0]["text"]


async def test_review_paths_tell_the_backend_it_is_a_review_turn(stack):
    async with client_of(stack) as client:
        response = await client.post("/v1/responses/review", json={"model": "gpt-5.5", "input": "review this"})
    assert response.status_code == 200
    assert last_turn(stack)["client_metadata"].get("x-openai-subagent") == "review"


async def test_responses_compact(stack):
    async with client_of(stack) as client:
        response = await client.post("/v1/responses/compact", json={
            "model": "gpt-5.5", "input": [{"role": "user", "content": "a long conversation"}]})
    assert response.status_code == 200, response.text
    output = response.json()["output"]
    assert output[-1]["type"] == "compaction" and output[-1]["encrypted_content"]
    assert stack.sim.requests_to("/codex/responses/compact", "POST")


async def test_image_edits_take_reference_images_in_both_shapes(stack):
    stack.sim.script({"match": {"user_text": "make it blue"}, "reply": {"image": {"size": "16x16"}}})
    async with client_of(stack) as client:
        for images in ([{"image_url": PNG}], [{"image_url": {"url": PNG}}]):
            response = await client.post("/v1/images/edits", json={"prompt": "make it blue", "images": images})
            assert response.status_code == 200, response.text
            assert base64.b64decode(response.json()["data"][0]["b64_json"])[:8] == b"\x89PNG\r\n\x1a\n"
            parts = last_turn(stack)["input"][-1]["content"]
            assert {"type": "input_image", "image_url": PNG} in parts


async def test_the_root_answers_the_probe_claude_code_sends(stack):
    async with client_of(stack) as client:
        head = await client.head("/")
        get = await client.get("/")
    assert head.status_code == 200 and get.status_code == 200 and get.json()["status"] == "ok"
