"""Panel sign-in in Debian's Chromium: the button posts the form (with its CSRF token) into a new tab,
and the browser follows the 303 to the VirtFusion panel - which it only does because the overview's
``form-action`` names the panel's origin (browsers check a form's redirects against it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

import portal_vf_support
from portal_vf_support import PANEL, VfPortal
from provisioning_support import ACTOR

from conftest import require_binary
from live_server import chromium_page
from vpsbridge.services import portal
from vpsbridge.web.app import create_app

vf = portal_vf_support.vf

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # one backend is enough for the browser
async def test_panel_login_opens_the_panel_in_chromium(vf: VfPortal, db_url: str) -> None:
    require_binary("chromium")
    from playwright.async_api import Route

    SHOTS.mkdir(parents=True, exist_ok=True)
    app = create_app(context=vf.app, migrate=False)
    panel_hits: list[str] = []

    async def fake_panel(route: Route) -> None:
        # The panel host does not exist on this machine; answer for it so the tab has a page to show.
        panel_hits.append(route.request.url)
        await route.fulfill(status=200, content_type="text/html", body="<h1>VirtFusion panel</h1>")

    async with chromium_page(app) as chromium:
        page, context, origin = chromium.page, chromium.context, chromium.origin
        await context.route(f"{PANEL}/**", fake_panel)
        link = await portal.mint_portal_link(vf.app, vf.service_id, ACTOR, base_url=origin)
        await page.goto(link.url)
        button = page.locator("[data-panel-login] button")
        await button.wait_for()
        await button.scroll_into_view_if_needed()
        await page.screenshot(path=str(SHOTS / "portal-panel-login.png"), full_page=True)
        async with context.expect_page() as opened:
            await button.click()
        tab = await opened.value
        await tab.wait_for_url(f"{PANEL}/token_authenticate/**", timeout=10_000)
        assert await tab.locator("h1").inner_text() == "VirtFusion panel"
    assert len(panel_hits) == 1
    assert "1=" in panel_hits[0]
    assert "2=" in panel_hits[0]
