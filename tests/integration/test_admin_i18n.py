"""The operator console for a German operator: after each main action the message is German (names
and numbers in their place), refusals of the console's services come back as German sentences, and
states read as German words - on SQLite and PostgreSQL.

The browser asks for German with ``Accept-Language`` on every request, as a German browser does; the
English sentences must not appear."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from admin_support import PASSWORD, ctx, make_admin, seed_catalog, seed_job
from admin_vf_support import VfConsole, vfc
from provisioning_support import ACTOR

from vpsbridge.jobs.worker import Worker
from vpsbridge.services import admin_auth
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.services.provisioning import create_service
from vpsbridge.web.app import create_app

__all__ = ["ctx", "vfc"]

ORIGIN = "https://console.test"
SAME = {"origin": ORIGIN, "sec-fetch-site": "same-origin"}
GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}


def _field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" (?:content|value)="([^"]*)"', page)
    assert found is not None, f"no {name} in page"
    return found.group(1)


def _text(page: str, testid: str) -> str:
    """The text of the element with ``data-testid`` (tags dropped, entities decoded, spaces joined)."""
    found = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</(?:div|ul|p)>', page, re.S)
    assert found is not None, f"no {testid} in page:\n{page[:1500]}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def _error(page: str) -> str:
    """The sentence of the shared error page."""
    found = re.search(r'<p class="error-message"[^>]*>(.*?)</p>', page, re.S) or re.search(
        r'role="alert"[^>]*>(.*?)</', page, re.S
    )
    assert found is not None, page[:1500]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


class German:
    """A signed-in German browser: posts with the CSRF token, follows a redirect to read its message."""

    def __init__(self, client: httpx.AsyncClient, csrf: str) -> None:
        self.client, self.csrf = client, csrf

    async def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(path, data={"csrf_token": self.csrf, **(data or {})}, headers=SAME)

    async def flash(self, path: str, data: dict[str, str] | None = None) -> tuple[str, str]:
        """(the message shown after the action's redirect, the redirect's path)."""
        answer = await self.post(path, data)
        assert answer.status_code == 303, (path, answer.status_code, answer.text[:800])
        location = answer.headers["location"]
        page = await self.client.get(location)
        assert page.status_code == 200, (location, page.status_code)
        return _text(page.text, "flash"), location.split("?")[0]


@pytest.fixture
async def german(ctx: AppContext) -> AsyncIterator[tuple[German, dict[str, int]]]:
    await make_admin(ctx)
    ids = await seed_catalog(ctx)
    ids["job"] = await seed_job(ctx)
    app = create_app(context=ctx, migrate=False)
    app.state.ctx = ctx
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN, headers=GERMAN) as client:
        form = await client.get("/admin/login")
        wrong = await client.post(
            "/admin/login",
            data={"username": "alice", "password": "nope", "login_token": _field(form.text, "login_token")},
            headers=SAME,
        )
        assert wrong.status_code == 401
        assert _text(wrong.text, "login-error") == "Benutzername oder Passwort ist falsch."
        signed = await client.post(
            "/admin/login",
            data={
                "username": "alice",
                "password": PASSWORD,
                "login_token": _field(wrong.text, "login_token"),
            },
            headers=SAME,
        )
        assert signed.status_code == 303
        page = await client.get("/admin/")
        yield German(client, _field(page.text, "csrf-token")), ids


async def test_catalog_actions_answer_in_german(german: tuple[German, dict[str, int]]) -> None:
    browser, ids = german
    message, platform = await browser.flash(
        "/admin/platforms/new",
        {"name": "dummy-2", "type": "dummy", "url": "dummy://two", "secret_token": "tok", "enabled": "on"},
    )
    assert message == "Plattform dummy-2 hinzugefügt."
    message, _ = await browser.flash(platform, {"name": "dummy-2b", "url": "dummy://two", "enabled": "on"})
    assert message == "Plattform gespeichert."

    product = f"/admin/products/{ids['product']}"
    values = {"name": "Small VPS", "platform": str(ids["platform"]), "stock_buffer_pct": "5", "enabled": "on"}
    message, _ = await browser.flash(product, {**values, "plan": '{"cpu_cores": 2, "memory_mb": 2048}'})
    assert message == "Produkt gespeichert."
    # A form value that does not parse: the field by its German label, the parser's reason as it is.
    bad = await browser.post(product, {**values, "plan": '{"cpu_cores": 2,'})
    assert bad.status_code == 422
    assert _error(bad.text).startswith("Tarif (JSON) ist kein gültiges JSON: ")
    assert "(Zeile 1)." in _error(bad.text)
    bad = await browser.post(product, {**values, "plan": "[1]"})
    assert _error(bad.text) == "Tarif (JSON) muss ein JSON-Objekt sein ({...})."
    bad = await browser.post("/admin/pools/new", {"name": "v4", "network": "198.51.100.0/24", "vlan": "x"})
    assert _error(bad.text) == "VLAN muss eine ganze Zahl sein."

    message, pool = await browser.flash(
        "/admin/pools/new", {"name": "v4-demo", "network": "198.51.100.0/24", "enabled": "on"}
    )
    assert message == "IP-Pool v4-demo hinzugefügt."
    message, _ = await browser.flash(pool, {"name": "v4-demo", "network": "198.51.100.0/24", "enabled": "on"})
    assert message == "IP-Pool gespeichert."
    message, _ = await browser.flash(f"{pool}/delete")
    assert message == "IP-Pool gelöscht."

    message, provider = await browser.flash(
        "/admin/dns/new",
        {
            "name": "pdns",
            "type": "powerdns",
            "url": "http://127.0.0.1:9",
            "secret_api_key": "k",
            "enabled": "on",
        },
    )
    assert message == "DNS-Anbieter pdns hinzugefügt."
    message, _ = await browser.flash(provider, {"name": "pdns", "url": "http://127.0.0.1:9", "enabled": "on"})
    assert message == "DNS-Anbieter gespeichert."
    message, _ = await browser.flash(f"{provider}/delete")
    assert message == "DNS-Anbieter gelöscht."
    message, _ = await browser.flash(f"{platform}/delete")
    assert message == "Plattform gelöscht."


async def test_service_job_and_account_actions_answer_in_german(
    german: tuple[German, dict[str, int]],
) -> None:
    browser, ids = german
    service = f"/admin/services/{ids['service1']}"
    message, _ = await browser.flash(f"{service}/server-id", {"external_id": "9001"})
    assert message == "Server-ID gespeichert."
    clash = await browser.post(f"/admin/services/{ids['service2']}/server-id", {"external_id": "9001"})
    assert clash.status_code == 409
    assert _error(clash.text) == (
        f"Die Server-ID 9001 gehört auf dieser Plattform bereits zum Server-Eintrag {ids['server1']}."
    )

    checked = await browser.post(f"{service}/validate")
    assert checked.status_code == 200
    findings = _text(checked.text, "findings")
    assert "Produkt „Small VPS“ ist aktiviert" in findings
    assert "Plattform „dummy-1“ (dummy) ist aktiviert" in findings
    assert "Tarif ergibt: 1 Kerne, 1024 MB Arbeitsspeicher, 20 GB Datenträger" in findings
    assert "plan resolves" not in findings

    # States are German words in badges and in sentences.
    listing = await browser.client.get("/admin/services")
    assert 'data-state="active">aktiv</span>' in listing.text
    assert 'data-state="suspended">gesperrt</span>' in listing.text

    job = f"/admin/jobs/{ids['job']}"
    message, _ = await browser.flash(f"{job}/reset", {"mode": "retry"})
    assert message == "Auftrag ab dem fehlgeschlagenen Schritt erneut eingereiht."
    queued = await browser.post(f"{job}/delete")
    assert queued.status_code == 409
    assert _error(queued.text) == (
        f"Auftrag {ids['job']} ist noch im Zustand „eingereiht“; "
        "brechen Sie ihn ab, bevor Sie seinen Eintrag löschen."
    )
    message, _ = await browser.flash(f"{job}/cancel")
    assert message == "Auftrag abgebrochen."
    again = await browser.post(f"{job}/cancel")
    assert again.status_code == 409
    assert _error(again.text) == (
        f"Auftrag {ids['job']} ist bereits beendet (abgebrochen); es gibt nichts abzubrechen."
    )
    message, _ = await browser.flash(f"{job}/reset", {"mode": "done"})
    assert message == "Auftrag als erfolgreich markiert."
    refused = await browser.post(f"{job}/reset", {"mode": "retry"})
    assert _error(refused.text) == (
        f"Auftrag {ids['job']} ist im Zustand „erfolgreich“; "
        "nur fehlgeschlagene oder abgebrochene Aufträge lassen sich zurücksetzen."
    )
    message, jobs = await browser.flash(f"{job}/delete")
    assert (message, jobs) == (f"Auftrag {ids['job']} gelöscht.", "/admin/jobs")
    gone = await browser.client.get(job)
    assert gone.status_code == 404
    assert _error(gone.text) == f"Auftrag {ids['job']} existiert nicht."
    missing = await browser.client.get("/admin/upstream/999999")
    assert _error(missing.text) == (
        "Upstream-Anfrage 999999 ist nicht im Protokoll (sie wurde womöglich bereinigt)."
    )

    # Two-factor set-up: a wrong code is refused in German, the right one switches it on.
    started = await browser.post("/admin/account/totp/start")
    ticket = _field(started.text, "ticket")
    wrong = await browser.post("/admin/account/totp/confirm", {"ticket": ticket, "code": "000000"})
    assert wrong.status_code == 422
    assert _error(wrong.text).startswith("Dieser Code passt nicht; prüfen Sie die Uhrzeit")
    secret = re.search(r"secret=([A-Z2-7]+)", html.unescape(started.text))
    assert secret is not None
    message, _ = await browser.flash(
        "/admin/account/totp/confirm", {"ticket": ticket, "code": admin_auth.totp_now(secret.group(1))}
    )
    assert message == "Die Zwei-Faktor-Anmeldung ist an."


@pytest.fixture
async def german_vf(vfc: VfConsole) -> AsyncIterator[tuple[German, int]]:
    """A German operator on the VirtFusion simulator, with one active service."""
    await make_admin(vfc.app, "operator")
    out = await create_service(
        vfc.app,
        {
            "client_id": "4711",
            "client": {"name": "Ada Lovelace", "email": "ada@example.net"},
            "product": vfc.small,
            "os_template": "1",
            "hostname": "web1.example.net",
        },
        ACTOR,
    )
    await Worker(vfc.app, concurrency=4, periodic=False, wakeup=False).run_until_idle(timeout=60)
    app = create_app(context=vfc.app, migrate=False)
    app.state.ctx = vfc.app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN, headers=GERMAN) as client:
        minted = await admin_auth.mint_admin_sso(vfc.app, "operator", Actor("bridge", "whmcs"))
        assert (await client.get(minted.path)).status_code == 303
        page = await client.get("/admin/")
        yield German(client, _field(page.text, "csrf-token")), out.id


async def test_power_terminate_and_new_service_answer_in_german(
    vfc: VfConsole, german_vf: tuple[German, int]
) -> None:
    browser, service_id = german_vf
    service = f"/admin/services/{service_id}"
    page = await browser.client.get(service)
    assert ">Neu starten</button>" in page.text
    assert "'Neu starten' an diesen Server senden?" in html.unescape(page.text)
    message, _ = await browser.flash(f"{service}/power", {"action": "restart"})
    assert message.startswith(
        "„Neu starten“ wurde an die Plattform gesendet; der Auftrag verfolgt ihre Aufgabe."
    )
    assert "Auftrag #" in message  # the link to the job it queued
    unknown = await browser.post(f"{service}/power", {"action": "explode"})
    assert unknown.status_code == 422
    assert _error(unknown.text) == "Wählen Sie eine der Energieaktionen auf der Seite des Dienstes."

    form_page = await browser.client.get(f"/admin/services/new?product={vfc.small}")
    form = {
        "form_key": _field(form_page.text, "form_key"),
        "product": str(vfc.small),
        "client_id": "4242",
        "client_name": "Grace Hopper",
        "client_email": "grace@example.net",
        "hostname": "web7.example.net",
        "os": "1",
        "ssh_keys": "hello",
    }
    refused = await browser.post("/admin/services/new", form)
    assert refused.status_code == 422
    assert "Das sieht nicht wie ein öffentlicher SSH-Schlüssel aus (ssh-ed25519 AAAA...)." in html.unescape(
        refused.text
    )
    assert "does not look like" not in refused.text

    message, _ = await browser.flash(f"{service}/terminate")
    assert message.startswith("Löschung eingereiht; ihr Auftrag löscht den Server auf der Plattform.")
    message, _ = await browser.flash(f"{service}/terminate")
    assert message.startswith("Der Dienst ist bereits gelöscht oder wird gerade gelöscht.")
