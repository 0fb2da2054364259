"""The console relay's browser side: noVNC's websocket <-> the server's authenticated RFB stream.

The popup's noVNC connects here with a relay ticket that works once, for a few seconds
(:func:`vpsbridge.services.portal.claim_console`). :mod:`vpsbridge.services.console_relay` opens the
platform's console stream and answers its password challenge; towards the browser this module is an
RFB server offering security None, then copies bytes both ways. When anything fails, the browser is
told why inside RFB (a refusal with a reason, which noVNC shows), in the visitor's language.

A websocket from a foreign origin is refused before the upgrade: a page elsewhere must not be able to
open a console even with a stolen ticket.
"""

from __future__ import annotations

from fastapi import WebSocket

from vpsbridge.core import rfb
from vpsbridge.http.streams import (
    AsgiWebSocketStream,
    BufferedChannel,
    StreamClosed,
    offered_subprotocol,
    splice,
)
from vpsbridge.logs import get_logger
from vpsbridge.services import console_relay, portal
from vpsbridge.web.deps import get_ctx
from vpsbridge.web.ui import i18n
from vpsbridge.web.ui.i18n import N_
from vpsbridge.web.ui.security import own_origins, same_origin_problem

log = get_logger(__name__)

EXPIRED = N_(
    "This console link has expired or was already used. Close this window and open the console again."
)
#: What the popup says for each cause the relay reports.
CAUSES = {
    "unreachable": N_("The console of this server cannot be reached right now. Try again in a minute."),
    "refused": N_("The platform refused the console connection. Open the console again."),
    "unsupported": N_("This server's console cannot be opened here."),
}


def _language(websocket: WebSocket) -> str:
    return i18n.pick_language(
        websocket.cookies.get(i18n.LANG_COOKIE), websocket.headers.get("accept-language")
    )


async def relay_console(websocket: WebSocket, relay: str) -> None:
    origins = own_origins(websocket, websocket.app.state.settings.public_url)
    if same_origin_problem(websocket.headers, origins) is not None:
        await websocket.close(code=1008)  # before accept: the upgrade is refused with 403
        return
    ctx = get_ctx(websocket)  # type: ignore[arg-type]
    await websocket.accept(subprotocol=offered_subprotocol(websocket))
    browser_side = AsgiWebSocketStream(websocket)
    browser = BufferedChannel(browser_side)
    lang = _language(websocket)
    try:
        claimed = await portal.claim_console(ctx, relay)
        if claimed is None:
            await rfb.server_refuse(browser, i18n.gettext_for(lang, EXPIRED))
            return
        try:
            upstream = await console_relay.connect(ctx, claimed)
        except console_relay.ConsoleUnavailable as exc:
            await rfb.server_refuse(browser, i18n.gettext_for(lang, CAUSES[exc.cause]))
            return
        try:
            await rfb.server_handshake(browser, None)
        except (rfb.RfbError, StreamClosed):
            await upstream.stream.aclose()
            return
        log.info("console_opened", service_id=claimed.get("service_id"))
        await splice(browser, upstream)
    except (rfb.RfbError, StreamClosed):
        pass  # the browser went away or does not speak RFB
    finally:
        await browser_side.aclose()
