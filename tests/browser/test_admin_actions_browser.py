"""The operator console's service actions in Debian's Chromium, against the simulators: provision a VPS
from "New service" (live stock, a refusal when the product runs out between page and click, the
deploy job followed to done), then on its page validate, update the object, correct the server id,
restart, rebuild (OS chosen, typed confirmation, job followed to done), reconcile its reverse DNS with
and without force, and terminate it (typed confirmation, job to done, state terminated, stock back
up). A worker runs beside the web server, as in the embedded mode. Screenshots of every step land
in artifacts/screenshots/admin/."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

import admin_vf_support
from admin_support import audit_actions, make_admin
from admin_vf_support import VfConsole

from conftest import require, require_binary
from live_server import chromium_page
from vpsbridge.jobs.worker import Worker
from vpsbridge.services import admin_auth, provisioning
from vpsbridge.services.audit import Actor
from vpsbridge.web import docs
from vpsbridge.web.app import create_app

vfc = admin_vf_support.vfc

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "admin"
HOSTNAME = "web1.example.net"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvY1q2kLtLNEo0SQmZrTCMpC9VuL7UG5ElmZ1kRfX0p ops@example.net"
JOB_SECONDS = 60_000  # ms a job may take to reach "succeeded" in the page (it polls every 3 s)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # one backend is enough for the browser
async def test_service_actions_and_new_service_in_chromium(vfc: VfConsole, db_url: str) -> None:
    require_binary("chromium")
    require(not docs.missing_assets(), "front-end assets are not built (cd frontend && npm run build)")
    from playwright.async_api import Page

    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx = vfc.app
    await make_admin(ctx, "operator")
    app = create_app(context=ctx, migrate=False)
    worker = Worker(ctx, concurrency=4, periodic=False, wakeup=False)
    worker.start()

    async def shot(page: Page, name: str) -> None:
        await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    async def confirm(page: Page, typed: str | None = None) -> None:
        await page.wait_for_selector("[data-confirm-dialog][open]")
        if typed is not None:
            await page.fill("[data-confirm-input]", typed)
        await page.click("[data-confirm-ok]")

    async def follow_job(page: Page, name: str) -> int:
        """From a page whose message links the queued job: open it and wait until it succeeded."""
        link = page.locator("[data-testid=flash-job]")
        href = await link.get_attribute("href")
        assert href is not None
        await link.click()
        await page.wait_for_url(f"**{href}")
        await page.wait_for_selector("[data-testid=job-status] [data-state=succeeded]", timeout=JOB_SECONDS)
        await shot(page, name)
        return int(href.rsplit("/", 1)[1])

    async def stock_of(page: Page, product: str) -> int:
        await page.goto(f"{origin}/admin/stock")
        await page.click("text=Recalculate now")
        await page.wait_for_selector("[data-testid=recalc-summary]")
        cell = page.locator(f"[data-testid=stock-table] tr:has-text('{product}') td.mono")
        return int((await cell.inner_text()).strip())

    async def reconcile(page: Page, *, force: bool) -> dict[str, str]:
        await page.goto(f"{origin}/admin/dns")
        if force:
            await page.check("#reconcile input[name=force]")
        await page.click("#reconcile button[type=submit]")
        await confirm(page)
        await page.wait_for_selector("[data-testid=reconcile-report]")
        rows = page.locator("[data-testid=reconcile-addresses] tbody tr")
        outcomes: dict[str, str] = {}
        for index in range(await rows.count()):
            row = rows.nth(index)
            ip = await row.get_attribute("data-ip")
            assert ip is not None
            outcomes[ip] = await row.locator("[data-state]").get_attribute("data-state") or ""
        return outcomes

    try:
        async with chromium_page(app) as chromium:
            page, origin = chromium.page, chromium.origin
            minted = await admin_auth.mint_admin_sso(ctx, "operator", Actor("bridge", "whmcs"))
            await page.goto(origin + minted.path)
            await page.wait_for_selector("[data-testid=services-by-state]")
            stock_before = await stock_of(page, "VPS 1G London")
            assert stock_before > 0

            # --- New service: the products with live stock; the full one cannot be chosen ---
            await page.goto(f"{origin}/admin/services")
            await page.click("[data-testid=new-service-link]")
            await page.wait_for_selector("[data-testid=new-service-products]")
            full_row = page.locator(f"tr[data-product='{vfc.full}']")
            assert "out of stock" in await full_row.inner_text()
            assert await full_row.locator("a.btn").count() == 0
            await shot(page, "new-service")
            await page.click(f"[data-testid=choose-{vfc.small}]")
            await page.wait_for_selector("[data-testid=new-service-form]")
            await page.fill("#client_id", "4711")
            await page.fill("#client_name", "Ada Lovelace")
            await page.fill("#client_email", "ada@example.net")
            await page.fill("#hostname", HOSTNAME)
            options = await page.locator("#os option").all_inner_texts()
            debian = next(o for o in options if "Debian" in o and "end of life" not in o)
            await page.select_option("#os", label=debian)
            await page.fill("#ssh_keys", KEY)
            await shot(page, "new-service-form")

            # The group fills up between the page and the click: the live check refuses, in words.
            saved = {hv.id: hv.memory_mb for hv in vfc.sim.hypervisors.values() if hv.group_id == 1}
            for hv in vfc.sim.hypervisors.values():
                if hv.group_id == 1:
                    hv.memory_mb = 512
            await page.click("[data-testid=new-service-form] button[type=submit]")
            await page.wait_for_selector("[data-testid=create-error]")
            assert "VPS 1G London is out of stock" in await page.inner_text("[data-testid=create-error]")
            assert await page.input_value("#hostname") == HOSTNAME  # nothing typed is lost
            await shot(page, "new-service-refused")
            for hv in vfc.sim.hypervisors.values():
                if hv.id in saved:
                    hv.memory_mb = saved[hv.id]
            chromium.problems.clear()  # the refusal answered 409, which Chromium logs as a failed load
            await page.click("[data-testid=new-service-form] button[type=submit]")
            await page.wait_for_url(re.compile(r".*/admin/services/\d+\?.*"))
            service_id = int(page.url.split("/admin/services/")[1].split("?")[0])
            assert "deploy job is queued" in await page.inner_text("[data-testid=flash]")
            await page.wait_for_selector("[data-testid=open-jobs]")  # followed live on this page
            await shot(page, "new-service-created")
            await follow_job(page, "deploy-job")
            await page.goto(f"{origin}/admin/services/{service_id}")
            await page.wait_for_selector("[data-testid=service-status] [data-state=active]")
            stock_during = await stock_of(page, "VPS 1G London")
            assert stock_during < stock_before

            # --- service detail: validate, update object, server id ---
            await page.goto(f"{origin}/admin/services/{service_id}")
            await page.click("text=Validate config")
            await page.wait_for_selector("[data-testid=findings]")
            findings = await page.inner_text("[data-testid=findings]")
            assert "plan resolves: package 1 (VPS 1G): 1 cores, 1024 MB memory, 25 GB disk" in findings
            await shot(page, "service-validate")
            await page.click("text=Update object from platform")
            await page.wait_for_selector("[data-testid=flash]")
            assert "Server object updated" in await page.inner_text("[data-testid=flash]")
            assert HOSTNAME in await page.inner_text("[data-testid=server-json]")
            original = await page.input_value("#external_id")
            await page.fill("#external_id", "424242")
            await page.click("text=Save server id")
            await page.wait_for_selector("[data-testid=flash]")
            assert await page.input_value("#external_id") == "424242"
            await shot(page, "service-server-id")
            await page.fill("#external_id", original)
            await page.click("text=Save server id")
            await page.wait_for_selector("[data-testid=flash]")
            assert await page.input_value("#external_id") == original

            # --- power: restart with confirmation ---
            await page.click("form[action$='/power']:has(input[value=restart]) button")
            await confirm(page)
            await page.wait_for_selector("[data-testid=flash]")
            await shot(page, "service-power")
            await page.wait_for_selector("[data-testid=service-status] [data-state=active]")

            # --- rebuild: choose an OS, type the hostname, follow the job ---
            await page.goto(f"{origin}/admin/services/{service_id}")
            await page.click("text=Rebuild…")
            await page.wait_for_selector("#os")
            options = await page.locator("#os option").all_inner_texts()
            ubuntu = next(o for o in options if "Ubuntu" in o)
            await page.select_option("#os", label=ubuntu)
            await shot(page, "rebuild")
            await page.click("form[action$='/rebuild'] button[type=submit]")
            await confirm(page, typed=HOSTNAME)
            await page.wait_for_selector("[data-testid=flash-job]")
            assert "Reinstall started" in await page.inner_text("[data-testid=flash]")
            await follow_job(page, "rebuild-job")

            # --- reverse DNS: additive reconcile keeps a hand-made PTR, force resets it ---
            service = await provisioning.get_service(ctx, service_id)
            assert service.server is not None
            ip = service.server.ipv4[0]
            assert vfc.ptr(ip) == [f"{HOSTNAME}."]  # the deploy's DNS job wrote it
            assert (await reconcile(page, force=False))[ip] == "unchanged"
            vfc.set_ptr(ip, "custom.example.org.")
            assert (await reconcile(page, force=False))[ip] == "preserved"
            assert vfc.ptr(ip) == ["custom.example.org."]
            await shot(page, "dns-reconcile")
            assert (await reconcile(page, force=True))[ip] == "written"
            assert "forced" in await page.inner_text("[data-testid=reconcile-report]")
            assert vfc.ptr(ip) == [f"{HOSTNAME}."]
            await shot(page, "dns-reconcile-forced")

            # --- terminate: typed confirmation, job to done, state terminated, stock back up ---
            await page.goto(f"{origin}/admin/services/{service_id}")
            await page.click("form[action$='/terminate'] button")
            await confirm(page, typed=HOSTNAME)
            await page.wait_for_selector("[data-testid=flash-job]")
            await follow_job(page, "terminate-job")
            await page.goto(f"{origin}/admin/services/{service_id}")
            await page.wait_for_selector("[data-testid=service-status] [data-state=terminated]")
            await page.wait_for_selector("[data-testid=terminated-note]")  # nothing left to press
            assert await page.locator("form[action$='/terminate'], form[action$='/power']").count() == 0
            await shot(page, "service-terminated")
            assert await stock_of(page, "VPS 1G London") == stock_before
            await shot(page, "stock-after-terminate")

            # --- everything above is in the audit log, as this operator ---
            await page.goto(f"{origin}/admin/audit")
            audit = await page.inner_text("[data-testid=audit-table]")
            for action in ("service.create", "service.server_id", "service.refresh", "dns.reconcile"):
                assert action in audit, action
            await shot(page, "audit-actions")

            # --- the same pages in German: "Kunde" for the customer ---
            german = await chromium.browser.new_context(
                viewport={"width": 1280, "height": 900}, locale="de-DE"
            )
            de = await german.new_page()
            minted = await admin_auth.mint_admin_sso(ctx, "operator", Actor("bridge", "whmcs"))
            await de.goto(origin + minted.path)
            await de.goto(f"{origin}/admin/services/new?product={vfc.small}")
            assert "Kunden-ID" in await de.inner_text("[data-testid=new-service-form]")
            await shot(de, "new-service-de")
            await de.goto(f"{origin}/admin/services/{service_id}")
            assert "Kunde" in await de.inner_text("#summary")
            await de.goto(f"{origin}/admin/upstream")
            assert "API-Client" in await de.inner_text("form[data-testid=upstream-search]")
            await shot(de, "upstream-de")
    finally:
        await worker.stop()
    by_operator: list[Any] = [
        r for r in await audit_actions(ctx) if r.actor_type == "admin" and r.object_id == str(service_id)
    ]
    actions = {r.action for r in by_operator}
    assert {"service.claim", "service.create", "service.server_id", "service.refresh"} <= actions, actions
    assert chromium.problems == []  # stricter than the helper: no console error at all
