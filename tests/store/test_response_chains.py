"""Several gateways on one PostgreSQL share the response-id map: a Responses turn chained with
`previous_response_id` that lands on another instance continues on the owning account, by replaying the history
of the chain (the backend keeps a response only on the socket that made it)."""

from __future__ import annotations


from codex_trio.sim import running_sim
from tests.store.test_shared_state import _gateways, _stop


def _texts(items) -> list[str]:
    texts = []
    for item in items or []:
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [p.get("text") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return texts


def _last_socket(sim) -> tuple[str, list[dict]]:
    """The authorization and the response.create frames of the last upstream WebSocket (a new socket sends its
    prewarm first and chains the turn on it, as codex does: together they carry the history)."""
    request = [r for r in sim.requests if r.ws_messages][-1]
    return request.header("authorization"), [f for f in request.ws_messages if f.get("type") == "response.create"]


def _sent_texts(frames: list[dict]) -> list[str]:
    return [text for frame in frames for text in _texts(frame.get("input"))]


async def test_a_chained_turn_on_another_instance_replays_the_chain_on_the_owning_account(tmp_path, pg_url):
    async with running_sim(accounts=3) as sim:
        first, second, third = await _gateways(tmp_path, sim, pg_url, 3)
        try:
            async with first.client() as a, second.client() as b, third.client() as c:
                one = await a.post("/v1/responses", json={"model": "gpt-5.5", "input": "my name is Ada"})
                assert one.status_code == 200, one.text
                owner = _last_socket(sim)[0]
                # at once on another instance: it finds the chain in the store (waiting for the owner's flush)
                two = await b.post("/v1/responses", json={"model": "gpt-5.5", "previous_response_id": one.json()["id"],
                                                          "input": "what is my name?"})
                assert two.status_code == 200, two.text
                replayed_on, frames = _last_socket(sim)
                # and again on a third: the chain now spans two instances
                three = await c.post("/v1/responses", json={"model": "gpt-5.5",
                                                            "previous_response_id": two.json()["id"],
                                                            "input": "and again?"})
                assert three.status_code == 200, three.text
                third_on, third_frames = _last_socket(sim)
                unknown = await c.post("/v1/responses", json={"model": "gpt-5.5", "previous_response_id": "resp_nope",
                                                              "input": "x"})
        finally:
            await _stop([first, second, third])
    assert replayed_on == owner and third_on == owner
    # not chained on the client's id (unknown to this socket): the whole history instead
    assert all(f.get("previous_response_id") != one.json()["id"] for f in frames)
    texts = _sent_texts(frames)
    assert texts.index("my name is Ada") < texts.index("what is my name?")
    assert any(t in texts for t in _texts(one.json()["output"]))  # the first answer is replayed as well
    later = _sent_texts(third_frames)
    assert [t for t in later if t in ("my name is Ada", "what is my name?", "and again?")] == \
        ["my name is Ada", "what is my name?", "and again?"]
    assert unknown.status_code == 400 and "previous_response_not_found" in unknown.text
