"""The real PHP module under php-cli, on WHMCS tables in MariaDB, against a running vpsbridge and
the VirtFusion simulator: the whole lifecycle, order auto-accept, retries, security and failures."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from bridge_support import Stack, Whmcs, mariadb_database, start_stack
from stack import ADMIN as STACK_ADMIN

from vpsbridge.billing.whmcs.signing import signed_headers


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="module")
def whmcs(stack: Stack) -> Iterator[Whmcs]:
    for database in mariadb_database():
        w = Whmcs(database)
        assert w.run({"cmd": "setup"})["result"]["ok"]
        w.insert(
            "tblservers", name="vpsbridge", hostname=stack.bridge, type="vpsbridge", accesshash=stack.secret
        )
        yield w


def os_template(stack: Stack) -> str:
    categories = stack.sim_get("/media/templates/fromServerPackageSpec/1")["data"]
    return str(categories[0]["templates"][0]["id"])


def new_product(w: Whmcs, name: str | None = None, **settings: Any) -> int:
    values = {"configoption1": "vf", "configoption2": "1", "configoption3": "1", "configoption4": "1"}
    values.update(settings)
    return w.insert(
        "tblproducts",
        name=name or f"VPS {uuid.uuid4().hex[:6]}",
        servertype="vpsbridge",
        stockcontrol=1,
        qty=0,
        **values,
    )


def new_order(w: Whmcs, client: int, pid: int, count: int = 1) -> tuple[int, list[int]]:
    order = w.insert("tblorders", userid=client, status="Pending")
    services = [
        w.insert("tblhosting", userid=client, orderid=order, packageid=pid, server=1) for _ in range(count)
    ]
    return order, services


def params(stack: Stack, w: Whmcs, service: int, *, os_id: str | None, **extra: Any) -> dict[str, Any]:
    row = w.sql("SELECT * FROM tblhosting WHERE id = ?", service)[0]
    product = w.sql("SELECT * FROM tblproducts WHERE id = ?", row["packageid"])[0]
    p: dict[str, Any] = {
        "serviceid": service,
        "accountid": service,
        "userid": row["userid"],
        "pid": row["packageid"],
        "packageid": row["packageid"],
        "serverid": 1,
        "domain": f"vps{service}.example.net",
        "username": "",
        "password": "initialpass1",
        "moduletype": "vpsbridge",
        "producttype": "server",
        "serverhostname": stack.bridge,
        "serveraccesshash": stack.secret,
        "serversecure": "",
        "clientsdetails": {
            "firstname": "Ada",
            "lastname": "Lovelace",
            "email": f"ada{row['userid']}@example.net",
        },
        "customfields": {"Initial Operating System": os_id or "", "Initial SSH Key": ""},
        "configoptions": {},
    }
    for i in range(1, 10):
        p[f"configoption{i}"] = product[f"configoption{i}"] or ""
    p.update(extra)
    return p


def service_count(stack: Stack) -> int:
    return len(stack.sim_state()["servers"])


def test_connection_and_settings_loaders(stack: Stack, whmcs: Whmcs) -> None:
    p = {"serverhostname": stack.bridge, "serveraccesshash": stack.secret, "serversecure": ""}
    assert whmcs.module("TestConnection", p)["result"] == {"success": True, "error": ""}
    assert "vf" in whmcs.module("LoadPlatforms", {**p, "configoption1": "vf"})["result"]
    groups = whmcs.module("LoadGroups", {**p, "configoption1": "vf"})["result"]
    assert groups
    assert all(isinstance(v, str) for v in groups.values())
    meta = whmcs.module("MetaData")["result"]
    assert meta["APIVersion"] == "1.1"
    assert list(whmcs.module("ConfigOptions")["result"])[:3] == ["platform", "group", "package"]


def test_bad_secret_is_refused_readably(stack: Stack, whmcs: Whmcs) -> None:
    p = {"serverhostname": stack.bridge, "serveraccesshash": "not-the-secret", "serversecure": ""}
    result = whmcs.module("TestConnection", p)["result"]
    assert result["success"] is False
    assert "bad signature" in result["error"]


def test_service_down_fails_readably_and_quickly(whmcs: Whmcs) -> None:
    from stack import free_port

    p = {"serverhostname": f"http://127.0.0.1:{free_port()}", "serveraccesshash": "x" * 32, "serviceid": 1}
    answer = whmcs.module("SuspendAccount", p)
    assert answer["result"].startswith("vpsbridge is unreachable at http://127.0.0.1:")
    assert answer["seconds"] < 10


def test_expired_and_replayed_requests_are_refused(stack: Stack) -> None:
    path = "/bridge/v1/module/TestConnection"
    body = b'{"params": {}}'
    old = signed_headers(
        stack.secret, "POST", path, body, nonce=uuid.uuid4().hex, timestamp=int(time.time()) - 301
    )
    response = httpx2.post(stack.bridge + path, content=body, headers=old)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "expired"

    fresh = signed_headers(stack.secret, "POST", path, body, nonce=uuid.uuid4().hex)
    assert httpx2.post(stack.bridge + path, content=body, headers=fresh).status_code == 200
    again = httpx2.post(stack.bridge + path, content=body, headers=fresh)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "replayed"


def test_whole_lifecycle_with_a_repeated_create(stack: Stack, whmcs: Whmcs) -> None:
    pid = new_product(whmcs)
    _, (service,) = new_order(whmcs, client=101, pid=pid)
    p = params(stack, whmcs, service, os_id=os_template(stack))
    before = service_count(stack)

    created = whmcs.module("CreateAccount", p)
    assert created["result"] == "success", created
    assert created["seconds"] < 15
    assert service_count(stack) == before + 1
    # the module stripped the Eloquent model and never logged the secret
    assert all(stack.secret not in entry for entry in created["modulelog"])

    again = whmcs.module("CreateAccount", p)
    assert again["result"] == "success"
    assert service_count(stack) == before + 1, "a repeated CreateAccount created a second server"

    # the product custom fields the module needs exist now
    names = {r["fieldname"] for r in whmcs.sql("SELECT fieldname FROM tblcustomfields WHERE relid = ?", pid)}
    assert names == {"Initial Operating System", "Initial SSH Key"}

    # admin tab shows the server, escaped
    tab = whmcs.module("AdminServicesTabFields", p)["result"]
    assert 'name="vpsbridge_server_id"' in tab["Server ID"]
    assert "<pre" in tab["Server JSON"]

    wait_for_status(stack, whmcs, p, "active")
    assert whmcs.module("SuspendAccount", p)["result"] == "success"
    assert whmcs.module("SuspendAccount", p)["result"] == "success"  # a WHMCS retry replays
    assert whmcs.module("UnsuspendAccount", p)["result"] == "success"
    # The client's sign-on button opens our portal with a one-time link that signs in once.
    sso = whmcs.module("ServiceSingleSignOn", p)["result"]
    assert sso["success"] is True
    assert sso["redirectTo"].startswith(stack.bridge + "/portal/sso?token=")
    portal = httpx2.get(sso["redirectTo"], follow_redirects=False, timeout=10)
    assert portal.status_code == 303
    assert portal.headers["location"].startswith("/portal/s/")
    assert httpx2.get(sso["redirectTo"], follow_redirects=False, timeout=10).status_code == 401
    # The platform's own panel is a separate client action.
    panel = client_call(stack, "panel", {"params": {"serviceid": service, "userid": 101}})
    assert panel.status_code == 200, panel.text
    assert panel.json()["redirect"].startswith(stack.sim)
    area = whmcs.module("ClientArea", p)["result"]
    assert area["tabOverviewModuleOutputTemplate"] == "templates/overview.tpl"
    assert area["templateVariables"]["vpsbridge"]["status"] in ("active", "provisioning")
    accounts = whmcs.module("ListAccounts", p)["result"]
    assert accounts["success"] is True
    assert accounts["accounts"]
    assert whmcs.module("TerminateAccount", p)["result"] == "success"


def client_call(stack: Stack, action: str, payload: dict[str, Any]) -> httpx2.Response:
    """What client.php forwards after its session and ownership checks: a signed client call."""
    path = f"/bridge/v1/client/{action}"
    body = json.dumps(payload).encode()
    headers = signed_headers(stack.secret, "POST", path, body, nonce=uuid.uuid4().hex)
    return httpx2.post(stack.bridge + path, content=body, headers=headers, timeout=10)


def test_admin_sign_on_opens_the_operator_console(stack: Stack, whmcs: Whmcs) -> None:
    pid = new_product(whmcs)
    _, (service,) = new_order(whmcs, client=505, pid=pid)
    p = params(stack, whmcs, service, os_id=os_template(stack))
    known = whmcs.insert("tbladmins", username=STACK_ADMIN)
    stranger = whmcs.insert("tbladmins", username="intern")

    sso = whmcs.module("AdminSingleSignOn", p, session={"adminid": known})["result"]
    assert sso["success"] is True, sso
    assert sso["redirectTo"].startswith(stack.bridge + "/admin/sso?token=")
    console = httpx2.get(sso["redirectTo"], follow_redirects=False, timeout=10)
    assert console.status_code == 303
    assert console.headers["location"] == "/admin/"
    assert "set-cookie" in console.headers
    assert httpx2.get(sso["redirectTo"], follow_redirects=False, timeout=10).status_code == 403

    refused = whmcs.module("AdminSingleSignOn", p, session={"adminid": stranger})["result"]
    assert refused["success"] is False
    assert "no active operator account named 'intern'" in refused["errorMsg"]
    nobody = whmcs.module("AdminSingleSignOn", p)["result"]
    assert nobody["success"] is False
    assert "which admin" in nobody["errorMsg"]


def wait_for_status(stack: Stack, whmcs: Whmcs, p: dict[str, Any], status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        tab = whmcs.module("AdminServicesTabFields", p)["result"]
        last = tab["Status"]
        if last == status:
            return
        time.sleep(0.5)
    raise AssertionError(f"service never became {status} (last: {last})")


def test_three_vps_order_is_accepted_only_after_the_third_server(stack: Stack, whmcs: Whmcs) -> None:
    pid = new_product(whmcs)
    order, services = new_order(whmcs, client=202, pid=pid, count=3)
    os_id = os_template(stack)
    for number, service in enumerate(services, start=1):
        p = params(stack, whmcs, service, os_id=os_id)
        assert whmcs.module("CreateAccount", p)["result"] == "success"
        hooked = whmcs.hook("AfterModuleCreate", {"params": p})
        accepted = [c for c in hooked["localapi"] if c["action"] == "AcceptOrder"]
        status = whmcs.sql("SELECT status FROM tblorders WHERE id = ?", order)[0]["status"]
        if number < 3:
            assert accepted == [], f"order accepted after service {number} of 3"
            assert status == "Pending"
        else:
            assert accepted, hooked["modulelog"]
            assert accepted == [
                {"action": "AcceptOrder", "values": {"orderid": order, "autosetup": False, "sendemail": True}}
            ]
            assert status == "Active"


def test_missing_os_choice_is_refused_at_create_and_checkout(stack: Stack, whmcs: Whmcs) -> None:
    pid = new_product(whmcs)
    _, (service,) = new_order(whmcs, client=303, pid=pid)
    before = service_count(stack)
    result = whmcs.module("CreateAccount", params(stack, whmcs, service, os_id=None))["result"]
    assert "no operating system was chosen" in result
    assert service_count(stack) == before

    whmcs.module(
        "TestConnection", {"pid": pid, "serverhostname": stack.bridge, "serveraccesshash": stack.secret}
    )
    fields = {
        r["fieldname"]: r["id"]
        for r in whmcs.sql("SELECT id, fieldname FROM tblcustomfields WHERE relid = ?", pid)
    }
    cart = {
        "cart": {"products": [{"pid": pid, "customfields": {str(fields["Initial Operating System"]): ""}}]}
    }
    errors = whmcs.hook("ShoppingCartValidateCheckout", {}, session=cart)["result"][0]
    assert len(errors) == 1
    assert "operating system" in errors[0]
    cart["cart"]["products"][0]["customfields"] = {
        str(fields["Initial Operating System"]): os_template(stack)
    }
    assert whmcs.hook("ShoppingCartValidateCheckout", {}, session=cart)["result"][0] == []


def test_unknown_product_options_are_refused_readably(stack: Stack, whmcs: Whmcs) -> None:
    pid = new_product(whmcs)
    _, (service,) = new_order(whmcs, client=404, pid=pid)
    before = service_count(stack)
    p = params(stack, whmcs, service, os_id=os_template(stack), configoptions={"Flux Capacitor": "3|Three"})
    result = whmcs.module("CreateAccount", p)["result"]
    assert "Flux Capacitor" in result
    assert "unknown" in result.lower()
    assert service_count(stack) == before


def test_stock_hook_writes_quantities_of_our_products_only(stack: Stack, whmcs: Whmcs) -> None:
    pid = new_product(whmcs)
    other = whmcs.insert("tblproducts", name="not ours", servertype="other", stockcontrol=1, qty=3)
    whmcs.hook("AfterCronJob", {})
    assert whmcs.sql("SELECT qty FROM tblproducts WHERE id = ?", pid)[0]["qty"] > 0
    assert whmcs.sql("SELECT qty FROM tblproducts WHERE id = ?", other)[0]["qty"] == 3


def test_stock_counts_every_location_option_value(stack: Stack, whmcs: Whmcs) -> None:
    pid = new_product(whmcs)
    group = 900 + pid
    whmcs.insert("tblproductconfiglinks", gid=group, pid=pid)
    option = whmcs.insert("tblproductconfigoptions", gid=group, optionname="Location|Data centre")
    whmcs.insert("tblproductconfigoptionssub", configid=option, optionname="1|London")
    whmcs.insert("tblproductconfigoptionssub", configid=option, optionname="2|Frankfurt")
    whmcs.insert("tblproductconfigoptionssub", configid=option, optionname="3|Closed", hidden=1)
    ram = whmcs.insert("tblproductconfigoptions", gid=group, optionname="RAM")
    whmcs.insert("tblproductconfigoptionssub", configid=ram, optionname="4|4 GB")
    whmcs.hook("AfterCronJob", {})
    assert whmcs.sql("SELECT qty FROM tblproducts WHERE id = ?", pid)[0]["qty"] > 0
    placement = stack_product_placement(stack, pid)
    assert placement["location_group_ids"] == [1, 2]


def stack_product_placement(stack: Stack, pid: int) -> dict[str, Any]:
    """The product as vpsbridge stored it, through the operator API of the running stack."""
    response = httpx2.get(
        f"{stack.bridge}/api/v1/products",
        headers={"Authorization": f"Bearer {stack.api_token}"},
        timeout=10,
    )
    response.raise_for_status()
    body = response.json()
    items = body["items"] if isinstance(body, dict) else body
    product = next(p for p in items if p["billing_product_id"] == str(pid))
    placement: dict[str, Any] = product["placement"]
    return placement


def test_php_files_lint_clean() -> None:
    import subprocess

    from bridge_support import MODULE_DIR

    for path in sorted(Path(MODULE_DIR).rglob("*.php")):
        done = subprocess.run(["php", "-l", str(path)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_order_form_gets_the_os_gallery_data(stack: Stack, whmcs: Whmcs) -> None:
    import json
    import re

    pid = new_product(whmcs)
    vars_ = {
        "templatefile": "configureproduct",
        "pid": pid,
        "productinfo": {"pid": pid, "module": "vpsbridge"},
    }
    html = whmcs.hook("ClientAreaFooterOutput", vars_)["result"][0]
    found = re.search(r'<script type="application/json" id="vpsbridge-order-config">(.*?)</script>', html)
    assert found, html
    config = json.loads(found.group(1))
    assert config["error"] == ""
    assert config["osFieldId"] > 0
    assert config["keyFieldId"] > 0
    assert os_template(stack) in {str(t["id"]) for t in config["templates"]}
    assert whmcs.hook("ClientAreaFooterOutput", {"templatefile": "clientareahome"})["result"] == [""]


def test_usage_update_writes_whmcs_columns(stack: Stack, whmcs: Whmcs) -> None:
    answer = whmcs.module(
        "UsageUpdate", {"serverid": 1, "serverhostname": stack.bridge, "serveraccesshash": stack.secret}
    )
    assert answer["result"] == "success"
