"""Property: whatever the client does with its history, what the server ends up with for a chained
request (its stored context + the tail we send) is exactly the client's full history."""

from __future__ import annotations

import gc
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from codex_trio.upstream.events import CodexEvent
from codex_trio.upstream.ws_chain import MAX_AGE_SECONDS, WsChain, item_key

BODY = {"type": "response.create", "model": "m", "stream": True, "input": [], "reasoning": {"effort": "low"}}


def keys(items: list[dict[str, Any]]) -> list[Any]:
    return [k for k in map(item_key, items) if k is not None]


step = st.tuples(
    st.sampled_from(["text", "tool", "reasoning+tool"]),  # what the model answers
    st.booleans(),  # whether the client drops reasoning items when replaying
    st.sampled_from(["append", "append", "append", "edit", "truncate"]),  # what the client does next
    st.text(min_size=1, max_size=5),
)


@given(st.lists(step, min_size=1, max_size=8))
@settings(max_examples=200, deadline=None)
def test_server_context_always_equals_client_history(steps) -> None:
    chain = WsChain(opened_at=0.0)
    contexts: dict[str, list[dict[str, Any]]] = {}
    history: list[dict[str, Any]] = [{"role": "user", "content": "start"}]
    for n, (answer, drop_reasoning, action, text) in enumerate(steps):
        plan = chain.plan(BODY, history)
        server_context = (contexts[plan.previous_response_id] if plan.chained else []) + plan.input
        assert keys(server_context) == keys(history)

        chain.sent(BODY, history, float(n), plan)  # the digests the plan worked out are the ones kept
        outputs: list[dict[str, Any]] = []
        if answer.startswith("reasoning"):
            outputs.append({"type": "reasoning", "id": f"rs_{n}", "encrypted_content": "x"})
        if answer == "text":
            outputs.append({"type": "message", "role": "assistant", "id": f"msg_{n}",
                            "content": [{"type": "output_text", "text": f"r{n}"}]})
        else:
            outputs.append({"type": "function_call", "id": f"fc_{n}", "call_id": f"c{n}", "name": "f", "arguments": "{}"})
        for item in outputs:
            chain.received(CodexEvent("response.output_item.done", {"item": item}), float(n))
        rid = f"resp_{n}"
        chain.received(CodexEvent("response.completed", {"response": {"id": rid}}), float(n))
        contexts[rid] = server_context + outputs

        replay = [o for o in outputs if not (drop_reasoning and o["type"] == "reasoning")]
        replay = [{"role": "assistant", "content": o["content"][0]["text"]} if o["type"] == "message" else
                  {k: v for k, v in o.items() if k != "id"} for o in replay]
        history = history + replay
        if answer != "text":
            history.append({"type": "function_call_output", "call_id": f"c{n}", "output": text})
        if action == "edit":
            history[0] = {"role": "user", "content": "edited " + text}
        elif action == "truncate":
            history = history[: max(1, len(history) // 2)]
        history.append({"role": "user", "content": text})


def test_failed_responses_and_old_sockets_do_not_chain() -> None:
    chain = WsChain(opened_at=0.0)
    chain.sent(BODY, [], 1.0)
    chain.received(CodexEvent("response.completed", {"response": {"id": "r1"}}), 1.0)
    assert chain.plan(BODY, [{"role": "user", "content": "a"}]).previous_response_id == "r1"
    chain.sent(BODY, [], 2.0)
    chain.received(CodexEvent("response.failed", {"response": {"id": "r2"}}), 2.0)
    assert chain.plan(BODY, [{"role": "user", "content": "a"}]).previous_response_id is None
    assert chain.usable(3.0) and not chain.usable(MAX_AGE_SECONDS + 1)
    chain.pong(MAX_AGE_SECONDS - 1)
    assert not chain.usable(MAX_AGE_SECONDS + 1)


def _reachable(root: object) -> set[int]:
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        stack.extend(gc.get_referents(obj))
    return seen


def test_a_kept_socket_holds_neither_the_history_nor_the_answer_after_its_turn() -> None:
    """An idle kept socket's chain remembers digests of what the server holds, not the client's history (the
    request's items) or the answer's items and texts, and still chains the next request on them."""
    question = "a long question " * 2000
    request_item = {"role": "user", "content": question}
    answer_item = {"type": "message", "role": "assistant", "id": "msg_1",
                   "content": [{"type": "output_text", "text": "a long answer " * 2000}]}
    chain = WsChain(opened_at=0.0)
    chain.sent(BODY, [request_item], 1.0)
    chain.received(CodexEvent("response.output_item.done", {"item": answer_item}), 1.0)
    chain.received(CodexEvent("response.completed", {"response": {"id": "r1"}}), 1.0)
    held = _reachable(chain)
    for obj in (request_item, question, answer_item, answer_item["content"][0]["text"]):
        assert id(obj) not in held
    follow_up = [{"role": "user", "content": "a long question " * 2000},
                 {"role": "assistant", "content": "a long answer " * 2000}, {"role": "user", "content": "next"}]
    plan = chain.plan(BODY, follow_up)
    assert plan.previous_response_id == "r1" and plan.input == follow_up[2:]
    edited = [{"role": "user", "content": "a long question " * 1999}, *follow_up[1:]]
    assert chain.plan(BODY, edited).previous_response_id is None
