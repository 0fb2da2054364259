"""WHMCS product module settings (``configoption1..24``) mapped onto vpsbridge product fields.

WHMCS stores a product's module settings positionally: ``configoptionN`` is the N-th field that
``vpsbridge_ConfigOptions`` declares. The order is therefore a contract - :data:`MODULE_SETTINGS`
is append-only, and the PHP module declares the same list in the same order. Every bridge call
carries the product id and these values, and the product is upserted from them
(:func:`vpsbridge.services.products.upsert_product_from_billing`), so WHMCS stays the place where
operators edit products and vpsbridge always holds the full settings.

Values arrive as WHMCS stores them: strings, ``"on"``/``""`` for yes/no, and dropdown values as
``"value|Label"`` when a loader supplied labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vpsbridge.services.errors import Invalid

#: (position, key, label) - position N is WHMCS's ``configoptionN``. Append only.
MODULE_SETTINGS: tuple[tuple[int, str, str], ...] = (
    (1, "platform", "Platform"),
    (2, "group", "Hypervisor group"),
    (3, "package", "Package"),
    (4, "default_ipv4", "Default IPv4 addresses"),
    (5, "self_service_mode", "Self-service mode"),
    (6, "topoff_threshold", "Auto top-off threshold"),
    (7, "topoff_amount", "Auto top-off amount"),
    (8, "stock_buffer_pct", "Stock safety buffer %"),
    (9, "terminate_delay_minutes", "Termination delay (minutes)"),
)

SELF_SERVICE_MODES = {0: "disabled", 1: "hourly", 2: "resource_packs", 3: "both"}
DEFAULT_STOCK_BUFFER = 10.0


def setting_value(raw: Any) -> str:
    """The value part of ``"value|Label"`` (loaders give labels), stripped; ``None`` -> ``""``."""
    if raw is None:
        return ""
    return str(raw).split("|", 1)[0].strip()


def _int(raw: Any, label: str, *, default: int | None = None, minimum: int = 0) -> int | None:
    text = setting_value(raw)
    if text == "":
        return default
    try:
        value = int(float(text))
    except ValueError:
        raise Invalid(
            f"product setting {label!r} must be a whole number, got {text!r}", field=label
        ) from None
    if value < minimum:
        raise Invalid(f"product setting {label!r} must be at least {minimum}, got {value}", field=label)
    return value


def _float(raw: Any, label: str, *, default: float) -> float:
    text = setting_value(raw)
    if text == "":
        return default
    try:
        return float(text)
    except ValueError:
        raise Invalid(f"product setting {label!r} must be a number, got {text!r}", field=label) from None


@dataclass(frozen=True)
class ProductSettings:
    """The module settings of one WHMCS product, parsed."""

    platform: str
    group: int | None
    package: int | None
    default_ipv4: int
    self_service_mode: int
    topoff_threshold: float
    topoff_amount: float
    stock_buffer_pct: float
    terminate_delay_minutes: int | None

    def product_fields(self, *, name: str, stock_control: bool) -> dict[str, Any]:
        """Fields for :func:`~vpsbridge.services.products.upsert_product_from_billing`."""
        placement: dict[str, Any] = {}
        if self.group is not None:
            placement["hypervisor_group_id"] = self.group
        plan: dict[str, Any] = {"default_ipv4": self.default_ipv4}
        if self.package is not None:
            plan["package_id"] = self.package
        settings: dict[str, Any] = {
            "self_service_mode": SELF_SERVICE_MODES.get(self.self_service_mode, "disabled"),
            "topoff_threshold": self.topoff_threshold,
            "topoff_amount": self.topoff_amount,
        }
        if self.terminate_delay_minutes is not None:
            settings["terminate_delay_seconds"] = self.terminate_delay_minutes * 60
        return {
            "name": name,
            "platform": int(self.platform) if self.platform.isdigit() else self.platform,
            "placement": placement,
            "plan": plan,
            "stock_control": stock_control,
            "stock_buffer_pct": self.stock_buffer_pct,
            "settings": settings,
        }


def parse_module_settings(params: Mapping[str, Any]) -> ProductSettings:
    """Read ``configoption1..`` from WHMCS module params; raises :class:`Invalid` naming the setting."""

    def raw(position: int) -> Any:
        return params.get(f"configoption{position}")

    platform = setting_value(raw(1))
    if not platform:
        raise Invalid(
            "the product has no platform: choose one under Products > Module Settings > Platform",
            field="Platform",
        )
    mode = _int(raw(5), "Self-service mode", default=0) or 0
    if mode not in SELF_SERVICE_MODES:
        raise Invalid(
            f"product setting 'Self-service mode' must be 0-3, got {mode}", field="Self-service mode"
        )
    buffer = _float(raw(8), "Stock safety buffer %", default=DEFAULT_STOCK_BUFFER)
    return ProductSettings(
        platform=platform,
        group=_int(raw(2), "Hypervisor group", minimum=1),
        package=_int(raw(3), "Package", minimum=1),
        default_ipv4=max(1, _int(raw(4), "Default IPv4 addresses", default=1) or 1),
        self_service_mode=mode,
        topoff_threshold=_float(raw(6), "Auto top-off threshold", default=0.0),
        topoff_amount=_float(raw(7), "Auto top-off amount", default=0.0),
        stock_buffer_pct=min(100.0, max(0.0, buffer)),
        terminate_delay_minutes=_int(raw(9), "Termination delay (minutes)"),
    )


def merge_into(existing: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """Merge the WHMCS-derived dict fields into what the product already holds.

    Operators add settings WHMCS does not know about (``option_names``, ``ignored_options``, a DNS
    zone); an upsert from WHMCS must update its own keys and keep those.
    """
    if existing is None:
        return fields
    merged = dict(fields)
    for key in ("placement", "plan", "settings"):
        current = getattr(existing, key, None)
        if isinstance(current, Mapping):
            merged[key] = {**current, **fields.get(key, {})}
    return merged
