"""Billing completeness through the real PHP module on WHMCS tables in MariaDB, against a running
vpsbridge (WHMCS API pointed at a recording stand-in) and the VirtFusion simulator.

Proves: the daily ``usage_sync`` figures reach ``tblhosting`` through ``UsageUpdate``; a paid
self-service credit invoice forwarded by the ``InvoicePaid`` hook credits the panel once, with the
invoice id as reference; a stock-controlled product's ``qty`` is written by the stock hook and drops
after a provision on the recalculation the ``AfterModuleCreate`` hook triggers.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx2
import pytest
from bridge_support import Stack, Whmcs, mariadb_database, start_stack
from test_bridge_php import new_order, new_product, os_template, params, wait_for_status
from whmcs_site import WhmcsSite, serve_whmcs_site

from vpsbridge.billing.whmcs.signing import signed_headers


class FakeWhmcsApi:
    """``includes/api.php`` answering success to everything and numbering invoices it is asked for."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []
        self.next_invoice = 500
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = dict(parse_qsl(self.rfile.read(int(self.headers["Content-Length"] or 0)).decode()))
                api.calls.append(form)
                body: dict[str, Any] = {"result": "success"}
                if form.get("action") == "CreateInvoice":
                    api.next_invoice += 1
                    body["invoiceid"] = api.next_invoice
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeWhmcsApi]:
    api = FakeWhmcsApi()
    yield api
    api.server.shutdown()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake_api: FakeWhmcsApi) -> Iterator[Stack]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VPSBRIDGE_WHMCS_URL", fake_api.url)
        mp.setenv("VPSBRIDGE_WHMCS_API_IDENTIFIER", "e2e")
        mp.setenv("VPSBRIDGE_WHMCS_API_SECRET", "e2e-secret")
        # one simulated day is 20 s; at the stack's time scale (0.05) usage_sync runs every second
        mp.setenv("VPSBRIDGE_TASK_INTERVALS", json.dumps({"usage_sync": 20}))
        yield from start_stack(tmp_path_factory.mktemp("billing-stack"))


@pytest.fixture(scope="module")
def whmcs(stack: Stack) -> Iterator[Whmcs]:
    for database in mariadb_database():
        w = Whmcs(database)
        assert w.run({"cmd": "setup"})["result"]["ok"]
        w.insert(
            "tblservers", name="vpsbridge", hostname=stack.bridge, type="vpsbridge", accesshash=stack.secret
        )
        yield w


def active_service(stack: Stack, whmcs: Whmcs, client: int) -> tuple[int, dict[str, Any]]:
    pid = new_product(whmcs)
    _, (service,) = new_order(whmcs, client=client, pid=pid)
    p = params(stack, whmcs, service, os_id=os_template(stack))
    assert whmcs.module("CreateAccount", p)["result"] == "success"
    wait_for_status(stack, whmcs, p, "active")
    return service, p


def test_usage_update_writes_the_figures_usage_sync_collected(stack: Stack, whmcs: Whmcs) -> None:
    service, _ = active_service(stack, whmcs, client=611)
    server_params = {"serverid": 1, "serverhostname": stack.bridge, "serveraccesshash": stack.secret}
    deadline = time.monotonic() + 30
    row: dict[str, Any] = {}
    while time.monotonic() < deadline:
        assert whmcs.module("UsageUpdate", server_params)["result"] == "success"
        row = whmcs.sql("SELECT * FROM tblhosting WHERE id = ?", service)[0]
        if row["disklimit"] > 0 and row["diskusage"] > 0:
            break
        time.sleep(0.5)
    sim_server = stack.sim_get(f"/servers/{server_id(whmcs, stack, service)}")["data"]
    storage_gb = int(sim_server["settings"]["resources"]["storage"])
    assert row["disklimit"] == storage_gb * 1024, row
    assert row["diskusage"] == storage_gb * 1024 // 5, row  # the guest agent's used bytes
    assert row["bwlimit"] == int(sim_server["settings"]["resources"]["traffic"]) * 1024
    assert row["lastupdate"] is not None


def server_id(whmcs: Whmcs, stack: Stack, service: int) -> str:
    p = {"serviceid": service, "serverhostname": stack.bridge, "serveraccesshash": stack.secret}
    tab = whmcs.module("AdminServicesTabFields", p)["result"]
    import re

    found = re.search(r'value="(\d+)"', tab["Server ID"])
    assert found, tab
    return found.group(1)


def panel_credit(stack: Stack, client: int) -> float:
    return float(
        stack.sim_get(f"/selfService/hourlyStats/byUserExtRelationId/{client}")["data"]["credit"]["value"]
    )


def test_invoice_paid_hook_credits_the_panel_once(stack: Stack, whmcs: Whmcs, fake_api: FakeWhmcsApi) -> None:
    service, _ = active_service(stack, whmcs, client=612)
    path = "/bridge/v1/client/credit"
    body = json.dumps({"params": {"serviceid": service, "userid": 612}, "extra": {"amount": "15"}}).encode()
    headers = signed_headers(stack.secret, "POST", path, body, nonce=uuid.uuid4().hex)
    answer = httpx2.post(stack.bridge + path, content=body, headers=headers, timeout=20).json()
    invoice = int(answer["invoice_id"])
    assert [c for c in fake_api.calls if c["action"] == "CreateInvoice"][-1]["userid"] == "612"
    before = panel_credit(stack, 612)

    whmcs.sql(
        "INSERT INTO tblinvoices (id, userid, status, total) VALUES (?, ?, ?, ?)", invoice, 612, "Unpaid", 15
    )
    whmcs.hook("InvoicePaid", {"invoiceid": invoice})
    assert panel_credit(stack, 612) == before, "an unpaid invoice credited the panel"

    whmcs.sql("UPDATE tblinvoices SET status = 'Paid' WHERE id = ?", invoice)
    first = whmcs.hook("InvoicePaid", {"invoiceid": invoice})
    assert first["activity"] == [], first["activity"]
    assert panel_credit(stack, 612) == before + 15
    whmcs.hook("InvoicePaid", {"invoiceid": invoice})  # WHMCS re-running the hook
    assert panel_credit(stack, 612) == before + 15


def test_stock_quantity_drops_after_a_provision(stack: Stack, whmcs: Whmcs) -> None:
    pid = new_product(whmcs)
    whmcs.hook("AfterCronJob", {})
    before = whmcs.sql("SELECT qty FROM tblproducts WHERE id = ?", pid)[0]["qty"]
    assert before > 0

    _, (service,) = new_order(whmcs, client=613, pid=pid)
    p = params(stack, whmcs, service, os_id=os_template(stack))
    assert whmcs.module("CreateAccount", p)["result"] == "success"
    whmcs.hook("AfterModuleCreate", {"params": p})
    after = whmcs.sql("SELECT qty FROM tblproducts WHERE id = ?", pid)[0]["qty"]
    assert after < before, f"stock stayed at {before} after a provision"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, whmcs: Whmcs) -> Iterator[WhmcsSite]:
    yield from serve_whmcs_site(tmp_path_factory.mktemp("whmcs-site") / "whmcs", whmcs.env["HARNESS_DB"])


def test_add_credit_form_only_for_self_service_products(stack: Stack, whmcs: Whmcs) -> None:
    for mode, shown in (("0", False), ("1|Hourly", True)):
        pid = new_product(whmcs, configoption5=mode)
        _, (service,) = new_order(whmcs, client=615, pid=pid)
        p = params(stack, whmcs, service, os_id=os_template(stack))
        assert whmcs.module("CreateAccount", p)["result"] == "success"
        answer = whmcs.run({"cmd": "clientarea", "params": p})
        assert answer["result"]["templateVariables"]["vpsbridgeSelfService"] is shown
        html = answer["html"]
        assert 'id="vpsbridge-overview"' in html
        assert ('id="vpsbridge-credit"' in html) is shown, html
        if shown:
            assert '<input type="hidden" name="action" value="credit">' in html
            assert f'<input type="hidden" name="serviceid" value="{service}">' in html
            assert 'name="amount"' in html


def test_add_credit_through_client_php_raises_an_invoice(
    stack: Stack, whmcs: Whmcs, fake_api: FakeWhmcsApi, site: WhmcsSite
) -> None:
    service, _ = active_service(stack, whmcs, client=614)
    url = f"{site.url}/modules/servers/vpsbridge/client.php"
    form = {"action": "credit", "serviceid": str(service), "amount": "7.5"}
    origin = {"Origin": site.url}
    invoices_before = len([c for c in fake_api.calls if c["action"] == "CreateInvoice"])

    # Not signed in, another client, or a cross-site post: refused before anything is forwarded.
    assert httpx2.post(url, data=form, headers=origin, timeout=20).status_code == 401
    stranger = httpx2.post(url, data=form, headers=origin, cookies={"HARNESS_UID": "999"}, timeout=20)
    assert stranger.status_code == 404
    forged = httpx2.post(
        url, data=form, headers={"Origin": "https://evil.example"}, cookies={"HARNESS_UID": "614"}, timeout=20
    )
    assert forged.status_code == 403
    assert len([c for c in fake_api.calls if c["action"] == "CreateInvoice"]) == invoices_before

    answer = httpx2.post(url, data=form, headers=origin, cookies={"HARNESS_UID": "614"}, timeout=20)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    created = [c for c in fake_api.calls if c["action"] == "CreateInvoice"]
    assert len(created) == invoices_before + 1
    assert created[-1]["userid"] == "614"
    assert float(created[-1]["itemamount1"]) == 7.5
    assert body["invoice_id"] == fake_api.next_invoice
    assert f"Invoice #{body['invoice_id']}" in body["message"]

    # The same form without JavaScript: sent on to the invoice to pay.
    plain = httpx2.post(
        url, data={**form, "go": "1"}, headers=origin, cookies={"HARNESS_UID": "614"}, timeout=20
    )
    assert plain.status_code == 303, plain.text
    assert plain.headers["location"] == f"../../../viewinvoice.php?id={fake_api.next_invoice}"
