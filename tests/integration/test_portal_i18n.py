"""The German catalogues: every translatable string of every UI area has a German translation, the
translations keep their placeholders, and plural forms are looked up as pairs (as ``ngettext`` does)."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from vpsbridge.web.ui import extract
from vpsbridge.web.ui.i18n import translations

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w*\}")


@pytest.mark.parametrize(
    "area",
    [
        "ui",
        "portal",
        pytest.param(
            "admin",
            marks=pytest.mark.xfail(strict=True, reason="the operator console has no German catalogue yet"),
        ),
    ],
)
def test_german_catalogue_is_complete(area: str) -> None:
    assert extract.update(area, check=True) == []


@pytest.mark.parametrize("area", ["ui", "portal"])
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
