"""The operator console in Debian's Chromium: WHMCS single sign-on, then every page and the main
actions (power with confirmation, job retry/delete, platform test, stock recalculation, an IP pool
created through its form, the request log search) against provisioned services on the dummy
platform. Screenshots land in artifacts/screenshots/admin/ for looking at a run; the documentation's
pictures come from the demo's data instead (test_admin_demo_screens.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

import portal_support
from admin_support import make_admin, seed_job
from portal_support import PortalWorld

from conftest import require, require_binary
from live_server import chromium_page
from vpsbridge.services import admin_auth
from vpsbridge.services.audit import Actor
from vpsbridge.web import docs
from vpsbridge.web.app import create_app

world = portal_support.world
pworld = portal_support.pworld

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "admin"


@pytest.mark.slow
async def test_operator_console_in_chromium(pworld: PortalWorld, db_url: str) -> None:
    if "postgres" in db_url or "asyncpg" in db_url:
        return  # one backend is enough for the browser run; the SQLite case drives it
    require_binary("chromium")
    require(not docs.missing_assets(), "front-end assets are not built (cd frontend && npm run build)")
    from playwright.async_api import Page

    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx = pworld.ctx
    await make_admin(ctx, "operator")
    failed_job = await seed_job(ctx, kind="service.deploy", status="failed")
    app = create_app(context=ctx, migrate=False)

    async def shot(page: Page, name: str) -> None:
        await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    async def confirm(page: Page, typed: str | None = None) -> None:
        await page.wait_for_selector("[data-confirm-dialog][open]")
        if typed is not None:
            await page.fill("[data-confirm-input]", typed)
        await page.click("[data-confirm-ok]")

    async with chromium_page(app) as chromium:
        page, origin = chromium.page, chromium.origin

        # Sign-in form first (screenshot), then WHMCS SSO.
        await page.goto(f"{origin}/admin/")
        assert "/admin/login" in page.url
        await shot(page, "login")
        minted = await admin_auth.mint_admin_sso(ctx, "operator", Actor("bridge", "whmcs"))
        await page.goto(origin + minted.path)
        await page.wait_for_selector("[data-testid=services-by-state]")
        assert page.url.endswith("/admin/")
        await shot(page, "dashboard")

        # Services: filter (remembered), detail, power with confirmation.
        await page.click("nav >> text=Services")
        await page.select_option("#f-status", "active")
        await page.click("form[data-testid=service-filters] button[type=submit]")
        await page.wait_for_selector("[data-testid=services-table]")
        rows = await page.locator("[data-testid=services-table] tbody tr").count()
        assert rows == 2
        await page.goto(f"{origin}/admin/services")
        assert await page.locator("#f-status").input_value() == "active"
        await shot(page, "services")
        await page.goto(f"{origin}/admin/services/{pworld.mine}")
        await page.wait_for_selector("[data-testid=server-json]")
        await page.click("form[action$='/power']:has(input[value=restart]) button")
        await confirm(page)
        await page.wait_for_selector(".alert-success")
        await page.click("text=Validate config")
        await page.wait_for_selector("[data-testid=findings]")
        await shot(page, "service")

        # Jobs: the failed job's steps, retry it, then delete another record with typed confirmation.
        await page.goto(f"{origin}/admin/jobs/{failed_job}")
        await page.wait_for_selector("[data-testid=steps-table]")
        assert "1500.0 ms" in await page.inner_text("[data-testid=steps-table]")
        await shot(page, "job")
        await page.click("text=Reset status: mark done")
        await confirm(page)
        await page.wait_for_selector(".alert-success")
        await page.click("text=Delete record")
        await confirm(page, typed="delete")
        await page.wait_for_url(f"{origin}/admin/jobs?*")
        await shot(page, "jobs")

        # Platforms: test connection names each check.
        await page.goto(f"{origin}/admin/platforms")
        await page.click("[data-testid=platforms-table] a")
        await page.click("text=Test connection")
        await page.wait_for_selector("[data-testid=test-report]")
        await shot(page, "platform")

        # Products, stock (recalculate now), IP pool created through the form.
        await page.goto(f"{origin}/admin/products")
        await shot(page, "products")
        await page.goto(f"{origin}/admin/stock")
        await page.click("text=Recalculate now")
        await page.wait_for_selector("[data-testid=recalc-summary]")
        await shot(page, "stock")
        await page.goto(f"{origin}/admin/pools/new")
        await page.fill("#name", "demo-v4")
        await page.fill("#network", "198.51.100.0/26")
        await page.click("form.panel button[type=submit]")
        await page.wait_for_selector("[data-testid=zone-hint]")
        await page.goto(f"{origin}/admin/pools")
        await shot(page, "pools")
        await page.goto(f"{origin}/admin/dns/new")
        await shot(page, "dns-provider")

        # Logs: search the upstream log, then the audit log shows what we did.
        await page.goto(f"{origin}/admin/upstream")
        await page.fill("#u-q", "panel.example")
        await page.click("form[data-testid=upstream-search] button[type=submit]")
        await page.wait_for_selector("[data-testid=upstream-table]")
        await shot(page, "upstream")
        await page.goto(f"{origin}/admin/audit")
        audit = await page.inner_text("[data-testid=audit-table]")
        for action in ("admin.login", "job.reset", "job.delete", "pool.create", "stock.recalculate"):
            assert action in audit, action
        await shot(page, "audit")

        # Dark theme, and "open the portal as this client".
        await page.emulate_media(color_scheme="dark")
        await page.goto(f"{origin}/admin/")
        await shot(page, "dashboard-dark")
        await page.goto(f"{origin}/admin/services/{pworld.mine}")
        await page.click("text=Open the portal as this client")
        await page.wait_for_url(f"{origin}/portal/s/*")
    # Stricter than the helper: no console error at all.
    assert chromium.problems == []
