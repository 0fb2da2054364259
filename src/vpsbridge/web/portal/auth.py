"""Who is asking: a signed-in portal session, or WHMCS's client area through the bridge's proxy.

Standalone portal requests carry the portal session cookie; :func:`portal_client` then applies the
shared guard (same origin, session, CSRF). Requests relayed by the WHMCS ``client.php`` proxy carry
the bridge signature instead: the PHP side has already checked the WHMCS session, ownership, POST and
same-origin, and signs ``METHOD``, the path *including the query string* (which names the client as
``client_id=``) and the body. A valid signature therefore proves which client the proxy vouches for;
the ownership re-check below runs on both paths alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from vpsbridge.web.deps import get_ctx
from vpsbridge.web.ui import UiError, session_guard
from vpsbridge.web.ui.i18n import N_

KIND = "portal"
SIGNED_OUT = N_("Your portal session has ended. Open the portal again from your client area.")
_guard = session_guard(KIND, sign_in_hint=SIGNED_OUT)


@dataclass(frozen=True, slots=True)
class PortalClient:
    client_id: str
    #: ``session`` (standalone portal) or ``bridge`` (WHMCS client area proxy).
    via: str
    session_id: str | None = None


def _signed_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def portal_client(request: Request) -> PortalClient:
    """The client behind this request (401/403 as an HTML page when there is none)."""
    if request.headers.get("x-bridge-signature"):
        from vpsbridge.billing.whmcs.signing import SignatureError, verify_request

        ctx = get_ctx(request)
        try:
            await verify_request(
                secret=ctx.settings.bridge_secret.get_secret_value() if ctx.settings.bridge_secret else None,
                headers=request.headers,
                method=request.method,
                path=_signed_path(request),
                body=await request.body(),
                cache=ctx.cache,
            )
        except SignatureError as exc:
            raise UiError(
                403, "The request from the client area could not be verified.", code=exc.code
            ) from None
        client_id = request.query_params.get("client_id", "")
        if not client_id:
            raise UiError(403, "The request from the client area did not name a client.", code="no_client")
        request.state.portal_via_bridge = True
        return PortalClient(client_id=client_id, via="bridge")
    session = await _guard(request)
    return PortalClient(client_id=session.subject, via="session", session_id=session.id)
