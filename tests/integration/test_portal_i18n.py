"""The German catalogues: every translatable string of every UI area has a German translation, the
translations keep their placeholders, and plural forms are looked up as pairs (as ``ngettext`` does)."""

from __future__ import annotations

import re

import admin_support
import httpx2 as httpx
import pytest
from babel.messages.pofile import read_po

from vpsbridge.services.context import AppContext
from vpsbridge.web.app import create_app
from vpsbridge.web.ui import extract
from vpsbridge.web.ui.i18n import translations

ctx = admin_support.ctx

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w*\}")


@pytest.mark.parametrize("area", ["ui", "portal", "admin"])
def test_german_catalogue_is_complete(area: str) -> None:
    assert extract.update(area, check=True) == []


@pytest.mark.parametrize("area", ["ui", "portal", "admin"])
def test_translations_keep_their_placeholders(area: str) -> None:
    with extract.po_path("de", area).open("rb") as fh:
        catalog = read_po(fh, locale="de")
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) == wanted, (message.id, text)


def test_german_plural_and_portal_words() -> None:
    german = translations("de")
    assert german.ngettext("%(num)d day ago", "%(num)d days ago", 1) % {"num": 1} == "vor 1 Tag"
    assert german.ngettext("%(num)d day ago", "%(num)d days ago", 12) % {"num": 12} == "vor 12 Tagen"
    assert german.gettext("Reinstall operating system") == "Betriebssystem neu installieren"
    assert german.gettext("Unmetered") == "Unbegrenzt"


def test_german_operator_console_words() -> None:
    german = translations("de")
    assert german.gettext("Operator sign-in") == "Anmeldung für Betreiber"
    assert german.gettext("unchanged — enter a new value to replace") == (
        "unverändert — neuen Wert eingeben, um ihn zu ersetzen"
    )
    assert german.gettext("Send '%(action)s' to this server?") % {"action": "restart"} == (
        "'restart' an diesen Server senden?"
    )


async def test_operator_console_answers_in_german(ctx: AppContext) -> None:
    app = create_app(context=ctx, migrate=False)
    app.state.ctx = ctx
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as client:
        page = await client.get("/admin/login", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert page.status_code == 200
    assert page.headers["content-language"] == "de"
    assert "Anmeldung für Betreiber" in page.text
    assert "Operator sign-in" not in page.text
