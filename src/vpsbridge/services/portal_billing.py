"""The client portal's billing panel: self-service credit, this period's usage, the report, "Add credit".

**When.** The panel exists for a service whose product enables self-service (``self_service_mode``
in the product settings: ``hourly``, ``resource_packs`` or ``both`` - the same setting WHMCS's product
module settings write, and the mode the client's panel user is created with) on a platform that
bills its users by the hour itself - a driver with every
self-service method (:func:`vpsbridge.platforms.self_service.offers_self_service`; VirtFusion).
Everywhere else (Proxmox, the in-memory platform) there is no panel and its routes answer 404.

**Reading.** Balance, usage and report belong to the client's account on the platform, not to one
server, so they are read once per (platform, client) and cached ``BILLING_TTL`` through the shared
single-flight cache, like the other panels. Each part is read on its own: a report that cannot be
read does not hide the balance. A read with a missing part is shown but not cached, so the next
view asks again.

**Adding credit.** Credit is never given before it is paid: the request becomes a WHMCS invoice
raised by the billing bridge (:mod:`vpsbridge.services.credit_requests`), and the panel is credited
once WHMCS reports it paid. The amount is checked against the product's
``self_service_credit_min`` / ``self_service_credit_max`` (defaults :data:`DEFAULT_CREDIT_MIN` and
:data:`DEFAULT_CREDIT_MAX`, never above :data:`CREDIT_LIMIT`), with a dot or a comma as decimal mark
and at most two decimals. Every form carries a one-off request key: sending the same form again
(a double click, a reload, a retry after a timeout) answers the invoice already raised for it
instead of raising a second one.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vpsbridge.logs import get_logger
from vpsbridge.platforms import registry
from vpsbridge.platforms.self_service import HourlyUsage, UsageReport, offers_self_service, self_service_level
from vpsbridge.services.audit import Actor, record
from vpsbridge.services.credit_requests import IssuedInvoice, credit_available, issue_credit
from vpsbridge.services.errors import Conflict, Invalid, NotFound, ServiceError
from vpsbridge.services.provisioning.drivers import open_driver

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext
    from vpsbridge.services.portal import OwnedService

log = get_logger(__name__)

BILLING_TTL = 60.0
DEFAULT_CREDIT_MIN = 5.0
DEFAULT_CREDIT_MAX = 500.0
#: The most one request may ask for, whatever a product says (the billing bridge refuses more).
CREDIT_LIMIT = 10_000.0
#: How long a submitted form's request key remembers its invoice.
REQUEST_TTL = 3600.0
REQUEST_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_AMOUNT = re.compile(r"^\d{1,7}(?:[.,]\d{1,2})?$")


def offered(platform_type: str | None) -> bool:
    """Whether the platform bills its users by the hour (its driver has every self-service method)."""
    if not platform_type:
        return False
    try:
        return offers_self_service(registry.driver_class(platform_type))
    except Exception:
        return False


def enabled(owned: OwnedService) -> bool:
    """The panel is shown: the product's self-service mode is on and the platform has self-service."""
    return self_service_level(owned.product_settings) > 0 and offered(owned.platform_type)


def _need(owned: OwnedService) -> None:
    if not enabled(owned):
        raise NotFound("Self-service billing is not available for this server.")


@dataclass(frozen=True, slots=True)
class CreditBounds:
    minimum: float
    maximum: float


def _setting(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def credit_bounds(owned: OwnedService) -> CreditBounds:
    """The smallest and largest credit one request may ask for, from the product or the defaults."""
    settings = owned.product_settings
    maximum = min(_setting(settings.get("self_service_credit_max")) or DEFAULT_CREDIT_MAX, CREDIT_LIMIT)
    minimum = min(_setting(settings.get("self_service_credit_min")) or DEFAULT_CREDIT_MIN, maximum)
    return CreditBounds(round(max(minimum, 0.01), 2), round(maximum, 2))


class AmountInvalid(Invalid):
    """The amount typed is not a number of money within the bounds (``details`` has them)."""

    code = "amount_invalid"


class RequestExpired(Invalid):
    """The form's request key is missing or malformed (an old or forged form)."""

    code = "request_expired"


class CreditRefused(ServiceError):
    """Billing refused to raise an invoice for this service (the reason is logged for staff)."""

    code = "credit_refused"
    http_status = 422


def parse_amount(text: str, bounds: CreditBounds) -> float:
    """``"12,50"`` or ``"12.5"`` -> 12.5, within ``bounds``; :class:`AmountInvalid` otherwise."""
    value = text.strip()
    details = {"min": bounds.minimum, "max": bounds.maximum}
    if not _AMOUNT.match(value):
        raise AmountInvalid("Enter an amount such as 20 or 20.50.", field="amount", details=details)
    amount = round(float(value.replace(",", ".")), 2)
    if not bounds.minimum <= amount <= bounds.maximum:
        raise AmountInvalid(
            f"The amount must be between {bounds.minimum:.2f} and {bounds.maximum:.2f}.",
            field="amount",
            details=details,
        )
    return amount


# --- reading ---------------------------------------------------------------------------------------


class _Partial(Exception):
    """A read with a missing part: shown once, not cached."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__("partial billing read")
        self.data = data


async def _read(ctx: AppContext, owned: OwnedService) -> dict[str, Any]:
    """Balance, usage and report, asked for side by side (three upstream calls, one round trip)."""
    assert owned.platform_id is not None
    async with open_driver(ctx, owned.platform_id) as (driver, _):
        balance, usage, report = await asyncio.gather(
            driver.credit_balance(owned.client_id),  # type: ignore[attr-defined]
            driver.hourly_usage(owned.client_id),  # type: ignore[attr-defined]
            driver.usage_report(owned.client_id),  # type: ignore[attr-defined]
            return_exceptions=True,
        )
    data: dict[str, Any] = {
        "balance": None if isinstance(balance, BaseException) else float(balance),
        "usage": usage.model_dump(mode="json") if isinstance(usage, HourlyUsage) else None,
        "report": report.model_dump(mode="json") if isinstance(report, UsageReport) else None,
    }
    if any(value is None for value in data.values()):
        raise _Partial(data)
    return data


@dataclass(frozen=True, slots=True)
class BillingPanel:
    """What the panel shows; a part the platform did not give is ``None``."""

    balance: float | None
    usage: dict[str, Any] | None
    report: dict[str, Any] | None
    currency: dict[str, str]
    #: Some part could not be read (the panel says so instead of showing an error page).
    incomplete: bool
    #: Whether "Add credit" can work (the billing system is connected).
    can_add_credit: bool
    bounds: CreditBounds


async def billing_panel(ctx: AppContext, owned: OwnedService) -> BillingPanel:
    """Balance, usage and report of the service's owner on its platform (cached ``BILLING_TTL``)."""
    _need(owned)
    key = f"portal:billing:{owned.platform_id}:{owned.client_id}"
    incomplete = False
    try:
        data = await ctx.cache.get_or_fetch(key, BILLING_TTL, lambda: _read(ctx, owned))
    except _Partial as partial:
        data, incomplete = partial.data, True
    except Exception:  # the platform could not be reached at all
        data, incomplete = {"balance": None, "usage": None, "report": None}, True
    report = data.get("report")
    currency = (report or {}).get("currency") or {"code": "", "prefix": "", "suffix": ""}
    return BillingPanel(
        balance=data.get("balance"),
        usage=data.get("usage"),
        report=report,
        currency={k: str(v or "") for k, v in currency.items()},
        incomplete=incomplete,
        can_add_credit=await credit_available(ctx),
        bounds=credit_bounds(owned),
    )


# --- adding credit ---------------------------------------------------------------------------------


def _request_cache_key(owned: OwnedService, request_key: str) -> str:
    return f"portal:credit-request:{owned.id}:{request_key}"


async def request_credit(
    ctx: AppContext, owned: OwnedService, amount_text: str, actor: Actor, *, request_key: str
) -> IssuedInvoice:
    """Raise a WHMCS invoice for credit and say where the client pays it.

    The same ``request_key`` (one per rendered form) gives the invoice already raised for it; while
    that first request is still running, a second one is refused (409) rather than raising another.
    A failure before an invoice exists frees the key, so the same form can be sent again.
    """
    _need(owned)
    if not REQUEST_KEY.match(request_key or ""):
        raise RequestExpired("This form has expired; reload the page and try again.", field="request")
    amount = parse_amount(amount_text, credit_bounds(owned))
    if not owned.billing_service_id:
        raise Conflict("This service is not linked to a billing service, so no invoice can be raised.")
    cache_key = _request_cache_key(owned, request_key)
    earlier = await ctx.cache.get(cache_key)
    if isinstance(earlier, dict) and earlier.get("invoice_id"):
        return IssuedInvoice(**earlier)
    # One attempt at a time per form: the claim is atomic, and a failed attempt moves on to a new
    # claim (claims cannot be taken back) so the same form may be sent again.
    failures = await ctx.cache.get(cache_key + ":failures")
    attempt = failures if isinstance(failures, int) else 0
    if not await ctx.cache.debounce(f"{cache_key}:claim:{attempt}", REQUEST_TTL):
        raise Conflict("This request is already being handled; wait a moment and reload the page.")
    try:
        issued = await issue_credit(ctx, owned.billing_service_id, amount, source="client")
    except Invalid as exc:  # billing's own refusal (not a WHMCS client, not a self-service platform)
        await ctx.cache.set(cache_key + ":failures", attempt + 1, REQUEST_TTL)
        log.warning("portal_credit_refused", service=owned.id, reason=exc.message)
        # the reason is for staff (the log), not for the client's browser
        raise CreditRefused("Credit cannot be added for this service; please contact support.") from exc
    except BaseException:
        await ctx.cache.set(cache_key + ":failures", attempt + 1, REQUEST_TTL)
        raise
    await ctx.cache.set(
        cache_key,
        {
            "invoice_id": issued.invoice_id,
            "amount": issued.amount,
            "status": issued.status,
            "pay_url": issued.pay_url,
        },
        REQUEST_TTL,
    )
    async with ctx.db.session() as session:
        await record(
            session,
            actor,
            "service.credit_requested",
            "service",
            owned.id,
            {"invoice_id": issued.invoice_id, "amount": issued.amount},
        )
    return issued
