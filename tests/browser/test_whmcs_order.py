"""Ordering a VPS on a WHMCS-like configure-product page in Debian's Chromium.

The order form helpers come from the real module: the PHP harness runs the ``ClientAreaFooterOutput``
hook (php-cli, WHMCS tables in MariaDB, a running vpsbridge and the VirtFusion simulator), and its
output is placed under a minimal order form whose fields are named the way WHMCS names them
(``customfield[ID]``, ``configoption[ID]``). ``php -S`` serves that page with the module's
``templates/js`` and ``css`` from a stand-in WHMCS root. The client searches the OS gallery, picks an
OS, generates an Ed25519 key in the browser, moves the Memory slider and submits; the submitted
values then go through ``ShoppingCartValidateCheckout`` and ``CreateAccount``, and the server the
simulator builds must carry that OS, that key and that memory. Screenshots land in
``artifacts/screenshots/whmcs/``.
"""

from __future__ import annotations

import base64
import html
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from bridge_support import Stack, Whmcs, mariadb_database, start_stack
from whmcs_site import WhmcsSite, serve_whmcs_site

from conftest import REPO, require_binary
from live_server import CHROMIUM_FLAGS

SHOTS = REPO / "artifacts" / "screenshots" / "whmcs"
CLIENT = 701
MEMORY = ("1024|1 GB", "2048|2 GB", "4096|4 GB")

#: Answers the submitted form as JSON, the way a test reads what WHMCS's cart would receive.
CART_PHP = """<?php
header('Content-Type: text/html; charset=utf-8');
echo '<!doctype html><title>Cart</title><h1>Submitted</h1><pre id="submitted">'
    . htmlspecialchars(json_encode($_POST), ENT_QUOTES, 'UTF-8') . '</pre>';
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_binary("php")
    require_binary("chromium")
    yield from start_stack(tmp_path_factory.mktemp("order-stack"))


@pytest.fixture(scope="module")
def whmcs(stack: Stack) -> Iterator[Whmcs]:
    for database in mariadb_database():
        w = Whmcs(database)
        assert w.run({"cmd": "setup"})["result"]["ok"]
        w.insert(
            "tblservers", name="vpsbridge", hostname=stack.bridge, type="vpsbridge", accesshash=stack.secret
        )
        yield w


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, whmcs: Whmcs) -> Iterator[WhmcsSite]:
    yield from serve_whmcs_site(tmp_path_factory.mktemp("order-site") / "whmcs", whmcs.env["HARNESS_DB"])


def order_page(footer: str, fields: dict[str, int], memory_id: int, memory_subs: list[int]) -> str:
    """A configure-product page as WHMCS's standard cart lays it out, with the hook output at the end."""
    options = "".join(
        f'<option value="{sub}">{html.escape(name.split("|", 1)[1])}</option>'
        for sub, name in zip(memory_subs, MEMORY, strict=True)
    )
    os_id, key_id = fields["Initial Operating System"], fields["Initial SSH Key"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Configure - VPS</title>
<style>body {{ font-family: sans-serif; max-width: 52rem; margin: 1rem auto; }}
.form-group {{ margin: 1rem 0; }} label {{ display: block; font-weight: bold; }}</style></head>
<body>
<h1>Configure</h1>
<form method="post" action="cart.php?a=confproduct&amp;i=0" id="frmConfigureProduct">
  <div class="product-configurable-options">
    <div class="form-group">
      <label for="inputConfigOption{memory_id}">Memory</label>
      <select name="configoption[{memory_id}]" id="inputConfigOption{memory_id}" class="form-control">
        {options}
      </select>
    </div>
  </div>
  <div class="custom-fields">
    <div class="form-group">
      <label for="customfield{os_id}">Initial Operating System</label>
      <input type="text" name="customfield[{os_id}]" id="customfield{os_id}" value="" class="form-control">
    </div>
    <div class="form-group">
      <label for="customfield{key_id}">Initial SSH Key</label>
      <input type="text" name="customfield[{key_id}]" id="customfield{key_id}" value="" class="form-control">
    </div>
  </div>
  <button type="submit" id="btnCompleteProductConfig" class="btn btn-primary">Continue</button>
</form>
{footer}
</body></html>
"""


def assert_ed25519(public: str) -> None:
    """A well-formed OpenSSH ``ssh-ed25519`` public key with a 32-byte key."""
    kind, blob = public.split()[:2]
    assert kind == "ssh-ed25519"
    raw = base64.b64decode(blob, validate=True)
    assert raw[:4] == (11).to_bytes(4, "big")
    assert raw[4:15] == b"ssh-ed25519"
    assert int.from_bytes(raw[15:19], "big") == 32
    assert len(raw) == 19 + 32
    assert isinstance(load_ssh_public_key(public.encode()), Ed25519PublicKey)


def wait_for_server(stack: Stack, whmcs: Whmcs, service: int, timeout: float = 40) -> dict[str, Any]:
    """The simulator's view of the service's server once vpsbridge reports it active."""
    p = {"serviceid": service, "serverhostname": stack.bridge, "serveraccesshash": stack.secret}
    deadline = time.monotonic() + timeout
    tab: dict[str, Any] = {}
    while time.monotonic() < deadline:
        tab = whmcs.module("AdminServicesTabFields", p)["result"]
        if tab.get("Status") == "active":
            found = re.search(r'value="(\d+)"', tab["Server ID"])
            assert found, tab
            server: dict[str, Any] = stack.sim_get(f"/servers/{found.group(1)}")["data"]
            return server
        time.sleep(0.5)
    raise AssertionError(f"the service never became active: {tab}")


@pytest.mark.slow
def test_order_through_os_gallery_key_picker_and_slider(stack: Stack, whmcs: Whmcs, site: WhmcsSite) -> None:
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    pid = whmcs.insert(
        "tblproducts",
        name="Cloud VPS",
        servertype="vpsbridge",
        configoption1="vf",
        configoption2="1",
        configoption3="1",
        configoption4="1",
    )
    group = 800 + pid
    whmcs.insert("tblproductconfiglinks", gid=group, pid=pid)
    memory_id = whmcs.insert("tblproductconfigoptions", gid=group, optionname="Memory")
    memory_subs = [
        whmcs.insert("tblproductconfigoptionssub", configid=memory_id, optionname=n) for n in MEMORY
    ]

    vars_ = {
        "templatefile": "configureproduct",
        "pid": pid,
        "productinfo": {"pid": pid, "module": "vpsbridge"},
        "loggedinuser": {"id": CLIENT},
    }
    footer = whmcs.hook("ClientAreaFooterOutput", vars_)["result"][0]
    config_json = re.search(r'id="vpsbridge-order-config">(.*?)</script>', footer)
    assert config_json, footer
    templates = json.loads(config_json.group(1))["templates"]
    assert len(templates) >= 2, "the gallery needs a choice to be a test"
    fields = {
        r["fieldname"]: int(r["id"])
        for r in whmcs.sql("SELECT id, fieldname FROM tblcustomfields WHERE relid = ?", pid)
    }
    site.write("cart.php", CART_PHP)
    url = site.write("order.html", order_page(footer, fields, memory_id, memory_subs))

    chosen = templates[-1]
    label = chosen["name"] + (" " + chosen["version"] if chosen.get("version") else "")
    query = label.split()[0]
    others = [
        t for t in templates if query.lower() not in (t["name"] + " " + (t.get("version") or "")).lower()
    ]
    assert others, f"every template matches {query!r}; the search would prove nothing"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)

        # OS gallery: the text field became a searchable gallery.
        gallery = page.locator(".vpsbridge-os-gallery")
        expect(gallery).to_be_visible()
        expect(
            page.locator(f'input[name="customfield[{fields["Initial Operating System"]}]"]')
        ).to_have_attribute("type", "hidden")
        expect(page.locator(".vpsbridge-os")).to_have_count(len(templates))
        page.get_by_role("searchbox", name="Search operating systems").fill(query)
        tile = page.locator(f'.vpsbridge-os[data-id="{chosen["id"]}"]')
        expect(tile).to_be_visible()
        for other in others:
            expect(page.locator(f'.vpsbridge-os[data-id="{other["id"]}"]')).to_be_hidden()
        tile.click()
        expect(tile).to_have_attribute("aria-pressed", "true")
        page.screenshot(path=str(SHOTS / "order-os-gallery.png"), full_page=True)

        # SSH key: generated in the browser with Web Crypto; the private key is offered for download.
        page.get_by_role("combobox", name="SSH key").select_option("__generate")
        key_field = page.locator(f'input[name="customfield[{fields["Initial SSH Key"]}]"]')
        expect(key_field).to_have_value(re.compile(r"^ssh-ed25519 [A-Za-z0-9+/=]+ "))
        download = page.get_by_role("link", name="Download your private key now")
        expect(download).to_be_visible()
        assert download.get_attribute("download") == "vps-ed25519.pem"

        # Memory slider drives the configurable option's select.
        slider = page.get_by_role("slider", name="memory")
        slider.focus()
        page.keyboard.press("End")
        expect(page.locator(f"#inputConfigOption{memory_id}")).to_have_value(str(memory_subs[-1]))
        page.screenshot(path=str(SHOTS / "order-configured.png"), full_page=True)

        page.locator("#btnCompleteProductConfig").click()
        page.wait_for_url(re.compile(r"/cart\.php"))
        submitted: dict[str, Any] = json.loads(page.locator("#submitted").text_content() or "{}")
        page.screenshot(path=str(SHOTS / "order-submitted.png"), full_page=True)
        browser.close()
    assert errors == []

    custom = submitted["customfield"]
    os_id = custom[str(fields["Initial Operating System"])]
    public_key = custom[str(fields["Initial SSH Key"])]
    assert os_id == str(chosen["id"])
    assert_ed25519(public_key)
    assert submitted["configoption"][str(memory_id)] == str(memory_subs[-1])

    # Checkout: the cart as WHMCS keeps it in the session, keyed by custom field id.
    cart_item = {"pid": pid, "customfields": dict(custom)}
    ok = whmcs.hook("ShoppingCartValidateCheckout", {}, session={"cart": {"products": [cart_item]}})
    assert ok["result"][0] == []
    no_os = {**cart_item, "customfields": {**custom, str(fields["Initial Operating System"]): ""}}
    refused = whmcs.hook("ShoppingCartValidateCheckout", {}, session={"cart": {"products": [no_os]}})
    assert len(refused["result"][0]) == 1
    assert "operating system" in refused["result"][0][0]

    # CreateAccount with what WHMCS would pass for this order (custom fields and options by name).
    order = whmcs.insert("tblorders", userid=CLIENT, status="Pending")
    service = whmcs.insert("tblhosting", userid=CLIENT, orderid=order, packageid=pid, server=1)
    memory_value = next(
        r["optionname"]
        for r in whmcs.sql("SELECT optionname FROM tblproductconfigoptionssub WHERE id = ?", memory_subs[-1])
    )
    product = whmcs.sql("SELECT * FROM tblproducts WHERE id = ?", pid)[0]
    p: dict[str, Any] = {
        "serviceid": service,
        "accountid": service,
        "userid": CLIENT,
        "pid": pid,
        "packageid": pid,
        "serverid": 1,
        "domain": f"vps{service}.example.net",
        "username": "",
        "password": "initialpass1",
        "moduletype": "vpsbridge",
        "producttype": "server",
        "serverhostname": stack.bridge,
        "serveraccesshash": stack.secret,
        "serversecure": "",
        "clientsdetails": {"firstname": "Grace", "lastname": "Hopper", "email": "grace@example.net"},
        "customfields": {"Initial Operating System": os_id, "Initial SSH Key": public_key},
        "configoptions": {"Memory": memory_value},
        **{f"configoption{i}": product[f"configoption{i}"] or "" for i in range(1, 10)},
    }
    created = whmcs.module("CreateAccount", p)
    assert created["result"] == "success", created

    server = wait_for_server(stack, whmcs, service)
    assert server["settings"]["osTemplateInstallId"] == int(os_id)
    assert [k["public"].split()[:2] for k in server["sshKeys"]] == [public_key.split()[:2]]
    assert int(server["settings"]["resources"]["memory"]) == 4096
