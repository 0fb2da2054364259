"""Reading the console's HTML forms into the shapes the services take.

Forms post strings; the catalog services take typed values and JSON objects (plan, placement,
settings). Empty optional fields mean "not set"; JSON fields must parse to an object, and a secret
field left empty means "unchanged" (the page never shows stored secrets).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import FormData

from vpsbridge.services.errors import Invalid


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
        raise Invalid(f"{name} must be a whole number", field=name) from None


def number(form: FormData, name: str, default: float) -> float:
    raw = text(form, name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise Invalid(f"{name} must be a number", field=name) from None


def json_object(form: FormData, name: str) -> dict[str, Any]:
    raw = text(form, name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise Invalid(f"{name} is not valid JSON: {exc.msg} (line {exc.lineno})", field=name) from None
    if not isinstance(value, dict):
        raise Invalid(f"{name} must be a JSON object ({{...}})", field=name)
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
