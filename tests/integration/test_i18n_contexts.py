"""Words with two meanings carry a gettext context (``msgctxt``): "Client" is a hosting customer on the
services pages ("Kunde") and an upstream API client in the request log ("API-Client"). The catalogue
tool finds, reports and keeps such entries apart, the compiled catalogue answers ``pgettext``, and no
two areas translate the same entry differently (their catalogues are merged into one)."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import pytest
from admin_support import ctx, make_admin, seed_catalog
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from vpsbridge.services import admin_auth
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.store.models import UpstreamRequest
from vpsbridge.web.app import create_app
from vpsbridge.web.ui import extract
from vpsbridge.web.ui.i18n import translations

__all__ = ["ctx"]


def test_german_catalogue_tells_the_two_clients_apart() -> None:
    german = translations("de")
    assert german.pgettext("hosting customer", "Client") == "Kunde"
    assert german.pgettext("hosting customer", "Client id") == "Kunden-ID"
    assert german.pgettext("upstream API client", "Client") == "API-Client"
    search = german.pgettext("upstream API client", "URL, client or error text")
    assert search == "URL, API-Client oder Fehlertext"
    # No bare "Client" is left to be picked up by whichever page says it next.
    assert german.gettext("Client") == "Client"


def test_no_two_areas_translate_the_same_entry_differently() -> None:
    seen: dict[tuple[str | None, str], tuple[str, object]] = {}
    clashes = []
    for area in ("ui", "portal", "admin"):
        with extract.po_path("de", area).open("rb") as fh:
            for message in read_po(fh, locale="de"):
                if not message.id:
                    continue
                key = (message.context, str(message.id if isinstance(message.id, str) else message.id[0]))
                string = tuple(message.string) if isinstance(message.string, list | tuple) else message.string
                if key in seen and seen[key][1] != string:
                    clashes.append((key, seen[key], (area, string)))
                seen.setdefault(key, (area, string))
    assert clashes == []


def _po(path: Path, entries: list[tuple[str | None, str, str]]) -> None:
    catalog = Catalog(locale="de", domain="admin")
    for context, msgid, string in entries:
        catalog.add(msgid, string, context=context)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, catalog)


def test_the_catalogue_tool_keeps_contexts_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    web, locale = tmp_path / "web", tmp_path / "locale"
    (web / "admin" / "templates").mkdir(parents=True)
    (web / "admin" / "templates" / "page.html").write_text(
        '{{ pgettext("hosting customer", "Client") }} {{ pgettext("upstream API client", "Client") }}\n'
        '{{ npgettext("hosting customer", "%(num)d client", "%(num)d clients", 2) }}\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(extract, "WEB_DIR", web)
    monkeypatch.setattr(extract, "LOCALE_DIR", locale)
    po = locale / "de" / "LC_MESSAGES" / "admin.po"
    _po(po, [("hosting customer", "Client", "Kunde"), (None, "Client", "Kunde")])

    problems = extract.update("admin", check=True)
    assert sorted(problems) == sorted(
        [
            "de/admin.po: missing 'Client' (context 'upstream API client') (admin/templates/page.html:1)",
            "de/admin.po: missing ('%(num)d client', '%(num)d clients') (context 'hosting customer') "
            "(admin/templates/page.html:2)",
            "de/admin.po: 'Client' is no longer used",
        ]
    )
    before = po.read_bytes()
    assert extract.update("admin", check=True) == problems  # --check changes nothing
    assert po.read_bytes() == before

    extract.update("admin", check=False)
    with po.open("rb") as fh:
        catalog = read_po(fh, locale="de")
    customer = catalog.get("Client", context="hosting customer")
    upstream = catalog.get("Client", context="upstream API client")
    plural = catalog.get(("%(num)d client", "%(num)d clients"), context="hosting customer")
    assert customer is not None
    assert customer.string == "Kunde"
    assert upstream is not None
    assert upstream.string == ""  # added, for someone to translate
    assert plural is not None
    assert plural.pluralizable
    assert catalog.get("Client") is None  # the bare entry is gone
    assert extract.update("admin", check=True) == [
        "de/admin.po: untranslated 'Client' (context 'upstream API client')",
        "de/admin.po: untranslated ('%(num)d client', '%(num)d clients') (context 'hosting customer')",
    ]


async def test_console_pages_say_kunde_for_customers_and_api_client_for_upstream(ctx: AppContext) -> None:
    await make_admin(ctx, "operator")
    ids = await seed_catalog(ctx)
    async with ctx.db.session() as session:
        row = UpstreamRequest(
            client="virtfusion:1", method="GET", url="https://x/", status=200, outcome="value"
        )
        session.add(row)
    app = create_app(context=ctx, migrate=False)
    app.state.ctx = ctx
    transport = httpx.ASGITransport(app=app)
    german = {"Accept-Language": "de"}
    async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as client:
        minted = await admin_auth.mint_admin_sso(ctx, "operator", Actor("bridge", "whmcs"))
        await client.get(minted.path)
        services = (await client.get("/admin/services", headers=german)).text
        service = (await client.get(f"/admin/services/{ids['service1']}", headers=german)).text
        upstream = (await client.get("/admin/upstream", headers=german)).text
    assert "<th>Kunde</th>" in services
    assert ">Kunden-ID</label>" in services
    assert "<dt>Kunde</dt>" in service
    assert "Portal als dieser Kunde öffnen" in service
    assert ">API-Client</label>" in upstream
    assert "<th>API-Client</th>" in upstream
    assert "Kunde" not in upstream
