"""Live stock: fetch capacity safely, compute it (``core.stock``), store it, answer billing.

Entry points: :func:`recalculate` ("recalculate now" and the periodic task), :func:`results`
(what every product shows), :func:`explain`, and :func:`stock_for_billing` (the billing hooks).
"""

from vpsbridge.services.stock.billing import BillingStockQuery, Trigger, stock_for_billing
from vpsbridge.services.stock.explain import explain, explain_lines
from vpsbridge.services.stock.node_capacity import NodeCapacityStock
from vpsbridge.services.stock.outcome import ProductInputs, StockOutcome
from vpsbridge.services.stock.recalc import FRESH_SECONDS, PAGE_RECOMPUTE_SECONDS, recalculate, results
from vpsbridge.services.stock.schemas import RecalcReport, RecalcSummary, StockExplanation, StockResultOut
from vpsbridge.services.stock.sources import EXTRAS_TRANSPORTS, StockSource, register_stock_source

__all__ = [
    "EXTRAS_TRANSPORTS",
    "FRESH_SECONDS",
    "PAGE_RECOMPUTE_SECONDS",
    "BillingStockQuery",
    "NodeCapacityStock",
    "ProductInputs",
    "RecalcReport",
    "RecalcSummary",
    "StockExplanation",
    "StockOutcome",
    "StockResultOut",
    "StockSource",
    "Trigger",
    "explain",
    "explain_lines",
    "recalculate",
    "register_stock_source",
    "results",
    "stock_for_billing",
]
