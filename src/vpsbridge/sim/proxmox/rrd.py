"""``GET /nodes/{node}/qemu/{vmid}/rrddata`` of the simulated cluster: averaged points per timeframe.

What Proxmox answers depends on the RRD format its version writes (``PVE/RRD.pm``
``create_rrd_data``): PVE 9 (``pve-vm-9.0``) keeps hour = 60 s x 60, day = 60 s x 1440,
week = 30 min x 336, month = 30 min x 1440 and year = 6 h x 1440; earlier versions (``pve2-vm``)
keep 70 rows each of 1 min, 30 min, 3 h, 12 h and 7 days. Each row is labelled with the start of the
interval it averages, and rows from before the VM existed carry nothing but ``time`` - which is how
a client can tell "no data" from "no traffic".

Network rates are synthetic but stable: every VM has its own baseline and each day varies around
it, derived from the VMID and the day, so the averages of one day agree across timeframes and runs
(a month estimated from the ``year`` rows matches the same month from the ``month`` rows). The VM's
creation time is the ``ctime`` in its ``meta`` config line, as Proxmox records it.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from vpsbridge.core.disks import parse_property_string
from vpsbridge.sim.proxmox.state import ProxmoxState, SimVM

DAY = 86400
#: timeframe -> (step in seconds, rows), per RRD format.
PVE9_RESOLUTIONS: dict[str, tuple[int, int]] = {
    "hour": (60, 60),
    "day": (60, 1440),
    "week": (1800, 336),
    "month": (1800, 1440),
    "year": (21600, 1440),
}
PVE2_RESOLUTIONS: dict[str, tuple[int, int]] = {
    "hour": (60, 70),
    "day": (1800, 70),
    "week": (10800, 70),
    "month": (43200, 70),
    "year": (604800, 70),
}
#: RRD's xfiles factor: a row whose interval is more than half unknown is itself unknown.
XFF = 0.5


def resolution(version: str, timeframe: str) -> tuple[int, int]:
    """(step, rows) for ``timeframe`` on a cluster of ``version`` (``9.x`` or earlier)."""
    table = PVE9_RESOLUTIONS if int(version.split(".")[0]) >= 9 else PVE2_RESOLUTIONS
    return table[timeframe]


def created_at(vm: SimVM) -> float | None:
    """The VM's creation time from ``meta: ...,ctime=<epoch>``; ``None`` when it has no meta line."""
    meta = parse_property_string(vm.config.get("meta", ""))
    try:
        return float(meta["ctime"])
    except (KeyError, ValueError):
        return None


def _unit(*parts: object) -> float:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def daily_rates(vmid: int, day: int) -> tuple[float, float]:
    """Average (received, sent) bytes per second of ``vmid`` on day number ``day`` since the epoch.

    The baseline is 10-300 GB a month per VM; a day lies between half and one and a half times it.
    """
    monthly = (10 + 290 * _unit("volume", vmid)) * 1024**3
    rate = monthly / (30 * DAY) * (0.5 + _unit("day", vmid, day))
    sent = 0.25 + 0.5 * _unit("ratio", vmid)
    return rate * (1 - sent), rate * sent


def average_rates(vmid: int, start: float, end: float) -> tuple[float, float]:
    """Mean (received, sent) rate over ``[start, end)``, weighting each day by its overlap."""
    rx = tx = 0.0
    day = int(start // DAY)
    while day * DAY < end:
        overlap = min(end, (day + 1) * DAY) - max(start, day * DAY)
        if overlap > 0:
            d_rx, d_tx = daily_rates(vmid, day)
            rx += d_rx * overlap
            tx += d_tx * overlap
        day += 1
    span = end - start
    return (rx / span, tx / span) if span > 0 else (0.0, 0.0)


def rows(sim: ProxmoxState, vm: SimVM, timeframe: str, now: float | None = None) -> list[dict[str, Any]]:
    """The rows ``rrddata`` answers for ``vm`` (``cf=AVERAGE``), oldest first."""
    step, count = resolution(sim.version, timeframe)
    current = int(time.time() if now is None else now) // step * step
    first = current - count * step
    born = created_at(vm)
    running = vm.status == "running"
    seed = vm.vmid % 7 + 1
    out: list[dict[str, Any]] = []
    for i in range(count):
        start = first + i * step
        end = start + step
        known_from = max(start, born) if born is not None else start
        if (end - known_from) / step <= XFF:
            out.append({"time": start})  # before the VM existed: no values at all
            continue
        netin, netout = average_rates(vm.vmid, known_from, end)
        if not running and end > current - 3600:
            netin = netout = 0.0  # a VM that is off now has been quiet for the last hour
        out.append(
            {
                "time": start,
                "netin": netin,
                "netout": netout,
                "cpu": 0.02 * seed if running else 0.0,
                "maxcpu": vm.cores(),
                "mem": float(vm.memory_mb() * 1024**2 * 0.3) if running else 0.0,
                "maxmem": float(vm.memory_mb() * 1024**2),
                "disk": 0.0,
                "maxdisk": float(sim.vm_disk_size(vm)),
                "diskread": 0.0,
                "diskwrite": 0.0,
            }
        )
    return out
