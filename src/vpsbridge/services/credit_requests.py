"""Credit requests from the client portal, passed to whoever issues credit invoices (the billing bridge).

Self-service credit is paid for before it is credited: the WHMCS side raises an invoice and credits
the platform once WHMCS says it is paid (:mod:`vpsbridge.billing.whmcs.credit`). The portal is a
service caller and services must not import the billing bridge (the layer rule), so the bridge
registers its invoice issuer here when it is imported - the same way it registers its usage and
service-event listeners - and the portal asks through :func:`issue_credit`.

Without a registered issuer, or when the issuer says billing is not set up (no WHMCS API
credentials), nothing is created and :class:`BillingUnavailable` says so; the caller keeps what the
client typed and nothing is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from vpsbridge.services.errors import ServiceError

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext


class BillingUnavailable(ServiceError):
    """Credit cannot be requested because billing is not connected; nothing was created."""

    code = "billing_unavailable"
    http_status = 503


class BillingFailed(ServiceError):
    """The billing system failed or did not answer while an invoice was being created."""

    code = "billing_failed"
    http_status = 502


@dataclass(frozen=True, slots=True)
class IssuedInvoice:
    """An invoice raised for credit: what it is for and where the client pays it."""

    invoice_id: int
    amount: float
    status: str
    #: The billing system's page where the client pays this invoice (``None`` when unknown).
    pay_url: str | None


class CreditIssuer(Protocol):
    """What the billing bridge provides: whether it can raise invoices, and raising one."""

    async def available(self, ctx: AppContext) -> bool: ...

    async def issue(
        self, ctx: AppContext, billing_service_id: str, amount: float, *, source: str
    ) -> IssuedInvoice: ...


_ISSUERS: list[CreditIssuer] = []


def register_credit_issuer(issuer: CreditIssuer) -> CreditIssuer:
    """Make ``issuer`` the one credit requests go to (registering it again changes nothing)."""
    if issuer not in _ISSUERS:
        _ISSUERS.clear()
        _ISSUERS.append(issuer)
    return issuer


def remove_credit_issuer(issuer: CreditIssuer) -> None:
    if issuer in _ISSUERS:
        _ISSUERS.remove(issuer)


def _issuer() -> CreditIssuer | None:
    return _ISSUERS[0] if _ISSUERS else None


async def credit_available(ctx: AppContext) -> bool:
    """Whether credit can be requested at all (an issuer is registered and billing is set up)."""
    issuer = _issuer()
    return issuer is not None and await issuer.available(ctx)


async def issue_credit(
    ctx: AppContext, billing_service_id: str, amount: float, *, source: str = "client"
) -> IssuedInvoice:
    """Raise an invoice for ``amount`` of credit for the owner of a billing service.

    Raises :class:`BillingUnavailable` when billing is not connected, :class:`BillingFailed` when it
    failed or did not answer (the invoice may exist then; the message says where to look), and the
    issuer's own :class:`ServiceError` for refusals such as an amount out of range.
    """
    issuer = _issuer()
    if issuer is None or not await issuer.available(ctx):
        raise BillingUnavailable("Credit cannot be added here: the billing system is not connected.")
    try:
        return await issuer.issue(ctx, billing_service_id, amount, source=source)
    except ServiceError:
        raise
    except Exception as exc:
        raise BillingFailed(
            "The billing system did not confirm the invoice. If one was created, it is listed under "
            "Invoices in your client area; otherwise try again in a few minutes."
        ) from exc
