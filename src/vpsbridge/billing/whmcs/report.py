"""Reporting service outcomes back to WHMCS through its API, once the background work is done.

CreateAccount answers WHMCS within seconds, before the OS build finishes, so the real results reach
WHMCS later, from the job that produced them (provisioning service events):

* ``provisioned`` - IPs, username and the real root password (``UpdateClientProduct``), then the
  product's welcome e-mail (``SendEmail``), sent once per event;
* ``addresses_changed`` (IPv6 appearing after the build) - the IPs again;
* a ChangePassword - the password the platform really set, written a few seconds after WHMCS
  stored the one typed by the admin (:func:`report_login_later`);
* ``build_failed`` / ``create_unknown`` / ``terminate_failed`` - an activity-log line an operator
  sees on the client's page (``LogActivity``).

Nothing happens when the WHMCS API is not configured (``whmcs_url`` and credentials). Listeners
raise on failure so the job retries them; the e-mail is guarded so a retry never mails twice.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from vpsbridge.billing.whmcs.api import WhmcsClient, WhmcsCredentials
from vpsbridge.logs import get_logger
from vpsbridge.services import provisioning as prov
from vpsbridge.services.provisioning import ServiceEvent, on_service_event

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

log = get_logger(__name__)

#: ``ctx.extras`` key: an httpx2 transport for the WHMCS API (tests).
EXTRAS_WHMCS_TRANSPORT = "whmcs_transport"
WELCOME_TEMPLATE = "Dedicated/VPS Server Welcome Email"
SENT_KEY = "whmcs:welcome-sent:"


def whmcs_client(ctx: AppContext) -> WhmcsClient | None:
    """A client for the configured WHMCS, or ``None`` when reporting back is not set up."""
    s = ctx.settings
    secret = s.whmcs_api_secret.get_secret_value() if s.whmcs_api_secret else None
    access_key = s.whmcs_api_access_key.get_secret_value() if s.whmcs_api_access_key else None
    if not s.whmcs_url or not ((s.whmcs_api_identifier and secret) or access_key):
        return None
    return WhmcsClient(
        WhmcsCredentials(
            url=s.whmcs_url,
            identifier=s.whmcs_api_identifier,
            secret=secret,
            access_key=access_key,
            verify_tls=s.whmcs_verify_tls,
        ),
        transport=ctx.extras.get(EXTRAS_WHMCS_TRANSPORT),
        recorder=ctx.extras.get("upstream_recorder"),
        connect_timeout=s.upstream_connect_timeout,
        read_timeout=s.upstream_read_timeout,
    )


def _billing_id(event: ServiceEvent) -> int | None:
    try:
        return int(event.billing_service_id) if event.billing_service_id else None
    except ValueError:
        return None


async def _write_login(ctx: AppContext, api: WhmcsClient, event: ServiceEvent, service_id: int) -> str:
    creds = await prov.service_credentials(ctx, event.service_id)
    addresses = [*creds.ipv4, *creds.ipv6]
    await api.update_client_product(
        service_id,
        dedicatedip=addresses[0] if addresses else "",
        assignedips="\n".join(addresses[1:]),
        serviceusername=creds.username,
        servicepassword=creds.password,
        domain=creds.hostname or None,
    )
    return creds.password


async def on_provisioned(ctx: AppContext, event: ServiceEvent) -> None:
    service_id = _billing_id(event)
    api = whmcs_client(ctx)
    if api is None or service_id is None:
        return
    async with api:
        await _write_login(ctx, api, event, service_id)
        key = SENT_KEY + event.event_id
        if await ctx.cache.get(key):
            return
        template = str(event.details.get("welcome_email") or WELCOME_TEMPLATE)
        await api.send_email(related_id=service_id, message_name=template)
        await ctx.cache.set(key, True, 90 * 24 * 3600)
        log.info("whmcs_welcome_sent", service=service_id, event_id=event.event_id)


async def on_login_changed(ctx: AppContext, event: ServiceEvent) -> None:
    service_id = _billing_id(event)
    api = whmcs_client(ctx)
    if api is None or service_id is None:
        return
    async with api:
        await _write_login(ctx, api, event, service_id)


async def on_failure(ctx: AppContext, event: ServiceEvent) -> None:
    api = whmcs_client(ctx)
    if api is None:
        return
    reason = str(event.details.get("error") or event.details.get("reason") or event.kind.replace("_", " "))
    client_id = int(event.client_id) if event.client_id.isdigit() else None
    async with api:
        await api.log_activity(
            f"vpsbridge: service #{event.billing_service_id or event.service_id}: {event.kind}: {reason}",
            client_id=client_id,
        )


_pending: set[asyncio.Task[Any]] = set()


def report_login_later(
    ctx: AppContext, service_id: int, billing_service_id: str, *, delay: float = 5.0
) -> None:
    """Write the service's login into WHMCS after ``delay`` seconds.

    WHMCS saves the password typed for ChangePassword *after* the module answered; platforms such as
    VirtFusion choose the new password themselves, so the real one is written just after that.
    """

    async def run() -> None:
        await asyncio.sleep(delay)
        event = ServiceEvent(
            kind="addresses_changed",
            event_id=f"password:{service_id}",
            service_id=service_id,
            billing_service_id=billing_service_id,
            client_id="",
        )
        try:
            await on_login_changed(ctx, event)
        except Exception as exc:
            log.warning("whmcs_password_report_failed", service=billing_service_id, error=str(exc))

    task = asyncio.get_running_loop().create_task(run())
    _pending.add(task)
    task.add_done_callback(_pending.discard)


def register() -> None:
    """Attach the listeners (idempotent); done on import so every process that loads the bridge reports."""
    on_service_event("provisioned", on_provisioned)
    on_service_event("addresses_changed", on_login_changed)
    for kind in ("build_failed", "create_unknown", "terminate_failed"):
        on_service_event(kind, on_failure)


register()
