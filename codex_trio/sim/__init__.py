"""Simulated ChatGPT backend (chatgpt.com/backend-api) + OAuth issuer (auth.openai.com), scriptable.

A product part, used by tests, benchmarks and `codex-trio demo`: as strict as the real backend, with the
real status codes and bodies, recording every request exactly as it arrived.

Public API
----------

    from codex_trio.sim import Simulator, SimConfig, running_sim

    sim = Simulator(SimConfig(
        accounts=2,                    # or a list of plans, one per account: ["free", "pro"]
        plans=("plus",),               # plans the counted accounts cycle through
        token_ttl_seconds=864000,      # access-token lifetime (expiry tests use small values)
        scenario=None,                 # Scenario, or path of a YAML scenario file (see scenario.py)
        https=True,                    # base URLs are https (the port also answers plain HTTP and h2c)
        deflate=True,                  # accept permessage-deflate on the WebSocket
        websocket=True,                # False: the WebSocket upgrade answers 426 (clients fall back to SSE);
                                       # may be flipped at run time: sim.config.websocket = False
        ws_age_cap_seconds=3600,       # WebSocket connection age cap (simulated clock)
        record_requests=True,          # False for benchmarks (sim.requests stays empty)
        device_poll_interval="1",      # the "interval" /deviceauth/usercode returns
        token_delay_seconds=0.0,       # /oauth/token answers this late (the token is rotated at once)
    ))
    urls = await nursery.start(sim.serve, "127.0.0.1", 0)    # -> SimURLs
    urls.backend_base   # "https://127.0.0.1:PORT/backend-api"
    urls.auth_base      # "https://127.0.0.1:PORT"  (/oauth/authorize, /oauth/token, /api/accounts/deviceauth/*)
    urls.http_base      # "http://127.0.0.1:PORT"   (same port, plain text)
    sim.ca_file         # PEM of the throwaway CA (leaf valid for 127.0.0.1, localhost, chatgpt.com, auth.openai.com)
    sim.ssl_context()   # a client SSLContext trusting that CA
    sim.accounts        # [SimAccount(account_id, user_id, email, plan, access_token, refresh_token, id_token, quota, banned)]
    sim.requests        # [RecordedRequest(method, path, query, headers (wire order + case), body (decoded),
                        #                  raw_body, content_encoding, http_version, scheme, status, ws_messages,
                        #                  client_gone (the client dropped the WebSocket mid-response),
                        #                  connection=ConnectionInfo(scheme, alpn, client_hello, h2_connection_start))]
                        # .header(name), .header_names(), .public() (JSON-ready)
    sim.requests_to("/codex/responses", "POST")
    sim.clock.advance(5 * 3600)        # moves token expiry, quota windows, WebSocket age
    sim.script({"match": {"user_text": "weather"}, "reply": {"function_calls": [{"name": "get_weather"}]}})
    sim.ban(account_id); sim.unban(account_id); sim.exhaust(account_id[, "codex_bengalfox"])
    sim.forget_chains()                # open WebSockets forget their responses (previous_response_not_found)
    sim.login_as(account_id)           # who /oauth/authorize auto-approves as
    sim.approve_device(user_code[, account_id])
    sim.add_account("pro")

    async with running_sim(accounts=2) as sim: ...    # codex_trio.sim.testing, for other parts' tests
    DEMO_SCENARIO      # path of scenarios/demo.yaml (weather tools, draw, search, patch, story) for `demo`

The same controls exist over HTTP under `/_sim/` (see control.py). `codex_trio.sim.cli.main(argv)` /
`run_sim(host, port, https, accounts, scenario_path, plans=("plus",))` run it alone (`codex-trio sim`;
also `python -m codex_trio.sim`); `cli.add_arguments(parser)` adds the options to another parser.

Endpoints: backend-api GET /wham/accounts/check, GET /codex/models?client_version=, POST /codex/responses (SSE),
GET /codex/responses (WebSocket), POST /codex/responses/compact, GET /wham/usage (and /codex/usage),
GET /wham/rate-limit-reset-credits, POST /wham/rate-limit-reset-credits/consume, GET /wham/settings/user,
GET /wham/security-setup, POST /ps/mcp, POST /transcribe (multipart; transcribe.py: read from public clients, not
captured); auth GET /oauth/authorize, POST /oauth/token, POST /oauth/revoke,
POST /api/accounts/deviceauth/usercode, POST /api/accounts/deviceauth/token.

Layout: server.py (h11 / wsproto / h2 transport, TLS sniffing), app.py (recording + dispatch),
backend.py (backend-api endpoints, SSE and WebSocket turns), transcribe.py (the dictation endpoint's rules), auth.py (OAuth + device login), control.py,
and pure logic: validation.py (request rules), turns.py (event plans), scenario.py (rules), quota.py
(windows + rate-limit headers), catalog.py, tokens.py (JWTs, single-use refresh), media.py (images),
schema_instance.py (structured output), clock.py.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .scenario import DEMO_SCENARIO, Reply, Rule, Scenario
    from .simulator import SimURLs, Simulator
    from .state import RecordedRequest, SimAccount, SimConfig
    from .testing import running_sim

# Loaded on first use (PEP 562): `codex-trio run` builds its argument parser with `codex_trio.sim.cli`, and the
# simulator itself pulls trustme/cryptography, Pillow and the h2/wsproto servers (+24 MiB of idle RSS).
_HOME = {"DEMO_SCENARIO": "scenario", "Reply": "scenario", "Rule": "scenario", "Scenario": "scenario",
         "SimURLs": "simulator", "Simulator": "simulator", "RecordedRequest": "state", "SimAccount": "state",
         "SimConfig": "state", "running_sim": "testing"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = ["DEMO_SCENARIO", "RecordedRequest", "Reply", "Rule", "Scenario", "SimAccount", "SimConfig", "SimURLs", "Simulator",
           "running_sim"]
