"""The platform side of the console relay: open the server's RFB stream and authenticate to it.

The portal's console popup connects its noVNC to vpsbridge, never to the platform. For a claimed relay
ticket (:func:`vpsbridge.services.portal.claim_console`) this module asks the service's driver for
the console stream (VirtFusion's panel websocket, Proxmox's ``vncwebsocket``, a bare VNC server) and
completes the RFB security handshake with the platform's password. The browser side then only needs
security type None (:func:`vpsbridge.core.rfb.server_handshake`), so the platform's token and password
stay on the server and the browser's only credential was the single-use relay ticket.

Failures come back as :class:`ConsoleUnavailable` with their cause, which the popup puts in words;
the detail with upstream URLs (redacted) goes to the log and the upstream request log, not to the
browser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from vpsbridge.core import rfb
from vpsbridge.http import UpstreamError, UpstreamRejected
from vpsbridge.http.streams import BufferedChannel, StreamClosed
from vpsbridge.logs import get_logger
from vpsbridge.platforms.errors import NotSupported
from vpsbridge.platforms.models import ConsoleTicket
from vpsbridge.services.errors import ServiceError
from vpsbridge.services.provisioning.drivers import open_driver
from vpsbridge.store.secrets import SecretDecryptError

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

log = get_logger(__name__)

#: Why a console could not be opened; the portal words each cause in the visitor's language.
Cause = Literal["unreachable", "refused", "unsupported"]


class ConsoleUnavailable(Exception):
    """The platform's console could not be opened, for ``cause``."""

    def __init__(self, cause: Cause) -> None:
        super().__init__(cause)
        self.cause: Cause = cause


async def connect(ctx: AppContext, claimed: dict[str, Any]) -> BufferedChannel:
    """The authenticated upstream RFB channel for a claimed relay ticket (ready for ClientInit)."""
    try:
        ticket = ConsoleTicket.model_validate(ctx.secrets.decrypt_json(str(claimed["ticket"])))
        platform_id = int(claimed["platform_id"])
    except (KeyError, TypeError, ValueError, SecretDecryptError) as exc:
        log.warning("console_ticket_unreadable", error=type(exc).__name__)
        raise ConsoleUnavailable("refused") from exc
    service_id = claimed.get("service_id")
    try:
        async with open_driver(ctx, platform_id) as (driver, _):
            stream = await driver.console_stream(ticket)
    except NotSupported as exc:
        raise ConsoleUnavailable("unsupported") from exc
    except UpstreamError as exc:
        log.warning("console_upstream_failed", service_id=service_id, error=str(exc))
        raise ConsoleUnavailable("refused" if isinstance(exc, UpstreamRejected) else "unreachable") from exc
    except ServiceError as exc:  # the platform was removed from the catalogue meanwhile
        raise ConsoleUnavailable("unsupported") from exc
    channel = BufferedChannel(stream)
    try:
        await rfb.client_handshake(channel, ticket.password)
    except (rfb.RfbError, StreamClosed) as exc:
        log.warning("console_handshake_failed", service_id=service_id, error=str(exc))
        await stream.aclose()
        raise ConsoleUnavailable("refused") from exc
    return channel
