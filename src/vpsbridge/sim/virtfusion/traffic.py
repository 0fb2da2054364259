"""Traffic history of simulated VirtFusion servers: ``GET /servers/{id}/traffic``'s ``data.monthly[]``.

VirtFusion counts traffic in periods that start on the server's creation day (a server created on
the 6th has periods from the 6th to the 5th, the day clamped to 28), lists them newest first and
numbers them from the oldest (``month`` 1). Nothing exists before the server did: the list starts
with the period it was created in, whose traffic covers only the days since then.

The current period reports the server's live counters (``Server.rx_bytes``/``tx_bytes``, which tests
and the demo set). Earlier periods are synthetic but stable: each server has its own baseline volume
and send/receive ratio, and each period varies around it, all derived from the server id and the
period's start date, so the same server shows the same history on every call and in every run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from vpsbridge.core.traffic import Window, anchored_periods
from vpsbridge.sim.virtfusion.state import Server

HISTORY = 12
GB = 1024**3
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _unit(*parts: object) -> float:
    """A stable number in [0, 1) for ``parts`` (not random: the same inputs give the same value)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def baseline_bytes(server: Server) -> int:
    """The server's typical monthly volume: 20-400 GB, kept under 60 % of a metered allowance."""
    volume = (20 + 380 * _unit("volume", server.id)) * GB
    if server.traffic > 0:
        volume = min(volume, 0.6 * server.traffic * GB)
    return int(volume)


def past_period(server: Server, window: Window) -> tuple[int, int]:
    """(rx, tx) bytes of an earlier period, scaled to the part of it the server existed."""
    share = window.clip(start=server.created).seconds / window.seconds if window.seconds else 0.0
    volume = baseline_bytes(server) * (0.6 + 0.8 * _unit("month", server.id, window.start.date())) * share
    sent = 0.25 + 0.5 * _unit("ratio", server.id)  # most servers send more than they receive
    return int(volume * (1 - sent)), int(volume * sent)


def monthly(server: Server, now: dt.datetime) -> list[dict[str, Any]]:
    """``data.monthly[]`` for ``server`` at ``now``: newest first, at most :data:`HISTORY` periods."""
    periods = anchored_periods(server.created, now, HISTORY)
    current_blocks = [b for b in server.blocks if b.month == 1]
    rows: list[dict[str, Any]] = []
    for index, window in enumerate(periods):
        current = index == 0
        rx, tx = (server.rx_bytes, server.tx_bytes) if current else past_period(server, window)
        rows.append(
            {
                "month": len(periods) - index,
                "start": window.start.strftime(_TIME_FORMAT),
                "end": (window.end - dt.timedelta(seconds=1)).strftime(_TIME_FORMAT),
                "rx": rx,
                "tx": tx,
                "total": rx + tx,
                "limit": server.traffic + sum(b.amount_gb for b in current_blocks)
                if current
                else server.traffic,
                "blocks": [{"id": b.id, "traffic": b.amount_gb} for b in current_blocks] if current else [],
            }
        )
    return rows
