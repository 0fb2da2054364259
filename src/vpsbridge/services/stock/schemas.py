"""What the stock services return to the CLI, the operator API and the billing bridge."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class StockResultOut(_Out):
    """The stored stock of one product and how old it is."""

    product_id: int
    product: str
    billing_product_id: str | None
    platform: str
    stock_control: bool
    #: Last known quantity (``None`` = never computed successfully).
    quantity: int | None
    #: ``ok`` · ``missing`` (plan gone: 0) · ``disabled`` (plan disabled: 0) · ``unknown`` (left alone)
    #: · ``never`` (not computed yet).
    status: str
    computed_at: dt.datetime | None
    age_seconds: float | None
    unknown: list[str] = Field(default_factory=list)


class RecalcSummary(_Out):
    """``total`` = ``updated`` (a quantity above 0) + ``zeroed`` (0) + ``skipped`` (left untouched)."""

    total: int = 0
    updated: int = 0
    zeroed: int = 0
    skipped: int = 0


class RecalcReport(_Out):
    """ "Recalculate now": ``{product id: quantity or null}`` and the summary."""

    results: dict[str, int | None]
    summary: RecalcSummary
    products: list[StockResultOut] = Field(default_factory=list)


class StockExplanation(_Out):
    """Why a product shows what it shows: the stored result with the full breakdown."""

    result: StockResultOut
    buffer_pct: float
    breakdown: dict[str, Any]
