"""Admin API of the egress proxy pool (`/admin/proxies*`; the app's before_request requires the gateway key).
Routes only map HTTP onto `ProxyService`; the endpoint table is in docs/admin-api.md.

The reference gateway's `/api/proxies*` paths are served too (`REFERENCE_PATHS`), so scripts written for it keep
working: the same views under its names, `PUT` for an update, `check-all`, and `assign-bulk` / `assign-rule`, which
are `assign` with `account_ids` or `match` in the body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Response, request

from ..errors import ErrorKind, GatewayError, invalid_request
from .admin import read_json_object
from .admin_deps import admin_deps
from .api import json_response

if TYPE_CHECKING:
    from ..accounts.proxy_service import ProxyService
    from .host import GatewayHost


def _account_ids(body: dict[str, Any]) -> list[str]:
    ids = body.get("account_ids", [body["account_id"]] if "account_id" in body else None)
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise invalid_request("send `account_id`, a non-empty list `account_ids`, or a rule `match`",
                              param="account_ids")
    return ids


def register_proxies_api(app: Any, gateway: "GatewayHost") -> None:
    current_proxies = admin_deps(gateway).current_proxies

    def service() -> "ProxyService":
        proxies = current_proxies()
        if proxies is None:
            raise GatewayError(503, "the account store is not open yet; try again in a moment", ErrorKind.OVERLOADED)
        return proxies

    @app.get("/admin/proxies")
    async def list_proxies() -> Response:
        return json_response(await service().list())

    @app.post("/admin/proxies")
    async def add_proxy() -> Response:
        return json_response(await service().add(await read_json_object()), 201)

    @app.get("/admin/proxies/assignments")
    async def proxy_assignments() -> Response:
        return json_response(await service().assignments())

    @app.post("/admin/proxies/assign")
    async def assign_proxy() -> Response:
        body = await read_json_object()
        if "proxy" not in body:
            raise invalid_request("send `proxy`: default, direct, auto, auto:<group>, a pool proxy id or a URL",
                                  param="proxy")
        proxies = service()
        ids = await proxies.matching(body["match"]) if "match" in body else _account_ids(body)
        return json_response(await proxies.assign(ids, body["proxy"]))

    @app.get("/admin/proxies/export")
    async def export_proxies() -> Response:
        return Response(service().export_yaml(), content_type="application/yaml; charset=utf-8",
                        headers={"content-disposition": 'attachment; filename="codex-trio-proxies.yaml"',
                                 "cache-control": "no-store"})

    @app.post("/admin/proxies/import")
    async def import_proxies() -> Response:
        raw = await request.get_data()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_request("the proxy list must be UTF-8 text (YAML or JSON)") from None
        return json_response(await service().import_yaml(text))

    @app.post("/admin/proxies/check")
    async def check_all_proxies() -> Response:
        return json_response(await service().check_all())

    @app.get("/admin/proxies/<proxy_id>")
    async def get_proxy(proxy_id: str) -> Response:
        return json_response(await service().get(proxy_id))

    @app.route("/admin/proxies/<proxy_id>", methods=["PATCH", "PUT"])
    async def update_proxy(proxy_id: str) -> Response:
        return json_response(await service().update(proxy_id, await read_json_object()))

    @app.delete("/admin/proxies/<proxy_id>")
    async def remove_proxy(proxy_id: str) -> Response:
        return json_response(await service().remove(proxy_id))

    @app.post("/admin/proxies/<proxy_id>/check")
    async def check_proxy(proxy_id: str) -> Response:
        return json_response(await service().check(proxy_id))

    @app.get("/admin/proxies/check")
    async def check_progress() -> Response:
        checker = service().checker
        return json_response({"progress": dict(checker.progress) if checker is not None else None})

    for path, methods, view in (
            ("/api/proxies", ["GET"], list_proxies), ("/api/proxies", ["POST"], add_proxy),
            ("/api/proxies/<proxy_id>", ["GET"], get_proxy),
            ("/api/proxies/<proxy_id>", ["PUT", "PATCH"], update_proxy),
            ("/api/proxies/<proxy_id>", ["DELETE"], remove_proxy),
            ("/api/proxies/<proxy_id>/check", ["POST"], check_proxy),
            ("/api/proxies/check-all", ["POST"], check_all_proxies),
            ("/api/proxies/assign", ["POST"], assign_proxy), ("/api/proxies/assign-bulk", ["POST"], assign_proxy),
            ("/api/proxies/assign-rule", ["POST"], assign_proxy),
            ("/api/proxies/assignments", ["GET"], proxy_assignments),
            ("/api/proxies/export", ["GET"], export_proxies), ("/api/proxies/import", ["POST"], import_proxies)):
        app.add_url_rule(path, endpoint=view.__name__, view_func=view, methods=methods)
