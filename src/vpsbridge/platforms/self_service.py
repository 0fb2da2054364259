"""Self-service (hourly credit) billing facts a platform keeps per client: balance, usage, report.

Only platforms that bill their own users by the hour have these (VirtFusion's self-service); a
driver offers them by having :data:`SELF_SERVICE_METHODS`, which :func:`offers_self_service` checks,
so the portal can leave the billing panel out everywhere else. Amounts are in the platform's
currency (its tokens are credited 1:1 for money paid in billing); ``Currency`` says how to write
them. Like every driver output these are plain frozen models, free of vendor field names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

#: The driver methods a self-service platform implements (``credit_balance`` and ``add_credit`` are
#: the ones the billing bridge already uses; the other two feed the client's usage panel).
SELF_SERVICE_METHODS = ("credit_balance", "add_credit", "hourly_usage", "usage_report")

#: A product's ``self_service_mode`` and its number in the platform's user record (VirtFusion's
#: ``selfService``): what a new client's panel user is created with, and whether the portal bills.
SELF_SERVICE_MODES = {"disabled": 0, "hourly": 1, "resource_packs": 2, "both": 3}


def self_service_level(settings: Mapping[str, Any]) -> int:
    """The numeric self-service mode of a product's settings (0 when unset or unknown)."""
    return SELF_SERVICE_MODES.get(str(settings.get("self_service_mode") or "disabled"), 0)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Currency(_Frozen):
    """How the platform writes amounts: ``prefix`` + number + ``suffix`` (all may be empty)."""

    code: str = ""
    prefix: str = ""
    suffix: str = ""


class HourlyUsage(_Frozen):
    """What the client's hourly servers used in the current billing period."""

    period_start: dt.datetime
    period_end: dt.datetime
    hours: float = 0.0
    cost: float = 0.0
    currency: Currency = Currency()


class UsageLine(_Frozen):
    """One server's line of a usage report."""

    server_id: str | None = None
    name: str
    hours: float = 0.0
    cost: float = 0.0


class UsageReport(_Frozen):
    """A billing period's report: a line per server and the period's total."""

    term: str = ""
    period_start: dt.datetime
    period_end: dt.datetime
    lines: tuple[UsageLine, ...] = ()
    total_hours: float = 0.0
    total_cost: float = 0.0
    currency: Currency = Currency()


def offers_self_service(driver_class: type) -> bool:
    """Whether a driver class has every self-service method (the others get no billing panel)."""
    return all(callable(getattr(driver_class, name, None)) for name in SELF_SERVICE_METHODS)
