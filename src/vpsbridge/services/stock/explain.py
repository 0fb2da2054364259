"""Why a product shows the stock it shows: per group, per hypervisor, the binding resource.

Shared by ``vpsbridge stock explain``, the operator API and (later) the admin console, so every
surface tells the same story: the buffer applied, what each hypervisor could take of each resource,
which one binds (memory / CPU / storage / server count / IPv4), and any input that was unknown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vpsbridge.services.lookup import Ref
from vpsbridge.services.stock.recalc import recalculate, result_of
from vpsbridge.services.stock.schemas import StockExplanation

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

_BINDING = {
    "memory": "memory",
    "cpu": "CPU",
    "storage": "storage",
    "servers": "server count",
    "ipv4": "IPv4",
    "unbounded": "nothing (every resource unlimited)",
}


async def explain(ctx: AppContext, ref: Ref, *, fresh: bool = False) -> StockExplanation:
    """The stored result of ``ref`` with its breakdown; ``fresh`` recomputes it first."""
    if fresh:
        await recalculate(ctx, [ref])
    result, breakdown, buffer = await result_of(ctx, ref)
    return StockExplanation(result=result, buffer_pct=buffer, breakdown=breakdown)


def _fits(fits: dict[str, Any]) -> str:
    parts = []
    for name in ("memory", "cpu", "storage", "servers"):
        value = fits.get(name)
        parts.append(f"{_BINDING.get(name, name)} {'unlimited' if value is None else value}")
    return ", ".join(parts)


def explain_lines(explanation: StockExplanation) -> list[str]:
    """A plain-text explanation, one line per fact."""
    r = explanation.result
    shown = "nothing yet" if r.quantity is None else str(r.quantity)
    age = "never computed" if r.age_seconds is None else f"computed {r.age_seconds:.0f} s ago"
    lines = [f"{r.product} (id {r.product_id}, platform {r.platform}): {shown} [{r.status}], {age}"]
    b = explanation.breakdown
    if not r.stock_control:
        lines.append("stock control is off: the billing side never receives a quantity for it")
    for reason in b.get("unknown") or []:
        lines.append(f"unknown input: {reason} - the last known quantity is left alone")
    if b.get("unknown"):
        lines.append(f"last known quantity: {b.get('last_known_quantity')}")
    for note in b.get("notes") or []:
        lines.append(f"note: {note}")
    if "footprint" in b:
        fp = b["footprint"]
        lines.append(
            f"package {b.get('package_id', '?')}: {fp['memory_mb']} MB, {fp['cpu_cores']} cores, "
            f"{fp['storage_gb']} GB storage (type {fp['storage_type'] or 'local'}); "
            f"buffer {b.get('buffer_pct')} % of capped resources; {b.get('ipv4_per_server')} IPv4 per server"
        )
    for group in b.get("groups") or []:
        head = f"group {group['id']}: {group['quantity']}"
        if group["status"] == "missing":
            lines.append(f"{head} (the group no longer exists)")
            continue
        if group["binding"] == "ipv4":
            head += f" - bound by IPv4: {group['ipv4_free']} free / {b.get('ipv4_per_server')} per server"
        else:
            head += f" - sum over hypervisors {group['hosts_total']} (IPv4 cap {group['ipv4_cap']})"
        lines.append(head)
        for note in group.get("notes") or []:
            lines.append(f"  note: {note}")
        for host in group.get("hosts") or []:
            if not host["eligible"]:
                lines.append(f"  {host['name']}: 0 ({host['ineligible']})")
                continue
            pool = f", storage on {host['storage_pool']}" if host.get("storage_pool") else ""
            note = f" - {host['note']}" if host.get("note") else ""
            binding = _BINDING.get(host["binding"], host["binding"])
            lines.append(
                f"  {host['name']}: {host['quantity']} bound by {binding} ({_fits(host['fits'])}{pool}){note}"
            )
    return lines
