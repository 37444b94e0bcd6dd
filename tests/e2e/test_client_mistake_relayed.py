"""A client's own mistake is relayed at once and spends no other account (issue 12 item 3).

A history with a function call but no output for it is refused by the backend ("No tool output found for
function call …"). The gateway may resend the full history once (that cures a lost WebSocket chain), but an
answer a full history did not cure is the client's: every other account would say the same."""

from __future__ import annotations

import openai
import pytest

from .dispatch_helpers import accounts_asked, gateway_and_sim

ORPHAN_CALL = [
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "what is the weather?"}]},
    {"type": "function_call", "call_id": "call_orphan", "name": "get_weather", "arguments": "{}"},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "well?"}]},
]


@pytest.mark.parametrize("websocket", [True, False], ids=["ws", "sse"])
async def test_a_call_without_output_is_the_clients_mistake(data_dir, websocket):
    async with gateway_and_sim(data_dir, accounts=3, websocket=websocket) as (sim, gateway, http):
        client = openai.AsyncOpenAI(base_url=f"{str(http.base_url).rstrip('/')}/v1",
                                    api_key=http.headers["authorization"][7:], max_retries=0, timeout=30)
        async with client:
            with pytest.raises(openai.BadRequestError) as refused:
                await client.responses.create(model="gpt-5.5", input=ORPHAN_CALL, stream=False)
            first = accounts_asked(sim)
            with pytest.raises(openai.BadRequestError) as chat_refused:
                await client.chat.completions.create(model="gpt-5.5", messages=[
                    {"role": "user", "content": "what is the weather?"},
                    {"role": "assistant", "tool_calls": [{"id": "call_orphan", "type": "function",
                                                          "function": {"name": "get_weather", "arguments": "{}"}}]},
                    {"role": "user", "content": "well?"}])
            second = accounts_asked(sim)[len(first):]
        for failure in (refused.value, chat_refused.value):
            assert "No tool output found for function call call_orphan" in failure.message
            assert "no account is left" not in failure.message
        # one upstream call per request (a chained socket may add its one full-history replay), one account each
        for asked in (first, second):
            assert len(set(asked)) == 1 and 1 <= len(asked) <= 2, asked
        pool = gateway.services.pool
        assert all(pool.runtime_info(a.id)["last_failure"] is None for a in pool.accounts())  # nobody blamed
