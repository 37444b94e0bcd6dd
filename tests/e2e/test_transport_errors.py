"""Transport failures reach clients as plain messages, the transport's own text stays in the log, and errors
raised from concurrent tasks are fresh objects (issue 12 item 13)."""

from __future__ import annotations

import importlib
import logging
import pkgutil

import openai
import pytest

import codex_trio

from .dispatch_helpers import accounts_asked, gateway_and_sim

# Words of the native transport's messages (hyper, rustls and its manual's links) that mean nothing to a client.
TRANSPORT_WORDS = ("docs.rs", "rustls", "close_notify", "EOF", "decoding response body", "protocol:", "tls:")


async def test_a_connection_that_breaks_before_the_reply_gets_a_plain_message(data_dir, caplog):
    caplog.set_level(logging.WARNING, logger="codex_trio")
    async with gateway_and_sim(data_dir, accounts=1, websocket=False) as (sim, gateway, http):
        sim.script({"reply": {"text": "never seen", "disconnect_after": 1}})
        client = openai.AsyncOpenAI(base_url=f"{str(http.base_url).rstrip('/')}/v1",
                                    api_key=http.headers["authorization"][7:], max_retries=0, timeout=30)
        async with client:
            with pytest.raises(openai.APIStatusError) as failed:
                await client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hi"}])
    assert failed.value.status_code == 502
    message = failed.value.message
    assert "The connection to the upstream broke before the response started." in message
    assert not [word for word in TRANSPORT_WORDS if word in message], message
    assert len(accounts_asked(sim)) >= 1
    logged = [r.getMessage() for r in caplog.records if "upstream connection failed" in r.getMessage()]
    assert logged and any(word in logged[0] for word in TRANSPORT_WORDS)  # the detail is kept for the operator


def test_errors_are_built_per_raise():
    from codex_trio.protocols.failures import premature_close

    first, second = premature_close(), premature_close()
    assert first is not second and first.message == second.message


def test_no_module_keeps_an_exception_instance_to_raise():
    """An exception object at module level, raised by several concurrent tasks, collects every task's
    traceback and context on the one object (and keeps them alive)."""
    shared = []
    for module_info in pkgutil.walk_packages(codex_trio.__path__, "codex_trio."):
        if module_info.name.startswith(("codex_trio._native", "codex_trio.sim.")) or module_info.name.endswith(
                "__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if isinstance(value, BaseException):
                shared.append(f"{module_info.name}.{name}")
    assert shared == []
