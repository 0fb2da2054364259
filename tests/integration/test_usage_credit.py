"""Usage figures for WHMCS and paid self-service credit, against the VirtFusion simulator and a mock
WHMCS API (SQLite and PostgreSQL).

Proves: ``usage_sync`` stores disk/bandwidth figures (MB) that ``UsageUpdate`` answers; an upstream
failure keeps the previous figures; unmetered traffic is a 0 limit. Credit is never added without a
paid invoice; a repeated ``InvoicePaid`` credits once; the auto top-off pays from the client's WHMCS
credit balance with ``ApplyCredit`` when it covers the amount, and otherwise waits for payment
without raising a second invoice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx2
import pytest
from provisioning_support import ACTOR, fast_settings
from virtfusion_support import PANEL, TimedASGITransport, add_vf_platform, make_sim

import vpsbridge.workflows.usage_sync  # noqa: F401 - registers the task
from vpsbridge.billing.whmcs import bridge, credit, lifecycle
from vpsbridge.billing.whmcs.report import EXTRAS_WHMCS_TRANSPORT
from vpsbridge.jobs.periodic import run_task
from vpsbridge.jobs.worker import Worker
from vpsbridge.services import products
from vpsbridge.services.context import AppContext
from vpsbridge.services.errors import Invalid
from vpsbridge.services.provisioning import create_service, get_service
from vpsbridge.services.provisioning.drivers import EXTRAS_TRANSPORTS
from vpsbridge.sim.virtfusion import Fault, VirtFusionState


@dataclass
class FakeWhmcs:
    """``includes/api.php`` for the actions credit uses; invoices and credit balances in memory."""

    balances: dict[int, float] = field(default_factory=dict)
    invoices: dict[int, dict[str, Any]] = field(default_factory=dict)
    calls: list[dict[str, str]] = field(default_factory=list)

    def actions(self, name: str) -> list[dict[str, str]]:
        return [c for c in self.calls if c["action"] == name]

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        form = dict(parse_qsl(request.content.decode()))
        self.calls.append(form)
        action = form["action"]
        body: dict[str, Any] = {"result": "success"}
        if action == "CreateInvoice":
            number = 1000 + len(self.invoices) + 1
            self.invoices[number] = {
                "userid": int(form["userid"]),
                "total": float(form["itemamount1"]),
                "status": "Unpaid",
            }
            body["invoiceid"] = number
        elif action == "GetClientsDetails":
            body["client"] = {
                "id": form["clientid"],
                "credit": f"{self.balances.get(int(form['clientid']), 0):.2f}",
            }
        elif action == "ApplyCredit":
            invoice = self.invoices[int(form["invoiceid"])]
            amount = float(form["amount"])
            if self.balances.get(invoice["userid"], 0.0) < amount:
                return self.reply({"result": "error", "message": "Amount exceeds customer credit balance"})
            self.balances[invoice["userid"]] -= amount
            if amount >= invoice["total"]:
                invoice["status"] = "Paid"
            body.update(
                invoiceid=form["invoiceid"],
                amount=form["amount"],
                invoicepaid=str(invoice["status"] == "Paid").lower(),
            )
        return self.reply(body)

    @staticmethod
    def reply(body: dict[str, Any]) -> httpx2.Response:
        return httpx2.Response(200, content=json.dumps(body).encode())


@dataclass
class Billing:
    app: AppContext
    sim: VirtFusionState
    whmcs: FakeWhmcs

    async def drain(self) -> None:
        await Worker(self.app, concurrency=4, periodic=False, wakeup=False).run_until_idle(timeout=30)

    async def active_service(self, billing_id: str, product: str = "vf-1g", client: str = "501") -> int:
        out = await create_service(
            self.app,
            {
                "billing_service_id": billing_id,
                "client_id": client,
                "client": {"name": "Ada Lovelace", "email": f"ada{uuid.uuid4().hex[:4]}@example.net"},
                "product": product,
                "os_template": "1",
                "hostname": f"vf{billing_id}.example.net",
            },
            ACTOR,
        )
        await self.drain()
        done = await get_service(self.app, out.id)
        assert done.status == "active"
        assert done.server is not None
        return int(done.server.external_id or 0)

    def credits(self, client: int = 501) -> list[Any]:
        users = {u.id for u in self.sim.users.values() if u.ext_relation_id == client}
        return [c for c in self.sim.credits.values() if c.user_id in users]


@pytest.fixture
async def billing(db_url: str, tmp_path: Path) -> AsyncIterator[Billing]:
    sim, asgi = make_sim()
    whmcs = FakeWhmcs()
    app = await AppContext.create(
        fast_settings(
            db_url,
            tmp_path,
            whmcs_url="https://billing.example.com",
            whmcs_api_identifier="id",
            whmcs_api_secret="secret",
        )
    )
    app.extras[EXTRAS_TRANSPORTS] = {PANEL: TimedASGITransport(asgi, read_timeout=1.0)}
    app.extras[EXTRAS_WHMCS_TRANSPORT] = httpx2.MockTransport(whmcs.handle)
    await add_vf_platform(app, ACTOR)
    for name, package, settings in (
        ("vf-1g", 1, {}),
        ("vf-hourly", 1, {"self_service_mode": "hourly", "topoff_threshold": 5.0, "topoff_amount": 20.0}),
    ):
        await products.create_product(
            app,
            {
                "name": name,
                "platform": "vf",
                "placement": {"hypervisor_group_id": 1},
                "plan": {"package_id": package},
                "settings": settings,
            },
            ACTOR,
        )
    try:
        yield Billing(app, sim, whmcs)
    finally:
        await app.close()


def row(rows: list[dict[str, Any]], billing_id: str) -> dict[str, Any]:
    return next(r for r in rows if r["serviceid"] == billing_id)


async def test_usage_sync_stores_what_usage_update_answers(billing: Billing) -> None:
    sid = await billing.active_service("7001")
    server = billing.sim.servers[sid]
    server.rx_bytes, server.tx_bytes = 300 * 1024**2, 200 * 1024**2
    assert row(await lifecycle.usage(billing.app), "7001") == {"serviceid": "7001"}, "nothing before a run"

    result = await run_task(billing.app, "usage_sync", force=True)
    assert result is not None
    assert result.errors == 0
    first = row(await lifecycle.usage(billing.app), "7001")
    assert first["bwusage"] == 500
    assert first["bwlimit"] == server.traffic * 1024
    assert first["disklimit"] == server.storage * 1024
    assert first["diskusage"] == server.storage * 1024 // 5  # the guest agent's used bytes

    # the traffic endpoint failing leaves the bandwidth figures alone while disk still updates
    server.rx_bytes = 900 * 1024**2
    billing.sim.faults.append(Fault(kind="status", path=f"/servers/{sid}/traffic", status=500, times=None))
    again = await run_task(billing.app, "usage_sync", force=True)
    assert again is not None
    assert again.details["partial"] == 1
    assert row(await lifecycle.usage(billing.app), "7001") == first

    billing.sim.faults.clear()
    server.traffic = 0  # unmetered
    await run_task(billing.app, "usage_sync", force=True)
    latest = row(await lifecycle.usage(billing.app), "7001")
    assert latest["bwusage"] == 1100
    assert latest["bwlimit"] == 0


async def test_usage_keeps_figures_when_the_panel_is_down(billing: Billing) -> None:
    await billing.active_service("7002")
    await run_task(billing.app, "usage_sync", force=True)
    before = row(await lifecycle.usage(billing.app), "7002")
    billing.sim.faults.append(Fault(kind="status", path="/servers", status=503, times=None))
    result = await run_task(billing.app, "usage_sync", force=True)
    assert result is not None
    assert result.errors >= 1
    assert row(await lifecycle.usage(billing.app), "7002") == before


async def test_credit_needs_a_paid_invoice_and_credits_once(billing: Billing) -> None:
    await billing.active_service("7003")
    raised = await credit.request_credit(billing.app, "7003", 12.5)
    assert raised.status == "pending"
    (created,) = billing.whmcs.actions("CreateInvoice")
    assert created["userid"] == "501"
    assert created["itemamount1"] == "12.50"
    assert billing.credits() == [], "an unpaid invoice must not credit the panel"

    unpaid = await credit.settle_invoice(billing.app, raised.invoice_id, status="Unpaid")
    assert unpaid["credited"] is False
    assert billing.credits() == []

    call = bridge.BridgeCall.from_payload(
        "hook", "InvoicePaid", {"extra": {"invoice": {"id": raised.invoice_id, "status": "Paid"}}}, ip=None
    )
    paid = await bridge.handle(billing.app, call)
    assert paid["credited"] is True
    again = await bridge.handle(billing.app, call)
    assert again["credited"] is False
    assert again["reason"] == "already credited"
    (given,) = billing.credits()
    assert given.tokens == 12.5
    assert given.reference_1 == raised.invoice_id

    stranger = bridge.BridgeCall.from_payload(
        "hook", "InvoicePaid", {"extra": {"invoice": {"id": 99999, "status": "Paid"}}}, ip=None
    )
    assert (await bridge.handle(billing.app, stranger))["credited"] is False
    assert len(billing.credits()) == 1


async def test_client_area_credit_raises_an_invoice_only(billing: Billing) -> None:
    await billing.active_service("7004")
    call = bridge.BridgeCall.from_payload(
        "client",
        "credit",
        {"params": {"serviceid": "7004", "userid": "501"}, "extra": {"amount": "10"}},
        ip=None,
    )
    answer = await bridge.handle(billing.app, call)
    assert answer["status"] == "pending"
    assert f"#{answer['invoice_id']}" in answer["message"]
    assert billing.credits() == []
    with pytest.raises(Invalid):
        await credit.request_credit(billing.app, "7004", -5)


async def test_topoff_pays_from_the_whmcs_balance(billing: Billing) -> None:
    await billing.active_service("7005", product="vf-hourly")
    billing.whmcs.balances[501] = 50.0
    result = await run_task(billing.app, "usage_sync", force=True)
    assert result is not None
    (applied,) = billing.whmcs.actions("ApplyCredit")
    assert applied["amount"] == "20.00"
    (given,) = billing.credits()
    assert given.tokens == 20.0
    assert given.reference_1 == int(applied["invoiceid"])
    assert billing.whmcs.balances[501] == 30.0

    await run_task(billing.app, "usage_sync", force=True)  # panel balance 20 >= threshold 5
    assert len(billing.whmcs.actions("CreateInvoice")) == 1
    assert len(billing.credits()) == 1


async def test_topoff_without_balance_waits_for_payment(billing: Billing) -> None:
    await billing.active_service("7006", product="vf-hourly")
    await run_task(billing.app, "usage_sync", force=True)
    (created,) = billing.whmcs.actions("CreateInvoice")
    assert billing.whmcs.actions("ApplyCredit") == []
    assert billing.credits() == [], "no credit before the invoice is paid"

    await run_task(billing.app, "usage_sync", force=True)
    assert len(billing.whmcs.actions("CreateInvoice")) == 1, "an unpaid top-off invoice is not raised twice"

    invoice_id = max(billing.whmcs.invoices)
    settled = await credit.settle_invoice(billing.app, invoice_id, status="Paid")
    assert settled["credited"] is True
    assert [c.tokens for c in billing.credits()] == [20.0]
    assert created["userid"] == "501"


async def test_panel_refusal_keeps_the_invoice_payable(billing: Billing) -> None:
    await billing.active_service("7007")
    raised = await credit.request_credit(billing.app, "7007", 5)
    billing.sim.faults.append(Fault(kind="status", method="POST", path="/selfService/credit", status=422))
    with pytest.raises(Exception, match="refused"):
        await credit.settle_invoice(billing.app, raised.invoice_id, status="Paid")
    assert billing.credits() == []
    retried = await credit.settle_invoice(billing.app, raised.invoice_id, status="Paid")
    assert retried["credited"] is True
    assert len(billing.credits()) == 1
