"""The operator console's pages on the demo's own data, in Debian's Chromium: the documentation's
screenshots.

``vpsbridge demo`` runs as a subprocess exactly as a person starts it (the demo helpers read its
banner). The test signs in with the printed operator login, waits in the services list until the
sample client's two services are active, and visits every page the console guide shows: dashboard
(light and dark), platforms and one platform after "Test connection", products, IP pools and the
pool holding the sample's address, services and the sample's Proxmox service after "Validate
config", jobs and the VirtFusion sample's deploy job, stock after "Recalculate now", DNS after
"Reconcile now" (the samples' PTRs, written at deploy, are unchanged), the upstream request log
filtered to one platform, the audit log, the New service form filled in for a second client, and
the sign-in page. Every page must answer 200 with its heading, with no console error, page error or
Content-Security-Policy violation.

Screenshots land in artifacts/screenshots/admin-demo/; the ones in docs/img/admin/ are copied from
there.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from demo_support import DemoProcess, api_get, banner_field

from conftest import require
from live_server import CHROMIUM, CHROMIUM_FLAGS
from vpsbridge.services.demo_sample import SAMPLE_CLIENT_ID
from vpsbridge.web import docs

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "admin-demo"
#: Records Content-Security-Policy violations in the page (Playwright's init scripts run before the
#: page's own and are not subject to its CSP).
CSP_PROBE = """document.addEventListener('securitypolicyviolation', (e) => {
  (window.__cspViolations = window.__cspViolations || []).push(e.violatedDirective + ' ' + e.blockedURI);
});"""


def _get(api: str, token: str, path: str) -> Any:
    status, body = api_get(api + path, token)
    assert status == 200, (path, body[:300])
    return json.loads(body)


class Screens:
    """One browser page on the console: visits a page, checks it rendered, saves its screenshot."""

    def __init__(self, page: Any, web: str) -> None:
        self.page, self.web = page, web
        self.problems: list[str] = []
        page.on(
            "console",
            lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

    async def visit(self, path: str, heading: str) -> None:
        response = await self.page.goto(self.web + path)
        assert response is not None, path
        assert response.status == 200, (path, response.status)
        await self.heading(heading)

    async def heading(self, expected: str) -> None:
        shown = " ".join((await self.page.locator("h1").first.inner_text()).split())
        assert shown.startswith(expected), (self.page.url, shown)

    async def shot(self, name: str) -> None:
        violations = await self.page.evaluate("window.__cspViolations || []")
        assert violations == [], (self.page.url, violations)
        assert self.problems == [], (self.page.url, self.problems)
        await self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def _active_samples(page: Any, web: str, timeout: float = 90) -> dict[str, int]:
    """The sample client's services by billing id, once the services list shows both active."""
    listing = f"{web}/admin/services?status=active&client={SAMPLE_CLIENT_ID}"
    rows = page.locator("[data-testid=services-table] tbody tr")
    deadline = time.monotonic() + timeout
    while True:
        await page.goto(listing)
        found: dict[str, int] = {}
        for row in await rows.all():
            if not await row.locator("a").count():
                continue  # "No services match."
            href = await row.locator("a").first.get_attribute("href")
            billing = (await row.locator("td").first.inner_text()).split("(")[-1].rstrip(")")
            if href and href.rsplit("/", 1)[-1].isdigit():
                found[billing.strip()] = int(href.rsplit("/", 1)[-1])
        if {"demo-sample-pve", "demo-sample-vf"} <= found.keys():
            return found
        assert time.monotonic() < deadline, f"the sample services did not become active: {found}"
        await page.wait_for_timeout(1000)


@pytest.mark.slow
async def test_console_pages_on_the_demo_data(tmp_path: Path) -> None:
    require(Path(CHROMIUM).exists(), f"{CHROMIUM} is not installed")
    require(not docs.missing_assets(), "front-end assets are not built (cd frontend && npm run build)")
    from playwright.async_api import async_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    demo = DemoProcess(tmp_path, tmp_path / "demo-data")
    try:
        banner = demo.banner()
        web = banner_field(banner, "Operator console").removesuffix("/admin/")
        api = banner_field(banner, "Operator API")
        token = banner_field(banner, "API token (admin scope)")
        username, password = banner_field(banner, "Operator login").split(" / ")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            try:
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                await context.add_init_script(CSP_PROBE)
                page = await context.new_page()
                page.set_default_timeout(15000)
                screens = Screens(page, web)

                # Sign-in page first, then the demo's printed login.
                await screens.visit("/admin/", "Operator sign-in")
                assert "/admin/login" in page.url
                await screens.shot("login")
                await page.fill("#username", username)
                await page.fill("#password", password)
                await page.click("form[action='/admin/login'] button[type=submit]")
                await page.wait_for_url(f"{web}/admin/")
                await screens.heading("Dashboard")

                # The samples' deploys run after the banner; wait for them in the console itself,
                # so the audit log shows what an operator did rather than a script's polling.
                samples = await _active_samples(page, web)
                pve = _get(api, token, f"/services/{samples['demo-sample-pve']}")
                vf = _get(api, token, f"/services/{samples['demo-sample-vf']}")
                pool = max(_get(api, token, "/ip-pools"), key=lambda p: p["allocated"])
                assert pool["allocated"] >= 1, pool  # the Proxmox sample's address is a demo pool's
                await screens.visit("/admin/", "Dashboard")
                assert await page.locator("[data-testid=services-by-state] .stat").count() >= 1
                await screens.shot("dashboard")

                await screens.visit("/admin/platforms", "Platforms")
                assert await page.locator("[data-testid=platforms-table] tbody tr").count() >= 3
                await screens.shot("platforms")
                await screens.visit(
                    f"/admin/platforms/{pve['platform_id']}", f"Platform {pve['platform_name']}"
                )
                await page.click("form[action$='/test'] button")
                await page.wait_for_selector("[data-testid=test-report]")
                await screens.heading(f"Platform {pve['platform_name']}")
                await screens.shot("platform")

                await screens.visit("/admin/products", "Products")
                assert await page.get_by_role("link", name=pve["product_name"], exact=True).count() == 1
                await screens.shot("products")
                await screens.visit("/admin/pools", "IP pools")
                await screens.shot("pools")
                await screens.visit(f"/admin/pools/{pool['id']}", f"IP pool {pool['name']}")
                await screens.shot("pool")

                await screens.visit("/admin/services?reset=1", "Services")
                table = page.locator("[data-testid=services-table]")
                for sample in (pve, vf):
                    assert await table.get_by_text(sample["server"]["hostname"], exact=True).count() == 1
                await screens.shot("services")
                await screens.visit(f"/admin/services/{pve['id']}", f"Service {pve['id']}")
                await page.click("form[action$='/validate'] button")
                await page.wait_for_selector("[data-testid=findings]")
                findings = page.locator("[data-testid=findings] .badge")
                levels = await findings.evaluate_all("els => els.map(e => e.dataset.state)")
                assert levels, "no findings"
                assert "error" not in levels, levels
                await screens.shot("service")

                await screens.visit("/admin/jobs", "Jobs")
                await screens.shot("jobs")
                await screens.visit(f"/admin/jobs/{vf['job_id']}", f"Job #{vf['job_id']}")
                assert await page.locator("[data-testid=steps-table] tbody tr").count() >= 3
                await screens.shot("job")

                await screens.visit("/admin/stock", "Stock")
                await page.click("form[action='/admin/stock/recalculate'] button")
                await page.wait_for_selector("[data-testid=recalc-summary]")
                await screens.shot("stock")
                await screens.visit("/admin/dns", "DNS providers and zones")
                await page.click("form[action='/admin/dns-reconcile'] button[type=submit]")
                await page.click("[data-confirm-dialog][open] [data-confirm-ok]")
                await page.wait_for_selector("[data-testid=reconcile-addresses]")
                for sample in (pve, vf):
                    ip = sample["server"]["ipv4"][0]
                    outcome = page.locator(f"[data-testid=reconcile-addresses] tr[data-ip='{ip}'] .badge")
                    assert await outcome.get_attribute("data-state") == "unchanged", ip  # set at deploy
                await screens.shot("dns")
                await screens.visit("/admin/upstream", "Upstream requests")
                assert await page.locator("[data-testid=upstream-table] tbody tr").count() >= 10
                # Filtered to the VirtFusion platform's calls, as an operator following one platform.
                await page.select_option("#u-client", vf["platform_type"])
                await page.click("form[data-testid=upstream-search] button[type=submit]")
                await page.wait_for_url("**/admin/upstream?*")
                clients = await page.locator(
                    "[data-testid=upstream-table] tbody tr td:nth-child(2)"
                ).all_inner_texts()
                assert len(clients) >= 3, clients
                assert set(clients) == {vf["platform_type"]}, clients
                await screens.heading("Upstream requests")
                await screens.shot("upstream")
                await screens.visit("/admin/audit", "Audit log")
                audit = await page.inner_text("[data-testid=audit-table]")
                assert "service.create" in audit
                assert "admin.login" in audit
                await screens.shot("audit")

                # New service: the VirtFusion product chosen and the form filled in, not sent.
                await screens.visit("/admin/services/new", "New service")
                await page.click(f"[data-testid=choose-{vf['product_id']}]")
                await page.wait_for_selector("[data-testid=new-service-form]")
                await page.fill("#client_id", "1002")
                await page.fill("#client_name", "Grace Example")
                await page.fill("#client_email", "grace@example.net")
                await page.fill("#hostname", "grace-vf.demo.example.net")
                await page.select_option("#os", index=1)
                await screens.heading("New service")
                await screens.shot("new-service")

                await page.emulate_media(color_scheme="dark")
                await screens.visit("/admin/", "Dashboard")
                await screens.shot("dashboard-dark")
            finally:
                await browser.close()
    finally:
        code = demo.stop()
    assert code == 0, demo.stderr_path.read_text()[-3000:]
