"""The result type every platform's stock source returns, and the product inputs it reads.

It is deliberately platform-neutral (VirtFusion now, Proxmox next): a status, a quantity that is
``None`` exactly when the stock must be left alone, the math's breakdown and the inputs that could not
be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

#: ``ok`` computed from capacity (may be 0) · ``missing`` the plan no longer exists upstream (0) ·
#: ``disabled`` the plan is disabled upstream (0) · ``unknown`` an input could not be read (untouched).
StockStatus = Literal["ok", "missing", "disabled", "unknown"]


@dataclass(frozen=True, slots=True)
class StockOutcome:
    status: StockStatus
    quantity: int | None
    breakdown: dict[str, Any] = field(default_factory=dict)
    #: Why the outcome is unknown (one line per input that could not be read).
    unknown: tuple[str, ...] = ()

    @classmethod
    def unknown_because(cls, *reasons: str) -> StockOutcome:
        return cls(status="unknown", quantity=None, breakdown={"unknown": list(reasons)}, unknown=reasons)

    @property
    def known(self) -> bool:
        return self.quantity is not None


@dataclass(frozen=True, slots=True)
class ProductInputs:
    """What a stock source needs of one product row (read once, outside any transaction)."""

    id: int
    name: str
    billing_product_id: str | None
    platform_id: int
    placement: dict[str, Any]
    plan: dict[str, Any]
    buffer_pct: float
