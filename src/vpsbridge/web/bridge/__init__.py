"""The billing bridge API mounted at ``/bridge/v1``: what the WHMCS PHP module talks to.

Three routes, one per kind of caller on the WHMCS side:

* ``POST /bridge/v1/module/{function}`` - a module function (``CreateAccount``, ``TestConnection`` ...);
* ``POST /bridge/v1/hook/{hook}`` - a hook (``AfterModuleCreate``, ``AfterCronJob`` ...);
* ``POST /bridge/v1/client/{action}`` - the client-area proxy (``client.php``), on behalf of a client
  whose WHMCS session the PHP side has already checked.

Every request is signed (:mod:`vpsbridge.billing.whmcs.signing`); the raw body is verified before
it is parsed. Failures use the shared JSON error envelope, whose ``message`` the PHP module shows
to the WHMCS admin or client as it is - so every message is a sentence for that reader.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from vpsbridge.billing.whmcs import bridge
from vpsbridge.billing.whmcs.signing import SignatureError, verify_request
from vpsbridge.logs import get_logger
from vpsbridge.web.deps import Ctx, client_ip
from vpsbridge.web.errors import APIError, error_responses

log = get_logger(__name__)

router = APIRouter(prefix="/bridge/v1", tags=["billing bridge"], responses=error_responses(401, 404, 422))

MAX_BODY = 1_000_000


async def _dispatch(ctx: Ctx, request: Request, kind: Literal["module", "hook", "client"], name: str) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise APIError(413, "request body too large")
    try:
        await verify_request(
            secret=ctx.settings.bridge_secret.get_secret_value() if ctx.settings.bridge_secret else None,
            headers=request.headers,
            method=request.method,
            path=request.url.path,
            body=body,
            cache=ctx.cache,
        )
    except SignatureError as exc:
        log.warning("bridge_rejected", reason=exc.code, path=request.url.path, ip=client_ip(request))
        raise APIError(401, str(exc), code=exc.code) from None
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise APIError(400, "the request body is not JSON") from None
    if not isinstance(payload, dict):
        raise APIError(400, "the request body must be a JSON object")
    call = bridge.BridgeCall.from_payload(kind, name, payload, ip=client_ip(request))
    answer = await bridge.handle(ctx, call)
    return JSONResponse(answer)


@router.post("/module/{function}", summary="A WHMCS module function")
async def module_function(function: str, request: Request, ctx: Ctx) -> Any:
    return await _dispatch(ctx, request, "module", function)


@router.post("/hook/{hook}", summary="A WHMCS hook")
async def hook(hook: str, request: Request, ctx: Ctx) -> Any:
    return await _dispatch(ctx, request, "hook", hook)


@router.post("/client/{action}", summary="A client-area action proxied by client.php")
async def client_action(action: str, request: Request, ctx: Ctx) -> Any:
    return await _dispatch(ctx, request, "client", action)
