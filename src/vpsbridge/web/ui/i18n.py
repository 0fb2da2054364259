"""Translations for the portal and the operator console (gettext catalogues).

Every string a person reads goes through ``_()`` / ``ngettext()`` in templates and Python (and
``pgettext(context, ...)`` for a word with more than one meaning, such as "Client"). The
catalogue sources are the committed ``.po`` files under ``web/ui/locale/<lang>/LC_MESSAGES/``; they
are compiled in memory with Babel when first needed, so a source checkout, a wheel and the tests all
serve the same words without a separate ``.mo`` build step. English is the source language and needs
no catalogue. ``python -m vpsbridge.web.ui.extract`` lists the strings a catalogue still lacks.

The language of a request comes from the ``vpsb_lang`` cookie (set by the language menu), else the
browser's ``Accept-Language``, else English.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
DEFAULT_LANGUAGE = "en"
#: Language code -> its name in that language (for the menu).
LANGUAGES: dict[str, str] = {"en": "English", "de": "Deutsch"}
LANG_COOKIE = "vpsb_lang"


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``lang`` (English and unknown languages: identity).

    Every ``*.po`` file in the language's folder is merged, so each UI area keeps its own file
    (``ui.po`` shared words, ``portal.po``, ``admin.po``) and nobody edits another area's catalogue.
    Entries are keyed by context and id (``msgctxt``); when two files hold the same key, the first
    file in name order wins, which is why a word that means different things in different places
    needs a context rather than two translations.
    """
    if lang not in LANGUAGES or lang == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    merged = Catalog(locale=lang, domain=DOMAIN)
    for po in sorted(folder.glob("*.po")):
        with po.open("rb") as fh:
            for message in read_po(fh, locale=lang):
                if message.id and message.string and not message.fuzzy:
                    merged[message.id] = message
    buf = io.BytesIO()
    write_mo(buf, merged)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def parse_accept_language(header: str | None) -> list[str]:
    """Primary language codes from an ``Accept-Language`` header, best first."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, index, tag.strip().lower().split("-")[0]))
    return [code for neg_q, _, code in sorted(ranked) if neg_q < 0]


def pick_language(cookie: str | None, accept_language: str | None) -> str:
    """The language to answer in: an explicit choice wins over the browser's preference."""
    if cookie in LANGUAGES:
        return str(cookie)
    for code in parse_accept_language(accept_language):
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


def N_(message: str) -> str:
    """Mark a string for extraction where it is translated later (module constants, defaults)."""
    return message


def gettext_for(lang: str, message: str) -> str:
    """Translate one message outside a template (flash messages, error sentences)."""
    return translations(lang).gettext(message)
