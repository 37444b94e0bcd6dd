"""The Anthropic surface as Anthropic clients expect it (issue 12 item 9): generated images never arrive as a
call of a tool the client did not declare, and `GET /v1/models` answers in Anthropic's model-list shape."""

from __future__ import annotations

import anthropic
import httpx

from codex_trio.sim import running_sim
from tests.conftest import api_key, gateway_on_sim


async def test_generated_image_is_markdown_text_not_an_undeclared_tool_call(data_dir):
    async with running_sim(accounts=1) as sim:
        sim.script({"match": {"user_text": "draw"}, "reply": {"image": {"format": "png"}, "text": "Here it is."}})
        async with gateway_on_sim(data_dir, sim, local={"model": {"default_tools": ["image_generation"]}}) as (
                gateway, url):
            async with anthropic.AsyncAnthropic(base_url=url, api_key=api_key(gateway), max_retries=0) as client:
                tools = [{"name": "Bash", "description": "run a command", "input_schema": {"type": "object"}}]
                ask = {"model": "claude-sonnet-4-6", "max_tokens": 100, "tools": tools,
                       "messages": [{"role": "user", "content": "draw a fox"}]}
                collected = await client.messages.create(**ask)
                async with client.messages.stream(**ask) as stream:
                    streamed = await stream.get_final_message()
    for message in (collected, streamed):
        assert [block.type for block in message.content] == ["text"]  # no tool_use of "image_generation"
        text = message.content[0].text
        assert text.startswith("![image](data:image/png;base64,") and text.endswith("Here it is.")
        assert message.stop_reason == "end_turn"


async def test_models_list_in_anthropic_shape(data_dir):
    async with running_sim(accounts=1) as sim:
        async with gateway_on_sim(data_dir, sim) as (gateway, url):
            key = api_key(gateway)
            async with anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0) as client:
                models = [model async for model in client.models.list(limit=2)]  # pages through has_more/last_id
                first = await client.models.retrieve(models[0].id)
            async with httpx.AsyncClient(base_url=url, headers={"x-api-key": key}) as http:
                openai_shape = (await http.get("/v1/models")).json()
                page = (await http.get("/v1/models", params={"limit": 2},
                                       headers={"anthropic-version": "2023-06-01"})).json()
    listed = [m["id"] for m in openai_shape["data"]]
    assert [m.id for m in models] == listed and len(listed) > 2
    assert all(m.type == "model" and m.display_name and m.created_at.year >= 2020 for m in models)
    assert first.id == models[0].id and first.type == "model"
    assert set(page) == {"data", "has_more", "first_id", "last_id"} and page["has_more"] is True
    assert page["first_id"] == listed[0] and page["last_id"] == listed[1]
    assert set(page["data"][0]) == {"type", "id", "display_name", "created_at"}
    assert openai_shape["object"] == "list"  # OpenAI clients keep their shape
