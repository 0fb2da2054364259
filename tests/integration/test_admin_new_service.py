"""The console's "New service" page over HTTP: products with live stock, the form with the product's
operating systems, a create that goes through the provisioning service (audited as the operator,
deploy job queued, redirect to the service), one server per sent form, refusals in words (out of
stock, a bad host name) that create nothing - on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from admin_support import audit_actions, make_admin
from admin_vf_support import VfConsole, vfc
from sqlalchemy import func, select

from vpsbridge.jobs.worker import Worker
from vpsbridge.services import admin_auth
from vpsbridge.services.audit import Actor
from vpsbridge.store.models import Job, Service
from vpsbridge.web.app import create_app

__all__ = ["vfc"]

ORIGIN = "https://console.test"
SAME = {"origin": ORIGIN, "sec-fetch-site": "same-origin"}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvY1q2kLtLNEo0SQmZrTCMpC9VuL7UG5ElmZ1kRfX0p ops@example.net"


def _field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" (?:content|value)="([^"]*)"', html)
    assert found is not None, f"no {name} in page"
    return found.group(1)


@pytest.fixture
async def console(vfc: VfConsole) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client signed in as an operator (WHMCS single sign-on) and its CSRF token."""
    await make_admin(vfc.app, "operator")
    app = create_app(context=vfc.app, migrate=False)
    app.state.ctx = vfc.app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN, follow_redirects=False) as client:
        minted = await admin_auth.mint_admin_sso(vfc.app, "operator", Actor("bridge", "whmcs"))
        assert (await client.get(minted.path)).status_code == 303
        page = await client.get("/admin/")
        yield client, _field(page.text, "csrf-token")


async def _form(client: httpx.AsyncClient, product_id: int) -> dict[str, str]:
    page = await client.get(f"/admin/services/new?product={product_id}")
    assert page.status_code == 200, page.text[:500]
    return {
        "csrf_token": _field(page.text, "csrf-token"),
        "form_key": _field(page.text, "form_key"),
        "product": str(product_id),
        "client_id": "4242",
        "client_name": "Grace Hopper",
        "client_email": "grace@example.net",
        "hostname": "web7.example.net",
        "os": "1",
        "ssh_keys": KEY,
    }


async def _services(vfc: VfConsole) -> int:
    async with vfc.app.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Service)) or 0)


async def _drain(vfc: VfConsole) -> None:
    await Worker(vfc.app, concurrency=4, periodic=False, wakeup=False).run_until_idle(timeout=60)


def _row(html: str, product_id: int) -> str:
    return html.split(f'data-product="{product_id}"')[1].split("</tr>")[0]


def _quantity(html: str, product_id: int) -> int:
    found = re.search(r'class="mono"[^>]*>(\d+)</a>', _row(html, product_id))
    assert found is not None, _row(html, product_id)
    return int(found.group(1))


async def test_new_service_lists_products_with_stock_and_creates_through_provisioning(
    vfc: VfConsole, console: tuple[httpx.AsyncClient, str]
) -> None:
    client, _ = console
    listing = await client.get("/admin/services/new")
    assert listing.status_code == 200
    assert "VPS 1G London" in listing.text
    assert f'data-testid="choose-{vfc.small}"' in listing.text
    before = _quantity(listing.text, vfc.small)  # computed from the simulator on this page view
    assert before > 0

    form = await _form(client, vfc.small)
    page = (await client.get(f"/admin/services/new?product={vfc.small}")).text
    assert '<option value="1"' in page  # the product's OS gallery, from the platform
    assert "Windows" not in page  # offered for other packages only
    answer = await client.post("/admin/services/new", data=form, headers=SAME)
    assert answer.status_code == 303, answer.text.split("create-error")[-1][:600]
    location = answer.headers["location"]
    path, _, query = location.partition("?")
    service_id = int(path.rsplit("/", 1)[1])
    job_id = int(urllib.parse.parse_qs(query)["job"][0])

    async with vfc.app.db.session() as session:
        service = await session.get(Service, service_id)
        assert service is not None
        assert service.client_id == "4242"
        assert service.billing_service_id is None
        job = await session.get(Job, job_id)
        assert job is not None
        assert job.kind == "service.deploy"
        assert job.payload["ssh_keys"] == [KEY]
        assert job.payload["hostname"] == "web7.example.net"
    created = await audit_actions(vfc.app, "service.create")
    assert [(r.actor_type, r.object_id) for r in created] == [("admin", str(service_id))]
    assert [r.actor_type for r in await audit_actions(vfc.app, "service.claim")] == ["admin"]
    user = next(u for u in vfc.sim.users.values() if u.email == "grace@example.net")
    assert user.name == "Grace Hopper"

    shown = await client.get(location)
    assert shown.status_code == 200
    assert f'href="/admin/jobs/{job_id}" data-testid="flash-job"' in shown.text
    assert "web7.example.net" in shown.text
    assert 'hx-select="#service-live"' in shown.text  # the page follows the deploy while it runs
    await _drain(vfc)
    done = await client.get(path)
    assert 'data-state="active"' in done.text.split('data-testid="service-status"')[1][:200]
    assert 'hx-select="#service-live"' not in done.text


async def test_a_form_sent_twice_creates_one_server(
    vfc: VfConsole, console: tuple[httpx.AsyncClient, str]
) -> None:
    client, _ = console
    form = await _form(client, vfc.small)
    first = await client.post("/admin/services/new", data=form, headers=SAME)
    again = await client.post("/admin/services/new", data=form, headers=SAME)
    assert first.status_code == again.status_code == 303
    assert again.headers["location"].split("?")[0] == first.headers["location"].split("?")[0]
    assert await _services(vfc) == 1


async def test_out_of_stock_and_bad_input_are_refused_in_words(
    vfc: VfConsole, console: tuple[httpx.AsyncClient, str]
) -> None:
    client, _ = console
    listing = await client.get("/admin/services/new")
    assert f'data-testid="choose-{vfc.full}"' not in listing.text  # nothing to choose
    assert _quantity(listing.text, vfc.full) == 0
    assert "out of stock" in _row(listing.text, vfc.full)
    chosen = await client.get(f"/admin/services/new?product={vfc.full}")
    assert 'data-testid="out-of-stock"' in chosen.text
    assert 'data-testid="new-service-form"' not in chosen.text

    # A hand-made POST for it (the page offers no form) is refused by the live check.
    form = await _form(client, vfc.small)
    refused = await client.post("/admin/services/new", data={**form, "product": str(vfc.full)}, headers=SAME)
    assert refused.status_code == 409
    assert "VPS 4G Frankfurt is out of stock" in refused.text
    assert await _services(vfc) == 0

    form = await _form(client, vfc.small)
    bad = await client.post("/admin/services/new", data={**form, "hostname": "-bad-.example"}, headers=SAME)
    assert bad.status_code == 422
    assert 'id="hostname-error"' in bad.text
    assert 'value="Grace Hopper"' in bad.text  # what was typed is kept
    assert _field(bad.text, "form_key") != form["form_key"]
    # The refused form cannot be sent again; the page that answered it can.
    stale = await client.post("/admin/services/new", data=form, headers=SAME)
    assert stale.status_code == 409
    form = await _form(client, vfc.small)
    wrong_os = await client.post("/admin/services/new", data={**form, "os": "6"}, headers=SAME)
    assert wrong_os.status_code == 422  # Windows is not offered for this package
    assert 'id="os-error"' in wrong_os.text
    form = await _form(client, vfc.small)
    named = await client.post("/admin/services/new", data={**form, "client_id": "c-42"}, headers=SAME)
    assert named.status_code == 422  # VirtFusion keys its users by the client's number
    assert 'id="client_id-error"' in named.text
    form = await _form(client, vfc.small)
    bad_key = await client.post("/admin/services/new", data={**form, "ssh_keys": "hello"}, headers=SAME)
    assert bad_key.status_code == 422
    assert 'id="ssh_keys-error"' in bad_key.text
    assert await _services(vfc) == 0


async def test_new_service_page_is_german(vfc: VfConsole, console: tuple[httpx.AsyncClient, str]) -> None:
    client, _ = console
    page = await client.get(f"/admin/services/new?product={vfc.small}", headers={"Accept-Language": "de"})
    assert "Neuer Dienst" in page.text
    assert "Kunden-ID" in page.text
    assert "New service" not in page.text
    # The message after the redirect is translated too (it travels in English, marked for the catalogue).
    form = await _form(client, vfc.small)
    answer = await client.post("/admin/services/new", data=form, headers=SAME)
    shown = await client.get(answer.headers["location"], headers={"Accept-Language": "de"})
    assert "Dienst angelegt; die Plattform hat den Server angenommen" in shown.text
    assert "Auftrag #" in shown.text.split('data-testid="flash-job"')[1][:40]
