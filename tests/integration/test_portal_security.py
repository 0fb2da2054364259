"""Every portal route against the security rules of the issue, through the real web app.

The route list is taken from the app itself, so a route added later without a case here fails
``test_every_portal_route_is_covered``. For each: another client's service -> 404; POST without a
CSRF token -> 403; a foreign Origin -> 403; a service without a server -> 409 with a sentence; the
one-time link works once; rate limits answer 429 with Retry-After; hostile names render escaped.
"""

from __future__ import annotations

import re

import portal_support
import pytest
from fastapi.routing import APIRoute
from portal_support import (
    HOSTILE,
    ORIGIN,
    PortalWorld,
    app_client,
    sign_in,
)
from provisioning_support import ACTOR

from vpsbridge.services import portal
from vpsbridge.web.portal import router

# The fixtures this module uses (pytest finds fixtures by module attribute name).
world = portal_support.world
pworld = portal_support.pworld

#: route path -> (method, form data) used to exercise it.
CASES: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/portal/s/{service_id}"): {},
    ("GET", "/portal/s/{service_id}/state"): {},
    ("GET", "/portal/s/{service_id}/stats"): {},
    ("GET", "/portal/s/{service_id}/traffic"): {},
    ("GET", "/portal/s/{service_id}/backups"): {},
    ("GET", "/portal/s/{service_id}/rdns"): {},
    ("GET", "/portal/s/{service_id}/rebuild"): {},
    ("POST", "/portal/s/{service_id}/power"): {"action": "restart"},
    ("POST", "/portal/s/{service_id}/rename"): {"hostname": "ok.example.net", "name": "x"},
    ("POST", "/portal/s/{service_id}/password"): {},
    ("POST", "/portal/s/{service_id}/rebuild"): {"os": "debian-12", "confirm": "x"},
    ("POST", "/portal/s/{service_id}/rdns"): {"ip": "192.0.2.1", "ptr": "a.example"},
    ("POST", "/portal/s/{service_id}/console"): {},
    ("POST", "/portal/s/{service_id}/panel-login"): {},
    ("GET", "/portal/s/{service_id}/billing"): {},
    ("POST", "/portal/s/{service_id}/billing/credit"): {"amount": "10", "request": "k" * 24},
}
#: Routes without a service id (sign-in, sign-out, landing, console websocket).
UNSCOPED = {("GET", "/portal/sso"), ("POST", "/portal/signout"), ("GET", "/portal/")}


def test_every_portal_route_is_covered() -> None:
    found = {
        (method, route.path)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert found - set(CASES) - UNSCOPED == set()


@pytest.mark.parametrize(("method", "path"), list(CASES))
async def test_foreign_service_is_not_found(pworld: PortalWorld, method: str, path: str) -> None:
    async with app_client(pworld) as client:
        token = await sign_in(client, pworld, pworld.mine)
        url = path.format(service_id=pworld.other)
        headers = {"Origin": ORIGIN, "X-CSRF-Token": token}
        answer = await client.request(method, url, data=CASES[(method, path)] or None, headers=headers)
        assert answer.status_code == 404, (url, answer.status_code, answer.text[:200])
        # and nothing about the other client's server leaks into the page
        assert "7002" not in answer.text


@pytest.mark.parametrize(("method", "path"), [c for c in CASES if c[0] == "POST"])
async def test_post_needs_csrf_and_same_origin(pworld: PortalWorld, method: str, path: str) -> None:
    async with app_client(pworld) as client:
        token = await sign_in(client, pworld, pworld.mine)
        url = path.format(service_id=pworld.mine)
        data = CASES[(method, path)]
        no_token = await client.post(url, data=data, headers={"Origin": ORIGIN})
        assert no_token.status_code == 403
        foreign = await client.post(
            url, data=data, headers={"Origin": "https://evil.example", "X-CSRF-Token": token}
        )
        assert foreign.status_code == 403
        cross = await client.post(
            url, data=data, headers={"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": token}
        )
        assert cross.status_code == 403


@pytest.mark.parametrize(("method", "path"), list(CASES))
async def test_signed_out_is_refused(pworld: PortalWorld, method: str, path: str) -> None:
    async with app_client(pworld) as client:
        url = path.format(service_id=pworld.mine)
        answer = await client.request(
            method, url, data=CASES[(method, path)] or None, headers={"Origin": ORIGIN}
        )
        assert answer.status_code == 401


async def test_unprovisioned_service_answers_409_with_a_sentence(pworld: PortalWorld) -> None:
    async with app_client(pworld) as client:
        await sign_in(client, pworld, pworld.mine)
        page = await client.get(f"/portal/s/{pworld.pending}")
        assert page.status_code == 409
        assert "being set up" in page.text
        state = await client.get(f"/portal/s/{pworld.pending}/state", headers={"Accept": "application/json"})
        assert state.status_code == 409
        assert state.json()["error"]["code"] == "not_provisioned"


async def test_sign_in_link_works_once_and_hostile_names_are_escaped(pworld: PortalWorld) -> None:
    async with app_client(pworld) as client:
        link = await portal.mint_portal_link(pworld.ctx, pworld.mine, ACTOR, base_url=ORIGIN)
        first = await client.get(link.url.removeprefix(ORIGIN))
        assert first.status_code == 303
        cookie = first.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        second = await client.get(link.url.removeprefix(ORIGIN))
        assert second.status_code == 401
        page = await client.get(f"/portal/s/{pworld.mine}")
        assert page.status_code == 200
        assert HOSTILE not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert not re.search(r"<script>alert", page.text)
        assert (
            "'unsafe-inline'"
            not in page.headers["content-security-policy"].split("script-src")[1].split(";")[0]
        )


async def test_rate_limits_answer_429_with_retry_after(pworld: PortalWorld) -> None:
    async with app_client(pworld) as client:
        token = await sign_in(client, pworld, pworld.mine)
        headers = {"Origin": ORIGIN, "X-CSRF-Token": token, "Accept": "application/json"}
        url = f"/portal/s/{pworld.mine}/power"
        first = await client.post(url, data={"action": "restart"}, headers=headers)
        assert first.status_code == 200, first.text
        again = await client.post(url, data={"action": "restart"}, headers=headers)
        assert again.status_code == 429
        assert 1 <= int(again.headers["retry-after"]) <= 10
        console = await client.post(f"/portal/s/{pworld.mine}/console", headers=headers)
        assert console.status_code == 200
        assert console.headers["x-frame-options"] == "DENY"
        assert console.headers["cache-control"] == "no-store"
        assert "ticket=" in console.text
        assert (await client.post(f"/portal/s/{pworld.mine}/console", headers=headers)).status_code == 429


async def test_rename_validates_rfc1123_and_display_name(pworld: PortalWorld) -> None:
    async with app_client(pworld) as client:
        token = await sign_in(client, pworld, pworld.mine)
        headers = {"Origin": ORIGIN, "X-CSRF-Token": token, "Accept": "application/json"}
        url = f"/portal/s/{pworld.mine}/rename"
        bad = await client.post(url, data={"hostname": "-bad-.example"}, headers=headers)
        assert bad.status_code == 422
        rtl = await client.post(url, data={"hostname": "ok.example", "name": "a\u202eb"}, headers=headers)
        assert rtl.status_code == 422
        good = await client.post(
            url, data={"hostname": "web1.example.net", "name": "Web one"}, headers=headers
        )
        assert good.status_code == 303
        page = await client.get(good.headers["location"])
        assert "web1.example.net" in page.text
