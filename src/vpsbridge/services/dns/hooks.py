"""What provisioning calls after a server changes: queue its "Set DNS records" job.

The calls only enqueue (one short transaction), so DNS never slows down or fails a deploy. Jobs are
deduplicated per server and kind of change: a second "provisioned" while the first is still queued
is the same job. A rename job reads the server's hostname when it runs, so two quick renames queued
together end at the latest name while rewriting PTRs that still hold the first old one.

Termination snapshots the server's addresses and hostname into the job, because by the time the job
runs the addresses may already be released and the server row changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vpsbridge.jobs.queue import enqueue
from vpsbridge.services.dns.addresses import load_target

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

DNS_SYNC = "dns_sync"
MODES = ("provision", "rename", "delete", "force", "reconcile")


def resource_key(payload: dict[str, Any]) -> str:
    return f"dns:server:{payload['server_id']}"


async def enqueue_dns_sync(
    ctx: AppContext, server_id: int, mode: str, *, extra: dict[str, Any] | None = None
) -> int:
    """Queue a ``dns_sync`` job for ``server_id`` in ``mode``; returns the (possibly existing) job id."""
    if mode not in MODES:
        raise ValueError(f"unknown DNS sync mode {mode!r} (one of {', '.join(MODES)})")
    payload: dict[str, Any] = {"server_id": int(server_id), "mode": mode, **(extra or {})}
    return await enqueue(
        ctx,
        DNS_SYNC,
        payload,
        dedupe_key=f"{DNS_SYNC}:{int(server_id)}:{mode}",
        resource_key=resource_key(payload),
    )


async def on_server_provisioned(ctx: AppContext, server_id: int) -> int:
    """Forward records and a PTR for every address of a newly built server."""
    return await enqueue_dns_sync(ctx, server_id, "provision")


async def on_server_renamed(ctx: AppContext, server_id: int, old: str | None, new: str) -> int:
    """Move forward records to ``new``; rewrite only the PTRs still naming ``old``."""
    return await enqueue_dns_sync(ctx, server_id, "rename", extra={"old_hostname": old, "new_hostname": new})


async def on_server_terminated(ctx: AppContext, server_id: int) -> int:
    """Delete the server's PTRs and forward records (addresses captured now, before release)."""
    target = await load_target(ctx, server_id)
    return await enqueue_dns_sync(ctx, server_id, "delete", extra={"target": target.as_dict()})
