"""The telemetry's HTTP side: the hooks that trace every model request on both listeners (and put
`x-codex-trio-overhead-ms` on every response), `GET /metrics`, and the admin API for usage, the request log
and client keys (docs/admin-api.md)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
import trio
from quart import Response, g, has_websocket_context, request, websocket
from quart.wrappers.response import DataBody, IterableBody

from ..config.loader import ConfigError
from ..errors import ErrorKind, GatewayError, invalid_request
from ..server.admin_deps import admin_deps
from ..server.api import json_response
from ..server.auth import key_matches, presented_key
from .client_keys import ClientKey, KeyLimits, apply_update, delete_key, insert_key, make_key, save_key
from .metrics import CONTENT_TYPE
from .recorder import NULL_RECORDER, set_current
from .redact import redact_body
from .service import Telemetry, protocol_of
from .socket_turns import SocketTurns
from .trace import RequestTrace
from .store import GRANULARITIES, GROUP_COLUMNS, HistoryQuery, read_errors, read_history, read_summary
from .timeparse import parse_time

if TYPE_CHECKING:
    from ..server.admin_deps import AdminDeps
    from ..server.host import GatewayHost

OVERHEAD_HEADER = "x-codex-trio-overhead-ms"
RESPONSES_SOCKETS = frozenset({"/v1/responses", "/responses"})  # the Responses API over a WebSocket
MAX_HISTORY_POINTS = 50_000
TAIL_HEARTBEAT_SECONDS = 15.0


def telemetry_of(deps: "AdminDeps") -> Telemetry:
    telemetry = deps.telemetry
    assert telemetry is not None, "install_surfaces builds the telemetry"
    return telemetry


# ---- hooks ------------------------------------------------------------------------------------------------------

def _client_ip(deps: "AdminDeps") -> str:
    """The client's address (of the request or WebSocket being served)."""
    current = websocket if has_websocket_context() else request
    if deps.config.settings.server.trust_proxy:
        forwarded = current.headers.get("x-forwarded-for", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return current.remote_addr or ""


def _error_text(response: Response, body: bytes) -> tuple[str, str]:
    """(kind, message) from any protocol's error envelope."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "", body[:200].decode("utf-8", "replace")
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):  # Ollama
        return "", error
    if isinstance(error, dict):
        kind = error.get("type") or error.get("status") or error.get("code") or ""
        return str(kind), str(error.get("message") or "")
    return "", ""


class _WatchedBody:
    """A streamed body that tells the trace whether it reached its end. An object, not a generator: its
    `aclose` reports a body cut short even when the server closes it before reading a single chunk."""

    def __init__(self, body: Any, trace: RequestTrace) -> None:
        self._body = body
        self._trace = trace
        self._ended = False

    def __aiter__(self) -> "_WatchedBody":
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._body.__anext__()
        except StopAsyncIteration:
            self._end(True)
            raise
        except BaseException:
            self._end(False)
            raise

    def _end(self, complete: bool) -> None:
        if not self._ended:
            self._ended = True
            self._trace.body_ended(complete)

    async def aclose(self) -> None:
        self._end(False)
        if hasattr(self._body, "aclose"):
            await self._body.aclose()


def install_hooks(app: Any, deps: "AdminDeps") -> None:
    @app.before_request
    async def _trace_request() -> None:
        g.telemetry_started = time.monotonic()
        protocol = protocol_of(request.method, request.path)
        if protocol is None:
            set_current(NULL_RECORDER)  # whatever this task ran before, this request has no turn of ours
            return
        trace = telemetry_of(deps).begin(protocol, request.path, request.method,
                                            user_agent=request.headers.get("user-agent", ""),
                                            client_ip=_client_ip(deps), key=g.get("client_key"))
        g.request_trace = trace
        set_current(trace)
        if deps.config.settings.logs.request_log_bodies:
            # read with cache=True: the route's own (uncached) read then gets the same bytes
            limit = deps.config.settings.logs.request_log_body_bytes
            trace.bodies = {"request": redact_body(await request.get_data(cache=True), limit)}

    @app.after_request
    async def _finish_response(response: Response) -> Response:
        trace = g.get("request_trace")
        if trace is not None:
            collected = isinstance(response.response, DataBody)
            if response.status_code >= 400 and collected:
                kind, text = _error_text(response, await response.get_data())
                trace.note_error(kind or f"http_{response.status_code}", text)
            if trace.bodies is not None:
                trace.bodies["response"] = (redact_body(await response.get_data(), deps.config.settings.logs
                                                        .request_log_body_bytes) if collected
                                            else "[streamed reply: not captured]")
            if isinstance(response.response, IterableBody):
                trace.streamed = True
                response.response = IterableBody(_WatchedBody(response.response.iter, trace))
            trace.responded_with(response.status_code)
            overhead = trace.record.overhead_ms
        else:
            started = g.get("telemetry_started")
            overhead = round((time.monotonic() - started) * 1000, 3) if started is not None else None
        if overhead is not None:
            response.headers[OVERHEAD_HEADER] = f"{overhead:.3f}"
        return response

    @app.teardown_request
    async def _cut_short(_exc: BaseException | None) -> None:
        trace = g.get("request_trace")
        if trace is not None and not trace.responded:  # cancelled (client gone) before the reply was made
            trace.responded_with(499)

    @app.before_websocket
    async def _trace_socket() -> None:
        if websocket.path not in RESPONSES_SOCKETS:
            set_current(NULL_RECORDER)
            return
        telemetry = telemetry_of(deps)
        user_agent, client_ip, key = websocket.headers.get("user-agent", ""), _client_ip(deps), g.get("client_key")
        turns = SocketTurns(lambda: telemetry.begin("responses", websocket.path, "WEBSOCKET", user_agent=user_agent,
                                                    client_ip=client_ip, key=key))
        g.socket_turns = turns
        set_current(turns)

    @app.teardown_websocket
    async def _socket_closed(_exc: BaseException | None) -> None:
        turns = g.get("socket_turns")
        if turns is not None:
            turns.end()


def register_telemetry_ollama(app: Any, gateway: "GatewayHost") -> None:
    install_hooks(app, admin_deps(gateway))


# ---- admin API ------------------------------------------------------------------------------------------------

def _arg_time(name: str, default: float, now: float) -> float:
    value = request.args.get(name)
    if not value:
        return default
    try:
        return parse_time(value, now)
    except ValueError as exc:
        raise invalid_request(f"{name}: {exc}", param=name) from None


def _arg_int(name: str, default: int, low: int, high: int) -> int:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise invalid_request(f"{name} must be an integer.", param=name) from None
    if not low <= number <= high:
        raise invalid_request(f"{name} must be between {low} and {high}.", param=name)
    return number


async def _json_object() -> dict[str, Any]:
    try:
        body = orjson.loads(await request.get_data())
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    return body


def _store(telemetry: Telemetry):
    if telemetry.store is None:
        raise GatewayError(503, "The operator store is not open yet.", ErrorKind.OVERLOADED)
    return telemetry.store


def register_telemetry(app: Any, gateway: "GatewayHost") -> None:
    deps = admin_deps(gateway)
    install_hooks(app, deps)

    @app.get("/metrics")
    async def metrics() -> Response:
        settings = deps.config.settings
        if not settings.metrics.public and not key_matches(presented_key(request.headers, request.args),
                                                           settings.server.proxy_api_key):
            raise GatewayError(401, "GET /metrics needs the admin key (or set metrics.public: true).",
                               ErrorKind.AUTHENTICATION, code="invalid_api_key")
        return Response(telemetry_of(deps).metrics.render(), content_type=CONTENT_TYPE)

    # -- usage --

    @app.get("/admin/usage-stats/summary")
    async def usage_summary() -> Response:
        telemetry = telemetry_of(deps)
        now = telemetry.clock()
        since = _arg_time("since", _arg_time("from", now - 30 * 86400, now), now)
        until = _arg_time("to", now, now)
        await telemetry.writer.flush(_store(telemetry))  # answer with what is pending too
        summary = await _store(telemetry).read(lambda conn: read_summary(conn, since, until))
        names = {k.id: k.name for k in telemetry.keys.all()}
        for row in summary["by_key"]:
            row["key_name"] = names.get(row["key_id"], "" if not row["key_id"] else None)
        return json_response(summary)

    @app.get("/admin/usage-stats/history")
    async def usage_history() -> Response:
        telemetry = telemetry_of(deps)
        now = telemetry.clock()
        granularity = request.args.get("granularity", "hour")
        if granularity not in GRANULARITIES:
            raise invalid_request(f"granularity must be one of {', '.join(GRANULARITIES)}.", param="granularity")
        group_by = request.args.get("group_by") or None
        if group_by is not None and group_by not in GROUP_COLUMNS:
            raise invalid_request(f"group_by must be one of {', '.join(GROUP_COLUMNS)}.", param="group_by")
        query = HistoryQuery(_arg_time("from", now - 86400, now), _arg_time("to", now, now), granularity, group_by)
        if query.end <= query.start:
            raise invalid_request("from must be before to.", param="from")
        if (query.end - query.start) / GRANULARITIES[granularity] > MAX_HISTORY_POINTS:
            raise invalid_request(f"That range has more than {MAX_HISTORY_POINTS} {granularity}s; use a coarser "
                                  "granularity.", param="granularity")
        await telemetry.writer.flush(_store(telemetry))
        points = await _store(telemetry).read(lambda conn: read_history(conn, query))
        return json_response({"from": query.start, "to": query.end, "granularity": granularity,
                              "group_by": group_by, "points": points})

    # -- request log --

    @app.get("/admin/logs")
    async def logs() -> Response:
        telemetry = telemetry_of(deps)
        limit = _arg_int("limit", 50, 1, 1000)
        if request.args.get("source") == "errors":  # the persisted errors, newest first
            before = _arg_time("before", telemetry.clock() + 1, telemetry.clock())
            await telemetry.writer.flush(_store(telemetry))
            records = await _store(telemetry).read(lambda conn: read_errors(conn, limit, before))
            return json_response({"source": "errors", "limit": limit, "records": records})
        filters = {name: request.args[name] for name in ("status", "model", "account", "key", "protocol", "outcome",
                                                          "text") if request.args.get(name)}
        if request.args.get("client_key"):
            # `?key=` is also where Gemini clients put their API key, so the key check reads it as the caller's
            # key: a filter by client key must be sent under this name
            filters["key"] = request.args["client_key"]
        page = telemetry.request_log.query(filters, offset=_arg_int("offset", 0, 0, 10_000_000), limit=limit)
        return json_response({"source": "memory", **page})

    @app.get("/admin/logs/state")
    async def logs_state() -> Response:
        return json_response(_log_state(deps))

    @app.post("/admin/logs/state")
    async def set_logs_state() -> Response:
        body = await _json_object()
        unknown = sorted(set(body) - {"enabled", "capture_bodies"})
        if unknown:
            raise invalid_request(f"Unknown field(s): {', '.join(unknown)}. Known: enabled, capture_bodies.")
        if any(not isinstance(v, bool) for v in body.values()):
            raise invalid_request("enabled and capture_bodies must be true or false.")
        changes: dict[str, Any] = {}
        if "enabled" in body:
            changes["request_log"] = body["enabled"]
        if "capture_bodies" in body:
            changes["request_log_bodies"] = body["capture_bodies"]
        if changes:
            try:
                deps.config.update({"logs": changes})
            except ConfigError as exc:
                raise invalid_request(str(exc)) from None
        return json_response(_log_state(deps))

    @app.get("/admin/logs/stream")
    async def logs_stream() -> Response:
        request_log = telemetry_of(deps).request_log

        async def events():
            yield b": live tail of the request log\n\n"
            with request_log.subscribe() as records:
                while True:
                    with trio.move_on_after(TAIL_HEARTBEAT_SECONDS):
                        record = await records.receive()
                        yield b"event: request\ndata: " + orjson.dumps(record.to_json()) + b"\n\n"
                        continue
                    yield b": keep-alive\n\n"

        return Response(events(), content_type="text/event-stream",
                        headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    # -- client keys --

    @app.get("/admin/client-keys")
    async def list_keys() -> Response:
        keys = telemetry_of(deps).keys
        return json_response({"keys": [_key_json(deps, k) for k in keys.all()]})

    @app.post("/admin/client-keys")
    async def create_key() -> Response:
        telemetry = telemetry_of(deps)
        body = await _json_object()
        name = body.pop("name", None)
        if not isinstance(name, str) or not name.strip():
            raise invalid_request("name is required (a non-empty string).", param="name")
        key, secret = make_key(name.strip(), KeyLimits(), expires_at=None, enabled=True, now=telemetry.clock())
        key = apply_update(key, body)  # the limits, expiry and state asked for (the hash and prefix stay)
        await _store(telemetry).write(lambda conn: insert_key(conn, key))
        telemetry.keys.put(key)
        return json_response({**_key_json(deps, key), "key": secret}, 201)

    @app.get("/admin/client-keys/<key_id>")
    async def get_key(key_id: str) -> Response:
        return json_response(_key_json(deps, _known_key(deps, key_id)))

    @app.route("/admin/client-keys/<key_id>", methods=["PATCH"])
    async def update_key(key_id: str) -> Response:
        telemetry = telemetry_of(deps)
        key = apply_update(_known_key(deps, key_id), await _json_object())
        await _store(telemetry).write(lambda conn: save_key(conn, key))
        telemetry.keys.put(key)
        return json_response(_key_json(deps, key))

    @app.delete("/admin/client-keys/<key_id>")
    async def revoke_key(key_id: str) -> Response:
        telemetry = telemetry_of(deps)
        _known_key(deps, key_id)
        await _store(telemetry).write(lambda conn: delete_key(conn, key_id))
        telemetry.keys.drop(key_id)
        return json_response({"success": True, "id": key_id})


def _known_key(deps: "AdminDeps", key_id: str) -> ClientKey:
    key = telemetry_of(deps).keys.get(key_id)
    if key is None:
        raise GatewayError(404, f"No client key {key_id!r}.", ErrorKind.NOT_FOUND, code="key_not_found")
    return key


def _key_json(deps: "AdminDeps", key: ClientKey) -> dict[str, Any]:
    return {**key.public(), **telemetry_of(deps).keys.usage(key.id)}


def _log_state(deps: "AdminDeps") -> dict[str, Any]:
    telemetry = telemetry_of(deps)
    logs = deps.config.settings.logs
    return {"enabled": logs.request_log, "size": logs.request_log_size, "capture_bodies": logs.request_log_bodies,
            "body_bytes": logs.request_log_body_bytes, "in_memory": len(telemetry.request_log),
            "subscribers": telemetry.request_log.subscribers, "missed": telemetry.request_log.missed,
            "usage_pending": telemetry.writer.pending, "usage_written": telemetry.writer.written}
