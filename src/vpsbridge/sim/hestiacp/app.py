"""The HestiaCP ``/api/`` endpoint as an ASGI app (Starlette), for the demo and the tests.

Like the real ``web/api/index.php``: form or JSON fields, ``hash=ACCESS:SECRET`` or ``access_key`` +
``secret_key``, ``returncode=yes`` (body is the exit code) or ``no`` (body is the command output, the
exit code in the ``Hestia-Exit-Code`` header and mapped to an HTTP status).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vpsbridge.sim.hestiacp.state import (
    E_ARGS,
    E_FORBIDEN,
    E_INVALID,
    E_PASSWORD,
    HestiaCommandError,
    HestiaState,
)


def _status(code: int) -> int:
    if code == 0:
        return 200
    if code == E_ARGS:
        return 400
    if code == E_INVALID:
        return 422
    if code in (E_PASSWORD, E_FORBIDEN):
        return 401
    return 400


def _reply(code: int, output: str, returncode: str) -> Response:
    headers = {"Hestia-Exit-Code": str(code)}
    if returncode == "yes":
        return Response(str(code), status_code=200, media_type="text/plain", headers=headers)
    media = "application/json" if output.startswith(("{", "[")) else "text/plain"
    return Response(output, status_code=_status(code), media_type=media, headers=headers)


def create_app(state: HestiaState | None = None) -> Starlette:
    """An app serving ``POST /api/``; ``app.state.hestia`` is the :class:`HestiaState`."""
    sim = state or HestiaState()

    async def api(request: Request) -> Response:
        if "json" in request.headers.get("content-type", ""):
            try:
                fields: dict[str, Any] = dict(json.loads(await request.body() or b"{}"))
            except ValueError:
                return _reply(E_ARGS, "Error: invalid JSON", "no")
        else:
            form = await request.form()
            fields = {k: str(v) for k, v in form.items()}
        returncode = str(fields.get("returncode") or "no")
        client = request.client.host if request.client else ""
        if sim.allowed_ips is not None and client not in sim.allowed_ips:
            return _reply(
                E_FORBIDEN, f"Error: IP address {client} is not allowed to connect to the API", returncode
            )
        access, secret = str(fields.get("access_key") or ""), str(fields.get("secret_key") or "")
        if not access and ":" in str(fields.get("hash") or ""):
            access, secret = str(fields["hash"]).split(":", 1)
        try:
            user = sim.authenticate(access, secret)
            cmd = str(fields.get("cmd") or "")
            args = [str(fields.get(f"arg{i}", "")) for i in range(1, 14)]
            while args and args[-1] == "":
                args.pop()
            fmt_json = bool(args) and args[-1] == "json"
            output = sim.run(user, cmd, args)
        except HestiaCommandError as error:
            return _reply(error.code, error.message, returncode)
        text = json.dumps(output, indent=4) if output is not None and fmt_json else ""
        return _reply(0, text, returncode)

    app = Starlette(routes=[Route("/api/", api, methods=["POST"]), Route("/api", api, methods=["POST"])])
    app.state.hestia = sim
    return app
