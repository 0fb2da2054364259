"""VirtFusion self-service credit, paid through WHMCS: an invoice first, the panel credit once paid.

Self-service credit is spent on hourly servers, so handing it out without payment gives servers
away. Every credit therefore starts as a WHMCS invoice created through the API (``CreateInvoice``)
and recorded here (:class:`~vpsbridge.store.models.CreditInvoice`), and the panel is credited only
when WHMCS says that invoice is paid:

* the client asks for it in the WHMCS client area (``client.php?action=credit``) or in the portal's
  billing panel - the portal reaches :func:`request_credit` through the credit-request seam in
  :mod:`vpsbridge.services.credit_requests`, where :func:`register` installs :class:`PortalCreditIssuer`,
  which also names the invoice's ``viewinvoice.php`` page for the client to pay;
* the client pays it like any invoice (gateway, or WHMCS applying their credit balance), WHMCS runs
  its ``InvoicePaid`` hook, ``hooks.php`` forwards the invoice id and its status read from
  ``tblinvoices``, and :func:`settle_invoice` credits the panel;
* the auto top-off may pay it at once from the client's WHMCS credit balance with ``ApplyCredit``
  (WHMCS has no API to debit a balance directly - ``AddCredit`` with a negative amount is refused -
  and ``ApplyCredit`` on an invoice is the documented way to spend it); when that pays the invoice
  in full, it is settled straight away, and the ``InvoicePaid`` that follows finds it credited.

Crediting is once per invoice: the row moves ``pending`` -> ``crediting`` -> ``credited`` by
compare-and-set, and the panel credit carries the invoice id as its integer reference. A panel
refusal puts the invoice back to ``pending`` (a later ``InvoicePaid`` retries); a timeout leaves it
``crediting`` with the error, because the credit may have been applied - an operator checks the
panel's credit list for that reference instead of vpsbridge crediting twice.

Tokens are credited 1:1 for the invoice amount in the client's currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from vpsbridge.billing.whmcs.report import whmcs_client
from vpsbridge.http import UpstreamNotFound, UpstreamRejected
from vpsbridge.logs import get_logger
from vpsbridge.services import provisioning as prov
from vpsbridge.services.credit_requests import IssuedInvoice, register_credit_issuer
from vpsbridge.services.errors import Conflict, Invalid, ServiceError
from vpsbridge.services.provisioning.drivers import open_driver
from vpsbridge.services.usage import UsageRun, on_usage_collected
from vpsbridge.store.models import CreditInvoice, Platform, Product, Service, utcnow

if TYPE_CHECKING:
    from vpsbridge.billing.whmcs.api import WhmcsClient
    from vpsbridge.services.context import AppContext

log = get_logger(__name__)

MAX_AMOUNT = 10_000.0
OPEN = ("pending", "crediting")


@dataclass(frozen=True)
class CreditRequest:
    """An invoice raised for self-service credit."""

    invoice_id: int
    amount: float
    status: str
    paid_from_balance: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "invoice_id": self.invoice_id,
            "amount": self.amount,
            "status": self.status,
            "paid_from_balance": self.paid_from_balance,
        }


def _api(ctx: AppContext) -> WhmcsClient:
    api = whmcs_client(ctx)
    if api is None:
        raise Invalid(
            "self-service credit needs the WHMCS API (whmcs_url and an API credential): "
            "vpsbridge raises an invoice and credits the panel only once it is paid"
        )
    return api


async def request_credit(
    ctx: AppContext,
    billing_service_id: str,
    amount: float,
    *,
    source: str = "client",
    pay_from_balance: bool = False,
) -> CreditRequest:
    """Raise a WHMCS invoice for ``amount`` of credit for the client owning the service.

    With ``pay_from_balance`` the invoice is paid from the client's WHMCS credit balance when it
    covers the amount (and settled at once); otherwise it waits for the client to pay it.
    """
    if not 0 < amount <= MAX_AMOUNT:
        raise Invalid(f"the credit amount must be more than 0 and at most {MAX_AMOUNT:g}", field="amount")
    service = await prov.get_service(ctx, prov.by_billing(billing_service_id))
    if service.platform_type != "virtfusion" or service.platform_id is None:
        raise Invalid("self-service credit exists only for VirtFusion services")
    if not service.client_id.isdigit():
        raise Invalid(f"the service's client id {service.client_id!r} is not a WHMCS client id")
    client = int(service.client_id)
    async with _api(ctx) as api:
        invoice_id = await api.create_invoice(
            client,
            [(f"Self-service credit for service #{billing_service_id}", amount)],
            send_invoice=not pay_from_balance,
        )
        async with ctx.db.session() as session:
            session.add(
                CreditInvoice(
                    invoice_id=invoice_id,
                    platform_id=service.platform_id,
                    client_id=service.client_id,
                    service_id=service.id,
                    amount=amount,
                    tokens=amount,
                    source=source,
                    status="pending",
                )
            )
        log.info("credit_invoice_created", invoice=invoice_id, client=client, amount=amount, source=source)
        if not pay_from_balance:
            return CreditRequest(invoice_id, amount, "pending")
        details = await api.get_clients_details(client)
        balance = _float(details.get("credit"))
        if balance is None or balance < amount:
            return CreditRequest(invoice_id, amount, "pending")
        paid = await api.apply_credit(invoice_id, amount)
    if not paid:
        return CreditRequest(invoice_id, amount, "pending")
    settled = await settle_invoice(ctx, invoice_id, status="Paid")
    return CreditRequest(invoice_id, amount, str(settled["status"]), paid_from_balance=True)


async def _move(ctx: AppContext, invoice_id: int, expect: str, **values: Any) -> bool:
    async with ctx.db.session() as session:
        result = await session.execute(
            update(CreditInvoice)
            .where(CreditInvoice.invoice_id == invoice_id, CreditInvoice.status == expect)
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


async def settle_invoice(ctx: AppContext, invoice_id: int, *, status: str) -> dict[str, Any]:
    """Credit the panel for a paid credit invoice, once; other invoices are not ours and ignored."""
    async with ctx.db.session() as session:
        row = (
            await session.execute(select(CreditInvoice).where(CreditInvoice.invoice_id == invoice_id))
        ).scalar_one_or_none()
        record = (
            None
            if row is None
            else (row.status, row.platform_id, row.client_id, row.tokens, row.credit_id, row.last_error)
        )
    if record is None:
        return {"credited": False, "status": None, "reason": "not a self-service credit invoice"}
    current, platform_id, client_id, tokens, credit_id, last_error = record
    if current == "credited":
        return {"credited": False, "status": current, "credit_id": credit_id, "reason": "already credited"}
    if current == "crediting":
        raise Conflict(
            f"invoice #{invoice_id} is already being credited"
            + (
                f" (last error: {last_error}); check the panel's credits for reference {invoice_id}"
                if last_error
                else ""
            )
        )
    if status != "Paid":
        return {"credited": False, "status": current, "reason": f"invoice is {status or 'not paid'}"}
    if not await _move(ctx, invoice_id, "pending", status="crediting"):
        raise Conflict(f"invoice #{invoice_id} is already being credited")
    try:
        async with open_driver(ctx, platform_id) as (driver, _):
            add = getattr(driver, "add_credit", None)
            if add is None:
                raise Invalid("the platform has no self-service credit")
            new_id = await add(client_id, tokens, reference=invoice_id, note=f"WHMCS invoice #{invoice_id}")
    except (UpstreamRejected, UpstreamNotFound, Invalid) as exc:
        await _move(ctx, invoice_id, "crediting", status="pending", last_error=str(exc))
        raise ServiceError(f"the panel refused the credit for invoice #{invoice_id}: {exc}") from exc
    except Exception as exc:
        await _move(ctx, invoice_id, "crediting", last_error=f"outcome unknown: {type(exc).__name__}: {exc}")
        raise ServiceError(
            f"crediting invoice #{invoice_id} has an unknown outcome ({type(exc).__name__}); "
            f"check the panel's credits for reference {invoice_id}"
        ) from exc
    await _move(ctx, invoice_id, "crediting", status="credited", credit_id=str(new_id), last_error=None)
    log.info("credit_invoice_credited", invoice=invoice_id, client=client_id, tokens=tokens, credit=new_id)
    return {"credited": True, "status": "credited", "credit_id": str(new_id)}


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class _TopOff:
    platform_id: int
    client_id: str
    billing_service_id: str
    threshold: float
    amount: float


async def _topoff_candidates(ctx: AppContext) -> list[_TopOff]:
    """One per (platform, client): the first active service whose product has a top-off set."""
    query = (
        select(Service.billing_service_id, Service.client_id, Product.platform_id, Product.settings)
        .join(Product, Product.id == Service.product_id)
        .join(Platform, Platform.id == Product.platform_id)
        .where(
            Service.status == "active",
            Service.billing_service_id.is_not(None),
            Platform.type == "virtfusion",
            Platform.enabled.is_(True),
        )
        .order_by(Service.id)
    )
    async with ctx.db.session() as session:
        rows = (await session.execute(query)).all()
        open_ = {
            (r[0], r[1])
            for r in await session.execute(
                select(CreditInvoice.platform_id, CreditInvoice.client_id).where(
                    CreditInvoice.source == "topoff", CreditInvoice.status.in_(OPEN)
                )
            )
        }
    out: dict[tuple[int, str], _TopOff] = {}
    for billing_id, client_id, platform_id, settings in rows:
        settings = settings or {}
        threshold = _float(settings.get("topoff_threshold")) or 0.0
        amount = _float(settings.get("topoff_amount")) or 0.0
        mode = settings.get("self_service_mode") or "disabled"
        key = (platform_id, client_id)
        if mode == "disabled" or threshold <= 0 or amount <= 0 or key in out or key in open_:
            continue
        out[key] = _TopOff(platform_id, client_id, str(billing_id), threshold, amount)
    return list(out.values())


async def auto_topoff(ctx: AppContext, run: UsageRun | None = None) -> list[CreditRequest]:
    """The daily top-off: an invoice for every client whose panel credit fell below the threshold.

    A client with an unpaid top-off invoice gets no second one; an unreadable balance is skipped.
    """
    if whmcs_client(ctx) is None:
        return []
    raised: list[CreditRequest] = []
    by_platform: dict[int, list[_TopOff]] = {}
    for candidate in await _topoff_candidates(ctx):
        by_platform.setdefault(candidate.platform_id, []).append(candidate)
    for platform_id, candidates in by_platform.items():
        async with open_driver(ctx, platform_id) as (driver, _):
            read_balance = getattr(driver, "credit_balance", None)
            balances: dict[str, float | None] = {}
            for c in candidates:
                try:
                    if read_balance is None:
                        raise Invalid("the platform has no self-service credit")
                    balances[c.client_id] = float(await read_balance(c.client_id))
                except Exception as exc:
                    balances[c.client_id] = None
                    if run is not None:
                        run.problems.append(f"top-off: client {c.client_id}: balance unknown ({exc})")
        for c in candidates:
            balance = balances.get(c.client_id)
            if balance is None or balance >= c.threshold:
                continue
            try:
                raised.append(
                    await request_credit(
                        ctx, c.billing_service_id, c.amount, source="topoff", pay_from_balance=True
                    )
                )
            except Exception as exc:
                log.warning("topoff_failed", client=c.client_id, error=f"{type(exc).__name__}: {exc}")
                if run is not None:
                    run.problems.append(f"top-off: client {c.client_id}: {exc}")
    return raised


async def _after_usage(ctx: AppContext, run: UsageRun) -> None:
    await auto_topoff(ctx, run)


def invoice_url(ctx: AppContext, invoice_id: int) -> str | None:
    """The WHMCS client-area page of an invoice, where the client pays it (``viewinvoice.php``)."""
    base = ctx.settings.whmcs_url
    return f"{base.rstrip('/')}/viewinvoice.php?id={int(invoice_id)}" if base else None


class PortalCreditIssuer:
    """The client portal's "Add credit": an invoice raised here, paid in WHMCS, credited once paid."""

    async def available(self, ctx: AppContext) -> bool:
        api = whmcs_client(ctx)
        if api is None:
            return False
        await api.aclose()
        return True

    async def issue(
        self, ctx: AppContext, billing_service_id: str, amount: float, *, source: str
    ) -> IssuedInvoice:
        raised = await request_credit(ctx, billing_service_id, amount, source=source)
        return IssuedInvoice(
            invoice_id=raised.invoice_id,
            amount=raised.amount,
            status=raised.status,
            pay_url=invoice_url(ctx, raised.invoice_id),
        )


PORTAL_ISSUER = PortalCreditIssuer()


def register() -> None:
    """Run the auto top-off after every usage collection and take the portal's credit requests
    (both idempotent)."""
    on_usage_collected(_after_usage)
    register_credit_issuer(PORTAL_ISSUER)


register()
