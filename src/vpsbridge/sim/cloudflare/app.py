"""The Cloudflare API v4 simulator as an ASGI app (Starlette), for the demo and the tests."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vpsbridge.sim.cloudflare.state import CloudflareApiError, CloudflareState

Handler = Callable[[Request], Awaitable[Response]]


def envelope(result: Any, *, status: int = 200, result_info: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return JSONResponse(body, status_code=status)


def failure(error: CloudflareApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"success": False, "errors": [error.as_error()], "messages": [], "result": None}
    return JSONResponse(body, status_code=error.status, headers=headers)


def paginate(items: list[dict[str, Any]], request: Request, default_per_page: int) -> JSONResponse:
    try:
        page = max(1, int(request.query_params.get("page", 1)))
        per_page = min(5000, max(1, int(request.query_params.get("per_page", default_per_page))))
    except ValueError:
        raise CloudflareApiError(400, 1001, "Invalid page or per_page") from None
    start = (page - 1) * per_page
    chunk = items[start : start + per_page]
    info = {
        "page": page,
        "per_page": per_page,
        "count": len(chunk),
        "total_count": len(items),
        "total_pages": max(1, math.ceil(len(items) / per_page)),
    }
    return envelope(chunk, result_info=info)


def create_app(state: CloudflareState | None = None) -> Starlette:
    """An app serving ``/client/v4/...``; ``app.state.cloudflare`` is the :class:`CloudflareState`."""
    sim = state or CloudflareState()

    async def json_body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            raise CloudflareApiError(400, 6007, "Malformed JSON in request body") from None
        if not isinstance(body, dict):
            raise CloudflareApiError(400, 6007, "Malformed JSON in request body")
        return body

    def guarded(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            sim.requests.append((request.method, request.url.path))
            if sim.throttle_next > 0:
                sim.throttle_next -= 1
                error = CloudflareApiError(429, 971, "Please wait and consider throttling your request speed")
                return failure(error, {"Retry-After": str(sim.retry_after)})
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer "):
                return failure(
                    CloudflareApiError(
                        400,
                        6003,
                        "Invalid request headers",
                        [(6111, "Invalid format for Authorization header")],
                    )
                )
            if auth.removeprefix("Bearer ").strip() not in sim.tokens:
                return failure(CloudflareApiError(403, 10000, "Authentication error"))
            try:
                return await handler(request)
            except CloudflareApiError as error:
                return failure(error)

        return run

    async def verify_token(request: Request) -> Response:
        return envelope({"id": "0" * 32, "status": "active"})

    async def list_zones(request: Request) -> Response:
        name = request.query_params.get("name")
        account = request.query_params.get("account.id")
        zones = [
            z.as_json()
            for z in sim.zones.values()
            if (not name or z.name == name.lower().rstrip(".")) and (not account or z.account_id == account)
        ]
        return paginate(sorted(zones, key=lambda z: z["name"]), request, 20)

    async def create_zone(request: Request) -> Response:
        body = await json_body(request)
        return envelope(sim.add_zone(str(body.get("name") or "")).as_json())

    async def list_records(request: Request) -> Response:
        zone = sim.zone(request.path_params["zone_id"])
        return paginate(sim.list_records(zone, dict(request.query_params)), request, 100)

    async def create_record(request: Request) -> Response:
        zone = sim.zone(request.path_params["zone_id"])
        return envelope(sim.create_record(zone, await json_body(request)))

    async def one_record(request: Request) -> Response:
        zone = sim.zone(request.path_params["zone_id"])
        record_id = request.path_params["record_id"]
        if request.method == "GET":
            return envelope(dict(sim.record(zone, record_id)))
        if request.method == "DELETE":
            return envelope(sim.delete_record(zone, record_id))
        body = await json_body(request)
        if request.method == "PUT":
            return envelope(sim.put_record(zone, record_id, body))
        return envelope(sim.patch_record(zone, record_id, body))

    async def batch(request: Request) -> Response:
        zone = sim.zone(request.path_params["zone_id"])
        return envelope(sim.batch(zone, await json_body(request)))

    prefix = "/client/v4"
    routes = [
        Route(prefix + "/user/tokens/verify", guarded(verify_token), methods=["GET"]),
        Route(prefix + "/zones", guarded(list_zones), methods=["GET"]),
        Route(prefix + "/zones", guarded(create_zone), methods=["POST"]),
        Route(prefix + "/zones/{zone_id}/dns_records", guarded(list_records), methods=["GET"]),
        Route(prefix + "/zones/{zone_id}/dns_records", guarded(create_record), methods=["POST"]),
        Route(prefix + "/zones/{zone_id}/dns_records/batch", guarded(batch), methods=["POST"]),
        Route(
            prefix + "/zones/{zone_id}/dns_records/{record_id}",
            guarded(one_record),
            methods=["GET", "PUT", "PATCH", "DELETE"],
        ),
    ]
    app = Starlette(routes=routes)
    app.state.cloudflare = sim
    return app
