"""The portal's self-service billing panel against the VirtFusion simulator and a mock WHMCS API
(SQLite and PostgreSQL).

Proves: the panel shows the client's credit balance (credit minus hourly usage), this period's
hours and cost and a report line per server; "Add credit" raises one WHMCS invoice (recorded once,
the panel not credited before payment) and answers where to pay it; a form sent twice gives the
same invoice; amounts are checked against the product's bounds; WHMCS down gives a clear error,
records nothing, and the same form works once WHMCS is back; without WHMCS credentials the form
is replaced by a sentence and nothing is created; platforms without self-service show no panel.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import portal_support
import pytest
from portal_support import PortalWorld
from provisioning_support import ACTOR, fast_settings
from sqlalchemy import func, select, update
from test_usage_credit import FakeWhmcs
from virtfusion_support import PANEL, TimedASGITransport, add_vf_platform, make_sim

from vpsbridge.billing.whmcs import credit  # importing it registers the portal's credit issuer
from vpsbridge.billing.whmcs.report import EXTRAS_WHMCS_TRANSPORT
from vpsbridge.jobs.worker import Worker
from vpsbridge.services import portal, portal_billing, products
from vpsbridge.services.context import AppContext
from vpsbridge.services.credit_requests import BillingFailed, BillingUnavailable, register_credit_issuer
from vpsbridge.services.errors import Invalid
from vpsbridge.services.provisioning import create_service
from vpsbridge.services.provisioning.drivers import EXTRAS_TRANSPORTS
from vpsbridge.sim.virtfusion import Fault, VirtFusionState
from vpsbridge.sim.virtfusion import self_service as sim_billing
from vpsbridge.sim.virtfusion.state import Credit
from vpsbridge.store.models import AuditLog, CreditInvoice, Product
from vpsbridge.web.app import create_app

ORIGIN = "https://portal.test"
WHMCS = "https://billing.example.com"
KEY = "form-key-0123456789abcdef"

world = portal_support.world
pworld = portal_support.pworld


class FlakyWhmcs(FakeWhmcs):
    """The mock WHMCS API, with a switch that makes it unreachable."""

    down: bool = False

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        if self.down:
            raise httpx2.ConnectError("connection refused", request=request)
        return super().handle(request)


@dataclass
class Hourly:
    app: AppContext
    sim: VirtFusionState
    whmcs: FlakyWhmcs
    service_id: int
    server_id: int

    async def owned(self) -> portal.OwnedService:
        return await portal.owned_service(self.app, "501", self.service_id)

    async def invoices(self) -> int:
        async with self.app.db.session() as session:
            return int((await session.execute(select(func.count()).select_from(CreditInvoice))).scalar_one())

    def client(self) -> httpx2.AsyncClient:
        web = create_app(context=self.app, migrate=False)
        web.state.ctx = self.app
        return httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=web), base_url=ORIGIN, follow_redirects=False
        )

    async def sign_in(self, client: httpx2.AsyncClient) -> str:
        link = await portal.mint_portal_link(self.app, self.service_id, ACTOR, base_url=ORIGIN)
        answer = await client.get(link.url.removeprefix(ORIGIN))
        page = await client.get(answer.headers["location"])
        assert page.status_code == 200, page.text
        return page.text.split('name="csrf-token" content="')[1].split('"')[0]


async def make_hourly(db_url: str, tmp_path: Path, *, whmcs: bool = True) -> tuple[Hourly, AppContext]:
    sim, asgi = make_sim()
    fake = FlakyWhmcs()
    extra = {"whmcs_url": WHMCS, "whmcs_api_identifier": "id", "whmcs_api_secret": "secret"} if whmcs else {}
    app = await AppContext.create(fast_settings(db_url, tmp_path, **extra))
    app.extras[EXTRAS_TRANSPORTS] = {PANEL: TimedASGITransport(asgi, read_timeout=1.0)}
    app.extras[EXTRAS_WHMCS_TRANSPORT] = httpx2.MockTransport(fake.handle)
    await add_vf_platform(app, ACTOR)
    await products.create_product(
        app,
        {
            "name": "vf-hourly",
            "platform": "vf",
            "placement": {"hypervisor_group_id": 1},
            "plan": {"package_id": 1},
            "settings": {
                "self_service_mode": "hourly",
                "self_service_credit_min": 10,
                "self_service_credit_max": 200,
            },
        },
        ACTOR,
    )
    out = await create_service(
        app,
        {
            "billing_service_id": "8101",
            "client_id": "501",
            "client": {"name": "Ada Lovelace", "email": "ada@example.net"},
            "product": "vf-hourly",
            "os_template": "1",
            "hostname": "hourly.example.net",
        },
        ACTOR,
    )
    await Worker(app, concurrency=4, periodic=False, wakeup=False).run_until_idle(timeout=30)
    user = sim.user_by_ext(501)
    # Provisioning created the client's panel user in the product's self-service mode (hourly).
    assert user.self_service == 1
    (server,) = [s for s in sim.servers.values() if s.owner_id == user.id]
    server.created = dt.datetime.now(dt.UTC) - dt.timedelta(hours=30, minutes=30)  # mid-hour: no edge
    sim.credits[1] = Credit(id=1, user_id=user.id, tokens=50.0, reference_1=None, reference_2=None)
    return Hourly(app, sim, fake, out.id, server.id), app


@pytest.fixture
async def hourly(db_url: str, tmp_path: Path) -> AsyncIterator[Hourly]:
    env, app = await make_hourly(db_url, tmp_path)
    try:
        yield env
    finally:
        await app.close()


@pytest.fixture
async def unbilled(db_url: str, tmp_path: Path) -> AsyncIterator[Hourly]:
    env, app = await make_hourly(db_url, tmp_path, whmcs=False)
    try:
        yield env
    finally:
        await app.close()


def expected_usage(env: Hourly) -> tuple[int, float]:
    """What the simulator bills this month for the service's server: (hours, cost)."""
    now = dt.datetime.now(dt.UTC)
    server = env.sim.servers[env.server_id]
    hours = sim_billing.billed_hours(server, sim_billing.period(now), now)
    return hours, round(hours * sim_billing.hourly_rate(server), 2)


async def test_panel_shows_balance_usage_and_report(hourly: Hourly) -> None:
    owned = await hourly.owned()
    assert portal_billing.enabled(owned)
    panel = await portal_billing.billing_panel(hourly.app, owned)
    hours, cost = expected_usage(hourly)
    assert hours > 0
    assert not panel.incomplete
    assert panel.usage is not None
    assert panel.usage["hours"] == hours
    assert panel.usage["cost"] == pytest.approx(cost)
    spent_total = sim_billing.spent(hourly.sim, hourly.sim.user_by_ext(501), dt.datetime.now(dt.UTC))
    assert panel.balance == pytest.approx(50.0 - spent_total, abs=0.01)
    assert panel.report is not None
    (line,) = panel.report["lines"]
    assert line["hours"] == hours
    assert line["cost"] == pytest.approx(cost)
    assert panel.report["total_cost"] == pytest.approx(cost)
    assert panel.can_add_credit
    assert (panel.bounds.minimum, panel.bounds.maximum) == (10.0, 200.0)

    async with hourly.client() as client:
        await hourly.sign_in(client)
        overview = await client.get(f"/portal/s/{hourly.service_id}")
        assert f'hx-get="/portal/s/{hourly.service_id}/billing"' in overview.text
        fragment = await client.get(f"/portal/s/{hourly.service_id}/billing")
        assert fragment.status_code == 200
        assert "data-billing-balance" in fragment.text
        assert f"{cost:.2f}" in fragment.text
        assert 'name="request"' in fragment.text
        assert "data-credit-form" in fragment.text


async def test_a_part_the_platform_does_not_answer_is_missing_and_not_cached(hourly: Hourly) -> None:
    owned = await hourly.owned()
    hourly.sim.faults.append(Fault(kind="status", path="/selfService/report", status=500, times=None))
    partial = await portal_billing.billing_panel(hourly.app, owned)
    assert partial.incomplete
    assert partial.report is None
    assert partial.balance is not None
    assert partial.usage is not None
    async with hourly.client() as client:
        await hourly.sign_in(client)
        fragment = await client.get(f"/portal/s/{hourly.service_id}/billing")
        assert fragment.status_code == 200
        assert "data-billing-balance" in fragment.text
        assert "data-billing-report" not in fragment.text
    hourly.sim.faults.clear()
    complete = await portal_billing.billing_panel(hourly.app, owned)
    assert not complete.incomplete
    assert complete.report is not None


async def test_add_credit_raises_one_invoice_and_links_to_it(hourly: Hourly) -> None:
    async with hourly.client() as client:
        token = await hourly.sign_in(client)
        headers = {"Origin": ORIGIN, "X-CSRF-Token": token, "HX-Request": "true"}
        url = f"/portal/s/{hourly.service_id}/billing/credit"
        answer = await client.post(url, data={"amount": "25,50", "request": KEY}, headers=headers)
        assert answer.status_code == 200, answer.text
        (created,) = hourly.whmcs.actions("CreateInvoice")
        invoice = int(max(hourly.whmcs.invoices))
        assert created["itemamount1"] == "25.50"
        assert created["userid"] == "501"
        assert f"{WHMCS}/viewinvoice.php?id={invoice}" in answer.text
        assert "data-credit-issued" in answer.text
        assert hourly.sim.credits.keys() == {1}, "no credit before the invoice is paid"

        # the same form again (after the 5 s limit) answers the same invoice, raises nothing new
        again = await portal_billing.request_credit(
            hourly.app, await hourly.owned(), "25.50", ACTOR, request_key=KEY
        )
        assert again.invoice_id == invoice
        assert len(hourly.whmcs.actions("CreateInvoice")) == 1
        assert await hourly.invoices() == 1

        # within the 5 s limit: refused, shown in the panel
        limited = await client.post(url, data={"amount": "30", "request": KEY + "x"}, headers=headers)
        assert 'data-credit-problem="rate_limited"' in limited.text
        assert len(hourly.whmcs.actions("CreateInvoice")) == 1

    async with hourly.app.db.session() as session:
        row = (await session.execute(select(CreditInvoice))).scalar_one()
        assert (row.invoice_id, row.amount, row.status, row.source) == (invoice, 25.5, "pending", "client")
        audit = (
            await session.execute(select(AuditLog).where(AuditLog.action == "service.credit_requested"))
        ).scalar_one()
        assert (audit.actor_type, audit.actor_id) == ("client", "501")
        assert audit.details == {"invoice_id": invoice, "amount": 25.5}


async def test_json_callers_get_the_invoice(hourly: Hourly) -> None:
    async with hourly.client() as client:
        token = await hourly.sign_in(client)
        headers = {"Origin": ORIGIN, "X-CSRF-Token": token, "Accept": "application/json"}
        answer = await client.post(
            f"/portal/s/{hourly.service_id}/billing/credit",
            data={"amount": "40", "request": KEY},
            headers=headers,
        )
        body = answer.json()
        assert answer.status_code == 200
        assert body["status"] == "pending"
        assert body["pay_url"] == f"{WHMCS}/viewinvoice.php?id={body['invoice_id']}"


@pytest.mark.parametrize("amount", ["abc", "0", "9.99", "200.01", "10.001", "-5", ""])
async def test_amounts_outside_the_bounds_are_refused(hourly: Hourly, amount: str) -> None:
    owned = await hourly.owned()
    with pytest.raises(portal_billing.AmountInvalid):
        await portal_billing.request_credit(hourly.app, owned, amount, ACTOR, request_key=KEY)
    assert hourly.whmcs.actions("CreateInvoice") == []


def test_amount_parsing_and_default_bounds() -> None:
    bounds = portal_billing.CreditBounds(10.0, 200.0)
    assert portal_billing.parse_amount(" 12,5 ", bounds) == 12.5
    assert portal_billing.parse_amount("200", bounds) == 200.0
    owned = portal.OwnedService(
        id=1,
        client_id="1",
        billing_service_id="1",
        status="active",
        product_name=None,
        product_settings={"self_service_credit_max": "not a number"},
        plan={},
        server_id=1,
        platform_id=1,
        platform_type="virtfusion",
        platform_name=None,
        external_id="1",
        node=None,
        hostname=None,
        name=None,
        server_state=None,
        created_at=dt.datetime.now(dt.UTC),
    )
    assert portal_billing.credit_bounds(owned) == portal_billing.CreditBounds(
        portal_billing.DEFAULT_CREDIT_MIN, portal_billing.DEFAULT_CREDIT_MAX
    )


async def test_a_refused_amount_keeps_what_was_typed(hourly: Hourly) -> None:
    async with hourly.client() as client:
        token = await hourly.sign_in(client)
        headers = {"Origin": ORIGIN, "X-CSRF-Token": token, "HX-Request": "true"}
        answer = await client.post(
            f"/portal/s/{hourly.service_id}/billing/credit",
            data={"amount": "5", "request": KEY},
            headers=headers,
        )
        assert 'data-credit-problem="amount_invalid"' in answer.text
        assert 'value="5"' in answer.text
        assert "10.00" in answer.text
        assert "200.00" in answer.text
        plain = await client.post(
            f"/portal/s/{hourly.service_id}/billing/credit",
            data={"amount": "x", "request": KEY},
            headers={"Origin": ORIGIN, "X-CSRF-Token": token, "Accept": "application/json"},
        )
        assert plain.status_code in (422, 429)
    assert await hourly.invoices() == 0


async def test_whmcs_down_records_nothing_and_the_form_works_later(hourly: Hourly) -> None:
    owned = await hourly.owned()
    hourly.whmcs.down = True
    with pytest.raises(BillingFailed, match="client area"):
        await portal_billing.request_credit(hourly.app, owned, "20", ACTOR, request_key=KEY)
    assert await hourly.invoices() == 0
    assert hourly.whmcs.invoices == {}

    hourly.whmcs.down = False
    first = await portal_billing.request_credit(hourly.app, owned, "20", ACTOR, request_key=KEY)
    second = await portal_billing.request_credit(hourly.app, owned, "20", ACTOR, request_key=KEY)
    assert first.invoice_id == second.invoice_id
    assert await hourly.invoices() == 1
    assert len(hourly.whmcs.invoices) == 1

    hourly.whmcs.down = True
    async with hourly.client() as client:
        token = await hourly.sign_in(client)
        headers = {"Origin": ORIGIN, "X-CSRF-Token": token, "HX-Request": "true"}
        answer = await client.post(
            f"/portal/s/{hourly.service_id}/billing/credit",
            data={"amount": "33", "request": KEY + "y"},
            headers=headers,
        )
        assert 'data-credit-problem="billing_failed"' in answer.text
        assert 'value="33"' in answer.text
    assert await hourly.invoices() == 1


async def test_without_whmcs_credentials_nothing_is_created(unbilled: Hourly) -> None:
    owned = await unbilled.owned()
    panel = await portal_billing.billing_panel(unbilled.app, owned)
    assert not panel.can_add_credit
    assert panel.balance is not None
    with pytest.raises(BillingUnavailable):
        await portal_billing.request_credit(unbilled.app, owned, "20", ACTOR, request_key=KEY)
    async with unbilled.client() as client:
        token = await unbilled.sign_in(client)
        fragment = await client.get(f"/portal/s/{unbilled.service_id}/billing")
        assert "data-credit-unavailable" in fragment.text
        assert "data-credit-form" not in fragment.text
        answer = await client.post(
            f"/portal/s/{unbilled.service_id}/billing/credit",
            data={"amount": "20", "request": KEY},
            headers={"Origin": ORIGIN, "X-CSRF-Token": token, "Accept": "application/json"},
        )
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "billing_unavailable"
    assert await unbilled.invoices() == 0
    assert unbilled.whmcs.calls == []


async def test_platforms_without_self_service_show_no_panel(pworld: PortalWorld) -> None:
    assert portal_billing.offered("virtfusion")
    assert not portal_billing.offered("dummy")
    assert not portal_billing.offered("proxmox")
    async with pworld.ctx.db.session() as session:
        await session.execute(update(Product).values(settings={"self_service_mode": "hourly"}))
    async with portal_support.app_client(pworld) as client:
        token = await portal_support.sign_in(client, pworld, pworld.mine)
        page = await client.get(f"/portal/s/{pworld.mine}")
        assert 'id="billing"' not in page.text
        assert (await client.get(f"/portal/s/{pworld.mine}/billing")).status_code == 404
        answer = await client.post(
            f"/portal/s/{pworld.mine}/billing/credit",
            data={"amount": "20", "request": KEY},
            headers={"Origin": portal_support.ORIGIN, "X-CSRF-Token": token},
        )
        assert answer.status_code == 404


async def test_without_javascript_the_form_answers_a_page_with_the_link(hourly: Hourly) -> None:
    async with hourly.client() as client:
        token = await hourly.sign_in(client)
        answer = await client.post(
            f"/portal/s/{hourly.service_id}/billing/credit",
            data={"amount": "15", "request": KEY, "csrf_token": token},
            headers={"Origin": ORIGIN},
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        invoice = max(hourly.whmcs.invoices)
        assert f'href="{WHMCS}/viewinvoice.php?id={invoice}"' in answer.text
        assert f'href="/portal/s/{hourly.service_id}#billing"' in answer.text


async def test_an_old_form_and_a_refusal_by_billing_are_explained(hourly: Hourly) -> None:
    class Refusing:
        async def available(self, ctx: AppContext) -> bool:
            return True

        async def issue(self, ctx: AppContext, billing_service_id: str, amount: float, *, source: str) -> Any:
            raise Invalid("the service's client id 'x' is not a WHMCS client id")

    async with hourly.client() as client:
        token = await hourly.sign_in(client)
        headers = {"Origin": ORIGIN, "X-CSRF-Token": token, "HX-Request": "true"}
        url = f"/portal/s/{hourly.service_id}/billing/credit"
        expired = await client.post(url, data={"amount": "20", "request": "short"}, headers=headers)
        assert 'data-credit-problem="request_expired"' in expired.text

        refusing = Refusing()
        register_credit_issuer(refusing)
        try:
            owned = await hourly.owned()
            with pytest.raises(portal_billing.CreditRefused) as refused:
                await portal_billing.request_credit(hourly.app, owned, "20", ACTOR, request_key=KEY)
            assert "WHMCS client id" not in refused.value.message, "the staff reason stays in the log"
            assert refused.value.details == {}
        finally:
            register_credit_issuer(credit.PORTAL_ISSUER)
    assert await hourly.invoices() == 0
