"""The evaluating operator's journey on the demo's own data, in Debian's Chromium.

``vpsbridge demo`` runs as a subprocess exactly as a person starts it. The test follows the banner's
single sign-on link into the portal as the sample client and walks both sample services (VirtFusion
and Proxmox simulators): overview with its state and addresses, reverse DNS removed and set again,
a restart with confirmation, the console popup showing the demo's VNC screen, a reinstall from the
gallery with typed confirmation and its job. Then it signs in to the operator console with the printed
login, terminates both services and sees their products' stock go back up.

Screenshots land in artifacts/screenshots/demo/; the portal ones in docs/img/ are copied from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from demo_support import DemoProcess, api_get, banner_field, wait_samples_active
from playwright.async_api import Error as PlaywrightError

from conftest import require, require_binary
from live_server import CANVAS_PIXELS, CHROMIUM_FLAGS
from vpsbridge.services.demo_sample import PORTAL_LINK_LABEL
from vpsbridge.web import docs

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "demo"
#: The portal refuses a second reverse DNS edit of one address within this many seconds.
RDNS_EDIT_WINDOW = 10.5


class Journey:
    """Runs the journey's steps in order and records each failure instead of stopping at the first.

    A failed step is reported with its screenshot, and the walk goes on, so one run shows every
    place where the journey breaks (the test still fails at the end when any step did).
    """

    def __init__(self) -> None:
        self.failures: list[str] = []

    @contextlib.asynccontextmanager
    async def step(self, page: Any, name: str) -> AsyncIterator[None]:
        try:
            yield
        except (AssertionError, PlaywrightError) as exc:
            shot = SHOTS / f"failed-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.png"
            with contextlib.suppress(PlaywrightError):
                await page.screenshot(path=str(shot), full_page=True)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            self.failures.append(f"{name}: {first} (screenshot {shot.name})")


class Api:
    """The demo's operator API with the printed token: the test's view behind the browser."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token

    def get(self, path: str) -> Any:
        status, body = api_get(self.base + path, self.token)
        assert status == 200, body
        return json.loads(body)

    def service(self, service_id: int) -> dict[str, Any]:
        data: dict[str, Any] = self.get(f"/services/{service_id}")
        return data

    async def wait_service(self, service_id: int, status: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        service = self.service(service_id)
        while service["status"] != status and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            service = self.service(service_id)
        assert service["status"] == status, service
        return service

    def server_jobs(self, server_id: int) -> list[dict[str, Any]]:
        """The newest jobs working on the server (its resource key), newest first."""
        return [j for j in self.get("/jobs?limit=200") if j.get("resource_key") == f"server:{server_id}"]

    async def wait_job(self, job_id: int, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        job: dict[str, Any] = self.get(f"/jobs/{job_id}")
        while job["status"] not in ("succeeded", "failed", "cancelled") and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            job = self.get(f"/jobs/{job_id}")
        assert job["status"] == "succeeded", job
        return job


async def _wait_running(page: Any, url: str, timeout: float = 30) -> None:
    """Reload the overview until its state badge says running (a deploy or reinstall just ended)."""
    deadline = time.monotonic() + timeout
    while True:
        await page.goto(url)
        badge = (await page.locator("[data-state-badge]").inner_text()).strip()
        if badge == "running":
            return
        assert time.monotonic() < deadline, f"the server did not come up; its badge says {badge!r}"
        await page.wait_for_timeout(1000)


async def _rdns_row(page: Any, ip: str) -> Any:
    await page.locator("#rdns").scroll_into_view_if_needed()
    row = page.locator("#rdns tr", has=page.locator(f"input[name=ip][value='{ip}']"))
    await row.locator("input[name=ptr]").wait_for()
    return row


async def _set_rdns(page: Any, ip: str, value: str, expected_badge: str) -> None:
    row = await _rdns_row(page, ip)
    await row.locator("input[name=ptr]").fill(value)
    await row.locator("button[type=submit]").click()
    await page.wait_for_selector("text=The reverse DNS entry was saved.")
    row = await _rdns_row(page, ip)
    assert await row.locator("input[name=ptr]").input_value() == value
    assert (await row.locator(".badge").inner_text()).strip() == expected_badge


async def _walk_service(page: Any, api: Api, web: str, service_id: int, label: str, journey: Journey) -> None:
    """Overview, reverse DNS, power, console, reinstall: one sample service as its owner sees it."""
    overview_url = f"{web}/portal/s/{service_id}"
    service = api.service(service_id)
    hostname = service["server"]["hostname"]
    ipv4 = service["server"]["ipv4"][0]
    removed_at: float | None = None

    async with journey.step(page, f"{label} overview"):
        await page.goto(overview_url)
        assert (await page.locator("#overview-title").inner_text()).strip() == hostname
        shown = await page.locator(".ip-row .maskable").evaluate_all(
            "els => els.map(e => e.getAttribute('data-value'))"
        )
        assert ipv4 in shown, shown
        await page.locator("#rdns").scroll_into_view_if_needed()
        await page.wait_for_selector("#rdns form input[name=ptr]")
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=str(SHOTS / f"portal-overview-{label}.png"), full_page=True)
        await _wait_running(page, overview_url)

    async with journey.step(page, f"{label} reverse DNS removed"):
        # Provisioning wrote a forward-confirmed PTR; remove it (it is set again at the end).
        await page.goto(overview_url)
        row = await _rdns_row(page, ipv4)
        assert await row.locator("input[name=ptr]").input_value() == hostname
        assert (await row.locator(".badge").inner_text()).strip() == "ok"
        await _set_rdns(page, ipv4, "", "missing")
        removed_at = time.monotonic()

    async with journey.step(page, f"{label} restart with confirmation"):
        await page.goto(overview_url)
        await page.click("[data-power-action=restart]")
        await page.wait_for_selector("dialog[open]")
        await page.screenshot(path=str(SHOTS / f"portal-power-confirm-{label}.png"))
        await page.click("[data-confirm-ok]")
        toast = page.locator(".toast").first
        await toast.wait_for()
        assert await toast.inner_text() == "Restart ✓", await toast.inner_text()  # not an error toast
        await _wait_running(page, overview_url)

    async with journey.step(page, f"{label} console"):
        # The popup connects through the relay to the simulator's console websocket, which carries
        # the demo's real VNC screen.
        await page.goto(overview_url)
        async with page.context.expect_page() as popup_info:
            await page.click("[data-console-button]")
        popup = await popup_info.value
        try:
            await popup.wait_for_url("**/console")
            try:
                await popup.wait_for_selector("body[data-connected='1']", timeout=20000)
            except PlaywrightError:
                status = await popup.locator("[data-console-status]").inner_text()
                await popup.screenshot(path=str(SHOTS / f"failed-{label}-console-popup.png"))
                raise AssertionError(f"the console did not connect; the popup says {status!r}") from None
            await popup.wait_for_timeout(1000)
            lit, colours = await popup.evaluate(CANVAS_PIXELS)
            await popup.screenshot(path=str(SHOTS / f"portal-console-{label}.png"))
            assert lit > 1000, "the console canvas is black: nothing of the VNC screen arrived"
            assert colours > 2, "the console canvas is one flat colour, not the drawn screen"
        finally:
            await popup.close()

    async with journey.step(page, f"{label} reinstall"):
        # From the overview's button: the gallery, a search, typed confirmation, then a job.
        server_id = api.service(service_id)["server"]["id"]
        before = max((j["id"] for j in api.server_jobs(server_id)), default=0)
        await page.goto(overview_url)
        reinstall = page.locator(f"a[href='/portal/s/{service_id}/rebuild']")
        assert await reinstall.count() == 1, "the overview offers no 'Reinstall operating system'"
        await reinstall.click()
        await page.fill("[data-os-search]", "deb")
        await page.locator(".os-card:visible").first.click()
        expected = await page.get_attribute("#confirm", "data-confirm-expected")
        assert expected == hostname
        assert await page.locator("[data-rebuild-submit]").is_disabled()
        await page.fill("#confirm", expected)
        await page.wait_for_selector("[data-rebuild-submit]:not([disabled])")
        await page.screenshot(path=str(SHOTS / f"portal-rebuild-{label}.png"), full_page=True)
        await page.click("[data-rebuild-submit]")
        await page.wait_for_selector("text=The reinstall has started")
        assert page.url.startswith(overview_url)
        jobs = [j for j in api.server_jobs(server_id) if j["id"] > before]
        assert jobs, "the reinstall queued no job for the server"
        await api.wait_job(jobs[0]["id"])
        await _wait_running(page, overview_url)

    async with journey.step(page, f"{label} reverse DNS set"):
        # Now that the edit window has passed; the hostname's A record confirms it, so "ok".
        since = time.monotonic() - removed_at if removed_at is not None else RDNS_EDIT_WINDOW
        await asyncio.sleep(max(0.0, RDNS_EDIT_WINDOW - since))
        await page.goto(overview_url)
        await _set_rdns(page, ipv4, hostname, "ok")


async def _stock(page: Any, web: str, products: list[str]) -> dict[str, str]:
    """Recalculate stock in the operator console and read the quantity shown for each of ``products``."""
    await page.goto(f"{web}/admin/stock")
    await page.click("form[action='/admin/stock/recalculate'] button")
    await page.wait_for_selector("[data-testid=recalc-summary]")
    quantities = {}
    for name in products:
        product_link = page.get_by_role("link", name=name, exact=True)
        row = page.locator("[data-testid=stock-table] tr", has=product_link)
        quantities[name] = (await row.locator("td").nth(3).inner_text()).strip()
    return quantities


@pytest.mark.slow
@pytest.mark.timeout(600)  # a broken journey waits out each step's timeouts before reporting them all
async def test_sample_client_journey_on_the_demo(tmp_path: Path) -> None:
    chromium = require_binary("chromium")
    require_binary("Xvnc")
    require(not docs.missing_assets(), "front-end assets are not built (cd frontend && npm run build)")
    from playwright.async_api import async_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    demo = DemoProcess(tmp_path, tmp_path / "demo-data")
    problems: list[str] = []
    journey = Journey()
    try:
        banner = demo.banner()
        assert "Consoles: not available" not in banner
        web = banner_field(banner, "Operator console").removesuffix("/admin/")
        api = Api(banner_field(banner, "Operator API"), banner_field(banner, "API token (admin scope)"))
        username, password = banner_field(banner, "Operator login").split(" / ")
        link = banner_field(banner, PORTAL_LINK_LABEL)
        ids = await asyncio.to_thread(wait_samples_active, api.base, api.token)
        services = {"virtfusion": ids["demo-sample-vf"], "proxmox": ids["demo-sample-pve"]}
        products = {label: api.service(i)["product_name"] for label, i in services.items()}

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            try:
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                page = await context.new_page()
                page.set_default_timeout(15000)
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                context.on("page", lambda p: p.on("pageerror", lambda e: problems.append(f"popup: {e}")))

                # The banner's link signs the sample client in, straight onto the first service.
                await page.goto(link)
                assert re.search(rf"/portal/s/{services['virtfusion']}\b", page.url), page.url
                for label, service_id in services.items():
                    await _walk_service(page, api, web, service_id, label, journey)

                async with journey.step(page, "documentation screenshots"):
                    # The VirtFusion service's overview and reinstall gallery, its console, and the
                    # overview on a phone.
                    vf = f"{web}/portal/s/{services['virtfusion']}"
                    await page.goto(vf)
                    await page.locator("#rdns").scroll_into_view_if_needed()
                    await page.wait_for_selector("#rdns form input[name=ptr]")
                    await page.evaluate("window.scrollTo(0, 0)")
                    await page.screenshot(path=str(SHOTS / "portal-overview.png"), full_page=True)
                    mobile = await browser.new_context(viewport={"width": 390, "height": 844})
                    await mobile.add_cookies([dict(c) for c in await context.cookies()])  # type: ignore[misc]
                    mpage = await mobile.new_page()
                    await mpage.goto(vf)
                    await mpage.locator("#rdns").scroll_into_view_if_needed()
                    await mpage.wait_for_selector("#rdns form input[name=ptr]")
                    await mpage.evaluate("window.scrollTo(0, 0)")
                    await mpage.screenshot(path=str(SHOTS / "portal-mobile.png"), full_page=True)
                    await mobile.close()
                    await page.goto(f"{vf}/rebuild")
                    await page.fill("[data-os-search]", "deb")
                    await page.screenshot(path=str(SHOTS / "portal-rebuild.png"), full_page=True)
                    console = SHOTS / "portal-console-virtfusion.png"
                    assert console.is_file(), "no console screenshot of the VirtFusion service"
                    (SHOTS / "portal-console.png").write_bytes(console.read_bytes())

                # The operator terminates both services and sees their products' stock come back.
                admin = await browser.new_context(viewport={"width": 1280, "height": 900})
                apage = await admin.new_page()
                apage.set_default_timeout(15000)
                apage.on("pageerror", lambda e: problems.append(f"console page error: {e}"))
                await apage.goto(f"{web}/admin/")
                await apage.fill("#username", username)
                await apage.fill("#password", password)
                await apage.click("form[action='/admin/login'] button[type=submit]")
                await apage.wait_for_url(f"{web}/admin/")
                before = await _stock(apage, web, list(products.values()))
                for label, service_id in services.items():
                    async with journey.step(apage, f"{label} terminated by the operator"):
                        hostname = api.service(service_id)["server"]["hostname"]
                        await apage.goto(f"{web}/admin/services/{service_id}")
                        await apage.click(f"form[action='/admin/services/{service_id}/terminate'] button")
                        ok = apage.locator("dialog[open] [data-confirm-ok]")
                        await ok.wait_for()
                        assert await ok.is_disabled()  # typed confirmation first
                        await apage.fill("dialog[open] [data-confirm-input]", hostname)
                        await apage.screenshot(path=str(SHOTS / f"admin-terminate-{label}.png"))
                        await ok.click()
                        await apage.wait_for_url(f"{web}/admin/services/{service_id}*")
                        await api.wait_service(service_id, "terminated")
                after = await _stock(apage, web, list(products.values()))
                await apage.screenshot(path=str(SHOTS / "admin-stock-after-terminate.png"), full_page=True)
                for name in products.values():
                    async with journey.step(apage, f"{name} stock back up"):
                        assert before[name].isdigit(), f"no stock quantity before ({before[name]!r})"
                        assert after[name].isdigit(), f"no stock quantity after ({after[name]!r})"
                        assert int(after[name]) > int(before[name]), f"stock {before[name]} -> {after[name]}"
            finally:
                await browser.close()
    finally:
        code = demo.stop()
    assert code == 0, demo.stderr_path.read_text()[-3000:]
    assert journey.failures == [], "the journey broke:\n" + "\n".join(journey.failures)
    assert problems == []
