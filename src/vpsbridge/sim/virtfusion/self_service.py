"""Self-service (hourly) billing of the simulated panel: usage, report, hourly stats and the balance.

VirtFusion bills users whose self-service mode includes hourly billing (``selfService`` 1 or 3) for
every started hour of each of their servers, in calendar-month periods; the monthly price of a
server is turned into an hourly one with the ``monthToHourRate`` of 730 hours. Credit added through
``POST /selfService/credit/...`` is spent by that usage, so the balance ``hourlyStats`` reports
(``credit.value``) is credit minus what the servers used since they were created. Users without
hourly billing get the empty answers of the spec's examples: zero usage, totals of ``false``.

Prices are the simulator's own (4.00 per GB of memory and 1.00 per core a month). The spec shows
the per-server lines of a report and of a usage period only as empty lists, so their shape here is
an assumption: ``id``, ``name``, ``hours`` and the amount (``value`` in reports, ``token`` /
``tokenReal`` in usage periods, matching the totals' names).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from vpsbridge.core.traffic import Window, add_months, days_in_month, month_start
from vpsbridge.sim.virtfusion.state import Server, User, VirtFusionState

HOURLY_MODES = frozenset({1, 3})
MONTH_TO_HOUR_RATE = 730
PRICE_PER_GB_MEMORY = 4.0
PRICE_PER_CORE = 1.0
CURRENCY: dict[str, Any] = {"prefix": "", "suffix": "", "code": ""}


def bills_hourly(user: User) -> bool:
    return user.self_service in HOURLY_MODES


def hourly_rate(server: Server) -> float:
    monthly = server.memory / 1024 * PRICE_PER_GB_MEMORY + server.cpu_cores * PRICE_PER_CORE
    return round(monthly / MONTH_TO_HOUR_RATE, 6)


def billed_hours(server: Server, window: Window, now: dt.datetime) -> int:
    """Started hours of ``server`` inside ``window`` up to ``now`` (a started hour is billed whole)."""
    part = window.clip(start=server.created, end=now)
    return math.ceil(part.seconds / 3600) if part.seconds > 0 else 0


def period(now: dt.datetime, back: int = 0) -> Window:
    """The calendar month ``back`` months before the current one."""
    start = add_months(month_start(now), -back)
    return Window(start, add_months(start, 1))


def servers_of(state: VirtFusionState, user: User) -> list[Server]:
    return sorted((s for s in state.servers.values() if s.owner_id == user.id), key=lambda s: s.id)


def lines(state: VirtFusionState, user: User, window: Window, now: dt.datetime) -> list[dict[str, Any]]:
    """(server, hours, amount) per server of an hourly user in ``window``; none for other users."""
    if not bills_hourly(user):
        return []
    out: list[dict[str, Any]] = []
    for server in servers_of(state, user):
        hours = billed_hours(server, window, now)
        if hours:
            out.append(
                {
                    "id": server.id,
                    "name": server.name or server.hostname or f"server {server.id}",
                    "hours": hours,
                    "amount": round(hours * hourly_rate(server), 2),
                }
            )
    return out


def spent(state: VirtFusionState, user: User, now: dt.datetime) -> float:
    """Everything the user's servers have used since they were created."""
    if not bills_hourly(user):
        return 0.0
    return sum(billed_hours(s, Window(s.created, now), now) * hourly_rate(s) for s in servers_of(state, user))


def balance(state: VirtFusionState, user: User, now: dt.datetime) -> float:
    return round(state.credit_balance(user) - spent(state, user, now), 2)


def _block(hours: float, amount: float) -> dict[str, Any]:
    return {"hours": hours, "token": round(amount), "tokenReal": round(amount, 2)}


def usage(state: VirtFusionState, user: User, now: dt.datetime, range_: str) -> dict[str, Any]:
    """``GET /selfService/usage/byUserExtRelationId/{ext}``'s ``data`` (the current month)."""
    window = period(now)
    rows = lines(state, user, window, now)
    total = _block(sum(r["hours"] for r in rows), sum(r["amount"] for r in rows))
    days = days_in_month(window.start.year, window.start.month)
    return {
        "user": {
            "id": user.id,
            "relationalId": user.ext_relation_id,
            "currency": None,
            "timezone": "Europe/London",
            "name": user.name,
            "email": user.email,
        },
        "usageServers": total,
        "usageServersBillable": total,
        "usageAddons": _block(0, 0),
        "usageAddonsBillable": _block(0, 0),
        "periods": [
            {
                "period": window.start.date().isoformat(),
                "range": range_,
                "start": window.start.isoformat(),
                "end": (window.end - dt.timedelta(seconds=1)).isoformat(),
                "timezone": "UTC",
                "currentPeriod": True,
                "hoursInMonthPeriod": days * 24,
                "monthToHourRate": MONTH_TO_HOUR_RATE,
                "monthToHourRateType": 1,
                "days": days,
                "hours": days * 24,
                "minutes": days * 1440,
                "seconds": days * 86400,
                "usageServers": total,
                "usageServersBillable": total,
                "usageAddons": _block(0, 0),
                "usageAddonsBillable": _block(0, 0),
                "servers": [
                    {"id": r["id"], "name": r["name"], **_block(r["hours"], r["amount"])} for r in rows
                ],
            }
        ],
    }


def _term(window: Window) -> str:
    return window.start.strftime("%B %Y")


def report(state: VirtFusionState, user: User, now: dt.datetime, back: int) -> dict[str, Any]:
    """``GET /selfService/report/byUserExtRelationId/{ext}``'s ``data`` for ``back`` months ago."""
    window = period(now, back)
    rows = lines(state, user, window, now)
    if rows:
        hours = sum(r["hours"] for r in rows)
        value = f"{sum(r['amount'] for r in rows):.2f}"
        total: dict[str, Any] = {"hours": hours, "value": value, "tokens": False}
    else:
        total = {"hours": False, "value": False, "tokens": False}
    return {
        "usage": {
            "servers": [
                {"id": r["id"], "name": r["name"], "hours": r["hours"], "value": f"{r['amount']:.2f}"}
                for r in rows
            ],
            "serversTotal": total,
            "hourConversionRate": False,
            "monthlyTotal": total,
            "addonsTotal": {"hours": 0, "value": 0, "tokens": False},
            "taxStatus": 3,
            "success": bool(rows),
            "history": str(back),
            "breakdown": True,
            "term": _term(window),
            "previousTerm": _term(period(now, back + 1)),
            "nextTerm": _term(period(now, back - 1)),
            "period": {
                "ymd": window.start.date().isoformat(),
                "start": window.start.isoformat(),
                "end": (window.end - dt.timedelta(days=1)).isoformat(),
            },
            "showHourlyRate": False,
            "showMonthlyRate": False,
        },
        "currency": CURRENCY | {"currentValue": 0, "value": 0, "default": CURRENCY},
        "limits": {"success": True, "packs": []},
    }


def hourly_stats(state: VirtFusionState, user: User, now: dt.datetime) -> dict[str, Any]:
    """``GET /selfService/hourlyStats/byUserExtRelationId/{ext}``'s ``data``: the month and the balance."""
    window = period(now)
    rows = lines(state, user, window, now)
    return {
        "periodId": 0,
        "period": _term(window),
        "previousPeriod": _term(period(now, 1)),
        "nextPeriod": _term(period(now, -1)),
        "monthlyTotal": {
            "hours": sum(r["hours"] for r in rows),
            "value": f"{sum(r['amount'] for r in rows):.2f}",
            "tokens": False,
        },
        "servers": len(servers_of(state, user)),
        "credit": {"value": balance(state, user, now)},
        "currency": CURRENCY | {"value": 0, "currentValue": 0},
    }
