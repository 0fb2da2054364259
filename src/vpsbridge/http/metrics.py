"""Prometheus metrics of upstream calls, one observation per HTTP attempt.

``client`` is the client name (``virtfusion:3``), so an operator can see which platform is slow or
failing; ``outcome`` is one of value/missing/rejected/auth/unknown.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

UPSTREAM_REQUEST_SECONDS = Histogram(
    "vpsbridge_upstream_request_seconds",
    "Duration of requests to upstream APIs (one observation per attempt).",
    ["client", "method", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)

UPSTREAM_ERRORS_TOTAL = Counter(
    "vpsbridge_upstream_errors_total",
    "Upstream requests that did not produce a value or a confirmed 'missing'.",
    ["client", "outcome"],
)
