"""The WHMCS upgrade page of a vpsbridge service, through the real PHP hook on WHMCS tables in
MariaDB and a running vpsbridge: disk choices smaller than what the service has are disabled."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from bridge_support import Stack, Whmcs, mariadb_database, start_stack
from test_bridge_php import new_order, new_product, os_template, params


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


def test_upgrade_page_disables_exactly_the_smaller_disk_choices(stack: Stack, whmcs: Whmcs) -> None:
    pid = new_product(whmcs)
    group = 700 + pid
    whmcs.insert("tblproductconfiglinks", gid=group, pid=pid)
    disk = whmcs.insert("tblproductconfigoptions", gid=group, optionname="Storage|Disk size")
    sizes = {
        n: whmcs.insert("tblproductconfigoptionssub", configid=disk, optionname=f"{n}|{n} GB")
        for n in (20, 30, 40, 80)
    }
    hidden = whmcs.insert("tblproductconfigoptionssub", configid=disk, optionname="10|10 GB", hidden=1)
    ram = whmcs.insert("tblproductconfigoptions", gid=group, optionname="RAM")
    whmcs.insert("tblproductconfigoptionssub", configid=ram, optionname="1|1 GB")

    _, (service,) = new_order(whmcs, client=301, pid=pid)
    p = params(stack, whmcs, service, os_id=os_template(stack))
    p["configoptions"] = {"Storage": "40|40 GB"}
    created = whmcs.module("CreateAccount", p)
    assert created["result"] == "success", created

    page = {"templatefile": "upgrade", "type": "configoptions", "id": service}
    html = whmcs.hook("ClientAreaFooterOutput", page)["result"][0]
    found = re.search(r'<script type="application/json" id="vpsbridge-upgrade-disks">(.*?)</script>', html)
    assert found, html
    assert "templates/js/upgrade.js" in html
    rules = json.loads(found.group(1))
    assert [r["id"] for r in rules] == [disk]
    assert sorted(rules[0]["disabled"]) == sorted([sizes[20], sizes[30]])
    assert hidden not in rules[0]["disabled"]
    assert "40 GB" in rules[0]["warning"]

    # Other pages, other upgrade types and services that are not ours get nothing.
    assert whmcs.hook("ClientAreaFooterOutput", {**page, "type": "package"})["result"] == [""]
    other = whmcs.insert("tblproducts", name="not ours", servertype="other")
    _, (foreign,) = new_order(whmcs, client=301, pid=other)
    assert whmcs.hook("ClientAreaFooterOutput", {**page, "id": foreign})["result"] == [""]
