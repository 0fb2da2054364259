"""Keep the translation catalogues complete: ``python -m vpsbridge.web.ui.extract AREA [--check]``.

Collects every translatable string of one UI area - ``_()``/``gettext``/``ngettext``,
``pgettext``/``npgettext`` and ``{% trans %}`` in its templates, ``_(request, "...")`` and
``UiError(status, "...")`` and ``N_("...")`` in its Python modules and in the service packages only
it shows (:data:`AREA_SERVICES`) - and adds the missing ones, untranslated, to
``locale/<lang>/LC_MESSAGES/<area>.po`` for every non-English language; entries the area no longer
uses are dropped. ``--check`` changes nothing and exits 1 when a string is missing, untranslated or
no longer used (the tests run the same check). Areas: ``ui`` (shared layout and infrastructure),
``portal``, ``admin``.

A message is identified by its context and its id, as gettext looks it up: ``pgettext("customer",
"Client")`` and ``pgettext("upstream", "Client")`` are two entries (``msgctxt``) with their own
translations. Contexts matter more than usual here because every area's catalogue is merged into
one at run time (:func:`vpsbridge.web.ui.i18n.translations`): a bare word such as "Client" would get
one translation everywhere, whichever area's file came first.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po, write_po

from vpsbridge.web.ui.i18n import DEFAULT_LANGUAGE, LANGUAGES, LOCALE_DIR

WEB_DIR = Path(__file__).resolve().parent.parent
KEYWORDS: dict[str, Any] = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3),
    "UiError": (2,),
}
PY_KEYWORDS = {"_": (2,), "UiError": (2,), "gettext_for": (2,), "N_": None}


#: Service packages whose sentences only one area shows, marked with their own ``N_()`` (services
#: may not import ``web``): the area translates them, so its catalogue collects them. Paths are
#: relative to the ``vpsbridge`` package (the folder above ``web``).
AREA_SERVICES: dict[str, tuple[str, ...]] = {"admin": ("services/admin_console",)}


def area_sources(area: str) -> tuple[list[Path], list[Path]]:
    """(templates, python modules) of an area, with the service packages it alone shows."""
    base = WEB_DIR / area
    templates = sorted((base / "templates").rglob("*.html")) if (base / "templates").is_dir() else []
    modules = sorted(p for p in base.rglob("*.py") if p.name != "extract.py")
    for package in AREA_SERVICES.get(area, ()):
        folder = WEB_DIR.parent / package
        modules += sorted(folder.rglob("*.py")) if folder.is_dir() else []
    return templates, modules


MessageId = str | tuple[str, str]
#: (msgctxt or None, msgid): how gettext finds a translation.
MessageKey = tuple[str | None, MessageId]


def messages(area: str) -> Iterator[tuple[MessageKey, str, int]]:
    """((context, msgid), file, line) of every translatable string of ``area``."""
    templates, modules = area_sources(area)
    for path in templates:
        for line, message, _comments, context in extract_from_file(
            "jinja2.ext:babel_extract",
            str(path),
            keywords=KEYWORDS,
            options={"extensions": "jinja2.ext.i18n"},
        ):
            yield from _ids(message, context, path, line)
    for path in modules:
        for line, message, _comments, context in extract_from_file("python", str(path), keywords=PY_KEYWORDS):
            yield from _ids(message, context, path, line)


def _ids(
    message: str | tuple[str, ...], context: str | None, path: Path, line: int
) -> Iterator[tuple[MessageKey, str, int]]:
    """Single ids as they are; an ``ngettext`` pair stays one plural entry (``msgid_plural``), since
    gettext looks plurals up by the pair - two separate entries would never be used."""
    where = str(path.relative_to(WEB_DIR if path.is_relative_to(WEB_DIR) else WEB_DIR.parent))
    if isinstance(message, tuple):
        parts = [part for part in message if part]
        if len(parts) == 2:
            yield (context, (parts[0], parts[1])), where, line
            return
        for part in parts:
            yield (context, part), where, line
    elif message:
        yield (context, message), where, line


def describe(key: MessageKey) -> str:
    context, msgid = key
    return f"{msgid!r}" if context is None else f"{msgid!r} (context {context!r})"


def _key_of(entry: Any) -> MessageKey:
    msgid = entry.id if isinstance(entry.id, str) else (entry.id[0], entry.id[1])
    return entry.context, msgid


def po_path(lang: str, area: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{area}.po"


def update(area: str, *, check: bool) -> list[str]:
    """Problems found (missing, untranslated, unused), after fixing the catalogue unless ``check``.

    Fixing adds missing entries untranslated (someone must still translate them) and drops entries
    the area no longer uses.
    """
    found: dict[MessageKey, list[tuple[str, int]]] = {}
    for key, where, line in messages(area):
        found.setdefault(key, []).append((where, line))
    problems: list[str] = []
    for lang in LANGUAGES:
        if lang == DEFAULT_LANGUAGE:
            continue
        path = po_path(lang, area)
        if path.is_file():
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=lang)
        else:
            catalog = Catalog(locale=lang, project="vpsbridge", domain=area)
        for key, locations in found.items():
            context, msgid = key
            entry = catalog.get(msgid, context=context)
            if entry is None:
                where = f"{locations[0][0]}:{locations[0][1]}"
                problems.append(f"{lang}/{area}.po: missing {describe(key)} ({where})")
                catalog.add(
                    msgid, ("", "") if isinstance(msgid, tuple) else "", locations=locations, context=context
                )
            else:
                entry.locations = locations
                strings = entry.string if isinstance(entry.string, tuple | list) else (entry.string,)
                if isinstance(msgid, tuple) and not entry.pluralizable:
                    problems.append(f"{lang}/{area}.po: {msgid[0]!r} needs its plural form {msgid[1]!r}")
                elif not all(strings):
                    problems.append(f"{lang}/{area}.po: untranslated {describe(key)}")
        for entry in list(catalog):
            if entry.id and _key_of(entry) not in found and (entry.context, entry.id) not in found:
                problems.append(f"{lang}/{area}.po: {describe(_key_of(entry))} is no longer used")
                catalog.delete(entry.id, context=entry.context)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as fh:
                write_po(fh, catalog, width=110, sort_output=True, omit_header=False)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("area", choices=["ui", "portal", "admin"])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when incomplete")
    args = parser.parse_args(argv)
    problems = update(args.area, check=args.check)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
