"""Reading the console's HTML forms into the shapes the services take.

Forms post strings; the catalog services take typed values and JSON objects (plan, placement,
settings). Empty optional fields mean "not set"; JSON fields must parse to an object, and a secret
field left empty means "unchanged" (the page never shows stored secrets). A value that does not
parse is refused with a sentence naming the field by its label on the form, in the operator's
language (the ``label`` field of the wording, see :mod:`vpsbridge.web.admin.wording`).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import FormData

from vpsbridge.services.admin_console.wording import WordedInvalid
from vpsbridge.web.ui.i18n import N_

#: Input name -> its label on the form (the same catalogue entries the templates use).
FIELD_LABELS = {
    "prefix_length": N_("Prefix length"),
    "vlan": "VLAN",
    "stock_buffer_pct": N_("Stock buffer %"),
    "settings": N_("Settings (JSON)"),
    "plan": N_("Plan (JSON)"),
    "placement": N_("Placement (JSON)"),
}


def _label(name: str) -> str:
    return FIELD_LABELS.get(name, name)


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional(form: FormData, name: str) -> str | None:
    return text(form, name) or None


def checkbox(form: FormData, name: str) -> bool:
    return text(form, name) in ("on", "1", "true", "yes")


def integer(form: FormData, name: str) -> int | None:
    raw = text(form, name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise WordedInvalid(N_("%(label)s must be a whole number."), field=name, label=_label(name)) from None


def number(form: FormData, name: str, default: float) -> float:
    raw = text(form, name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise WordedInvalid(N_("%(label)s must be a number."), field=name, label=_label(name)) from None


def json_object(form: FormData, name: str) -> dict[str, Any]:
    raw = text(form, name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise WordedInvalid(
            N_("%(label)s is not valid JSON: %(reason)s (line %(line)s)."),
            field=name,
            label=_label(name),
            reason=exc.msg,
            line=exc.lineno,
        ) from None
    if not isinstance(value, dict):
        raise WordedInvalid(N_("%(label)s must be a JSON object ({...})."), field=name, label=_label(name))
    return value


def secret_fields(form: FormData, names: tuple[str, ...]) -> dict[str, Any] | None:
    """New credentials from ``secret_<name>`` inputs; ``None`` when all were left empty (unchanged)."""
    given = {n: text(form, f"secret_{n}") for n in names}
    if not any(given.values()):
        return None
    return {n: v for n, v in given.items() if v}


def lines(form: FormData, name: str, *, commas: bool = False) -> list[str]:
    """One value per line (``commas``: commas separate values too)."""
    raw = text(form, name)
    if commas:
        raw = raw.replace(",", "\n")
    return [line.strip() for line in raw.splitlines() if line.strip()]


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
