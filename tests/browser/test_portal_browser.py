"""The portal in Debian's Chromium: SSO sign-in, overview, power with confirmation, rebuild gallery,
German, dark theme, mask mode and the console popup showing a real VNC screen (Xvnc) through the relay.
Screenshots land in artifacts/screenshots/."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

import portal_support
from portal_support import PortalWorld
from provisioning_support import ACTOR

from conftest import require, require_binary
from live_server import CANVAS_PIXELS, chromium_page
from vpsbridge.core.traffic import anchored_start
from vpsbridge.services import platforms, portal
from vpsbridge.services.context import AppContext
from vpsbridge.sim.virtfusion.state import Credit
from vpsbridge.sim.vncdisplay import VncDisplay
from vpsbridge.store.models import Product
from vpsbridge.web import docs
from vpsbridge.web.app import create_app

world = portal_support.world
pworld = portal_support.pworld

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


async def _point_dummy_console_at(ctx: AppContext, display: VncDisplay) -> None:
    """The in-memory platform's consoles lead to the real VNC server (its ``console_vnc`` setting)."""
    for item in await platforms.list_platforms(ctx):
        if item.type == "dummy":
            settings = {**item.settings, "console_vnc": f"{display.host}:{display.port}"}
            await platforms.update_platform(ctx, item.name, {"settings": settings}, ACTOR)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # one backend is enough for the browser
async def test_portal_in_chromium(pworld: PortalWorld, db_url: str) -> None:
    require_binary("chromium")
    require(not docs.missing_assets(), "front-end assets are not built (cd frontend && npm run build)")

    SHOTS.mkdir(parents=True, exist_ok=True)
    require_binary("Xvnc")
    display = await VncDisplay(banner="vpsbridge console test").start()
    ctx = pworld.ctx
    await _point_dummy_console_at(ctx, display)
    async with ctx.db.session() as session:
        await session.execute(update(Product).values(settings={"self_service_mode": "hourly"}))
    app = create_app(context=ctx, migrate=False)
    try:
        async with chromium_page(app) as chromium:
            page, context, origin = chromium.page, chromium.context, chromium.origin
            popup_errors = chromium.problems  # popup console lines are checked with the page's at the end
            context.on("page", lambda p: p.on("console", lambda m: popup_errors.append("popup: " + m.text)))
            link = await portal.mint_portal_link(ctx, pworld.mine, ACTOR, base_url=origin)
            await page.goto(link.url)
            await page.wait_for_selector("[data-state-badge]")
            assert "/portal/s/" in page.url
            await page.wait_for_selector("[data-traffic-text]:not(:text('Loading...'))")
            # The overview's traffic figure and the panel's come from the same platform report.
            summary = await page.inner_text("[data-traffic-summary]")
            assert (await page.inner_text("[data-traffic-text]")).startswith(summary)
            # traffic: a received/sent bar pair per month since the server was created (this
            # one is new: one month), a legend and the same months as a table for screen readers
            chart = page.locator("#traffic [data-traffic-chart][data-drawn='1']")
            await chart.wait_for()
            assert await chart.get_attribute("data-months") == "1"
            assert await page.locator("#traffic [data-traffic-chart] canvas").count() >= 1
            assert await page.locator("#traffic [data-traffic-table] tbody tr").count() == 1
            legend = await page.locator("#traffic [data-traffic-legend] li").all_inner_texts()
            assert [t.strip() for t in legend] == ["Received", "Sent"]
            # the product enables self-service billing, but this platform has none: no panel
            assert await page.locator("#billing").count() == 0
            # backups and reverse DNS load when scrolled into view (htmx "revealed")
            await page.locator("#backups").scroll_into_view_if_needed()
            await page.wait_for_selector("#backups :is(ol.timeline li, :text('No backups yet.'))")
            await page.locator("#rdns").scroll_into_view_if_needed()
            await page.wait_for_selector("#rdns form input[name=ptr]")
            rdns_ips = await page.locator("#rdns .maskable").all_inner_texts()
            page_ips = await page.locator(".ip-row .maskable").evaluate_all(
                "els => els.map(e => e.getAttribute('data-value'))"
            )
            assert rdns_ips
            assert set(rdns_ips) <= set(page_ips)
            loading = page.locator("#backups :text('Loading...'), #rdns :text('Loading...')")
            assert await loading.count() == 0
            await page.evaluate("window.scrollTo(0, 0)")
            await page.screenshot(path=str(SHOTS / "portal-overview.png"), full_page=True)

            # power with confirmation, buttons disabled while it runs
            await page.click("[data-power-action=restart]")
            await page.wait_for_selector("dialog[open]")
            await page.screenshot(path=str(SHOTS / "portal-power-confirm.png"))
            await page.click("[data-confirm-ok]")
            await page.wait_for_selector(".toast")

            # mask mode hides addresses
            first_ip = await page.locator(".ip-row .maskable").first.get_attribute("data-value")
            await page.click("[data-mask-toggle]")
            masked = await page.locator(".ip-row .maskable").first.inner_text()
            assert first_ip is not None
            assert masked != first_ip
            await page.screenshot(path=str(SHOTS / "portal-masked.png"))
            await page.click("[data-mask-toggle]")

            # console popup: POST -> popup -> noVNC connected through the relay to Xvnc
            async with context.expect_page() as popup_info:
                await page.click("[data-console-button]")
            popup = await popup_info.value
            await popup.wait_for_url("**/console")
            await popup.wait_for_selector("body[data-connected='1']", timeout=15000)
            await popup.wait_for_timeout(800)
            lit, colours = await popup.evaluate(CANVAS_PIXELS)
            assert lit > 1000, "the console canvas is black: nothing of the VNC screen arrived"
            assert colours > 2, "the console canvas is one flat colour, not the drawn screen"
            await popup.screenshot(path=str(SHOTS / "portal-console.png"))
            await popup.close()

            # rebuild gallery with search and typed confirmation
            await page.goto(f"{origin}/portal/s/{pworld.mine}/rebuild")
            await page.fill("[data-os-search]", "deb")
            await page.screenshot(path=str(SHOTS / "portal-rebuild.png"), full_page=True)

            # German and dark theme
            await context.add_cookies([{"name": "vpsb_lang", "value": "de", "url": origin}])
            await page.goto(f"{origin}/portal/s/{pworld.mine}")
            await page.click("[data-theme-toggle]")
            await page.click("[data-theme-toggle]")
            assert await page.get_attribute("html", "data-theme") == "dark"
            assert await page.get_attribute("html", "lang") == "de"
            await page.screenshot(path=str(SHOTS / "portal-overview-de-dark.png"), full_page=True)
            mobile = await chromium.browser.new_context(viewport={"width": 390, "height": 844})
            await mobile.add_cookies(await context.cookies())
            mpage = await mobile.new_page()
            await mpage.goto(f"{origin}/portal/s/{pworld.mine}")
            await mpage.screenshot(path=str(SHOTS / "portal-mobile.png"), full_page=True)
    finally:
        display.stop()


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # one backend is enough for the browser
async def test_traffic_year_and_billing_panel_in_chromium(db_url: str, tmp_path: Path) -> None:
    """VirtFusion with hourly self-service: twelve months of traffic with a legend, and the billing
    panel (balance, usage report, Add credit -> an invoice with its payment link)."""
    require_binary("chromium")
    require(not docs.missing_assets(), "front-end assets are not built (cd frontend && npm run build)")
    from test_portal_billing import WHMCS, make_hourly

    SHOTS.mkdir(parents=True, exist_ok=True)
    env, ctx = await make_hourly(db_url, tmp_path)
    server_row = env.sim.servers[env.server_id]
    server_row.created = dt.datetime.now(dt.UTC) - dt.timedelta(days=500)  # a year of traffic
    server_row.rx_bytes, server_row.tx_bytes = 40 * 1024**3, 90 * 1024**3
    env.sim.credits[2] = Credit(
        id=2, user_id=server_row.owner_id, tokens=150.0, reference_1=None, reference_2=None
    )
    app = create_app(context=ctx, migrate=False)
    try:
        async with chromium_page(app) as chromium:
            origin, page = chromium.origin, chromium.page
            link = await portal.mint_portal_link(ctx, env.service_id, ACTOR, base_url=origin)
            await page.goto(link.url)

            chart = page.locator("#traffic [data-traffic-chart][data-drawn='1']")
            await chart.wait_for()
            assert await chart.get_attribute("data-months") == "12"
            rows = page.locator("#traffic [data-traffic-table] tbody tr")
            assert await rows.count() == 12
            months = await rows.evaluate_all("rs => rs.map(r => r.getAttribute('data-month'))")
            assert months == sorted(months)
            current = anchored_start(server_row.created, dt.datetime.now(dt.UTC))
            assert months[-1] == current.strftime("%Y-%m"), "ends with the current period"
            legend = await page.locator("#traffic [data-traffic-legend] li").all_inner_texts()
            assert [t.strip() for t in legend] == ["Received", "Sent"]
            await page.locator("#traffic").screenshot(path=str(SHOTS / "portal-traffic.png"))

            await page.locator("#billing").scroll_into_view_if_needed()
            await page.wait_for_selector("#billing [data-billing-balance]")
            assert await page.locator("#billing [data-billing-line]").count() == 1
            balance = (await page.locator("#billing [data-billing-balance]").inner_text()).strip()
            assert balance != "-"
            await page.fill("#credit-amount", "25")
            await page.click("#billing [data-credit-form] button[type=submit]")
            pay = page.locator("#billing [data-credit-pay]")
            await pay.wait_for()
            href = await pay.get_attribute("href")
            assert href is not None
            assert href.startswith(f"{WHMCS}/viewinvoice.php?id=")
            await page.locator("#billing").screenshot(path=str(SHOTS / "portal-billing.png"))
    finally:
        await ctx.close()
    assert len(env.whmcs.actions("CreateInvoice")) == 1
