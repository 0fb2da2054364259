"""The "Set DNS records" background job, and the daily additive PTR reconcile.

The job has four steps so an operator can follow it live and a worker that dies resumes where it
stopped: ``prepare`` (what the server has), ``forward`` (A/AAAA in the configured forward zone),
``reverse`` (the PTRs) and ``summary``. Each step is safe to repeat: the providers only write what
differs. DNS trouble never fails the job - it is logged line by line and counted in the summary
(forward ok/err, reverse ok/err, per-zone messages) - because the server itself is fine.

Payload: ``server_id``, ``mode`` (provision, rename, delete, force, reconcile) and, depending on the
mode, ``old_hostname`` (rename) or ``target`` (a snapshot for delete).
"""

from __future__ import annotations

from typing import Any, cast

from vpsbridge.dns.ptr import SyncMode
from vpsbridge.jobs.periodic import TaskLog, TaskResult, periodic_task
from vpsbridge.services.context import AppContext
from vpsbridge.services.dns.addresses import GONE_STATES, ServerTarget, load_target
from vpsbridge.services.dns.hooks import DNS_SYNC, resource_key
from vpsbridge.services.dns.sync import DnsSession, ForwardOutcome, ReverseOutcome, reconcile_fleet
from vpsbridge.services.errors import NotFound
from vpsbridge.workflows.base import Done, Step, StepContext, Workflow, register_workflow


def _target(ctx: StepContext) -> ServerTarget | None:
    data = ctx.state.get("target")
    return ServerTarget.from_dict(data) if data else None


async def prepare(ctx: StepContext) -> Done:
    mode = str(ctx.payload.get("mode") or "provision")
    server_id = int(ctx.payload["server_id"])
    if mode == "delete" and ctx.payload.get("target"):
        target = ServerTarget.from_dict(ctx.payload["target"])
    else:
        try:
            target = await load_target(ctx.app, server_id)
        except NotFound:
            await ctx.log(f"server {server_id} no longer exists; nothing to do", "warning")
            ctx.state["skip"] = "server gone"
            return Done()
        if mode == "rename" and not target.hostname:
            target.hostname = ctx.payload.get("new_hostname")
    if mode != "delete" and target.state in GONE_STATES:
        ctx.state["skip"] = f"server is {target.state}"
        await ctx.log(f"server {server_id} is {target.state}; records are not written", "warning")
    elif mode != "delete" and not target.hostname:
        ctx.state["skip"] = "no hostname"
        await ctx.log(f"server {server_id} has no hostname yet; nothing to write", "warning")
    ctx.state["target"] = target.as_dict()
    public = ", ".join(target.addresses) or "none"
    await ctx.log(
        f"{mode}: server {server_id} {target.hostname or '(no hostname)'}; addresses {public}"
        + (f"; private {', '.join(target.private)}" if target.private else "")
        + (f"; subnets {', '.join(target.subnets)} (no PTR without a host)" if target.subnets else "")
        + (f"; forward zone {target.forward_zone}" if target.forward_zone else "")
    )
    return Done()


async def forward(ctx: StepContext) -> Done:
    target = _target(ctx)
    if target is None or ctx.state.get("skip"):
        return Done()
    mode = str(ctx.payload.get("mode") or "provision")
    if target.forward_zone is None:
        await ctx.log("no forward zone configured for this server's product or pool")
        ctx.state["forward"] = ForwardOutcome().as_dict()
        return Done()
    async with await DnsSession.open(ctx.app) as session:
        outcome = await session.forward(
            target,
            delete=mode == "delete",
            old_hostname=ctx.payload.get("old_hostname") if mode == "rename" else None,
            log=ctx.log,
        )
    ctx.state["forward"] = outcome.as_dict()
    await ctx.log(f"forward records: {outcome.ok} ok, {outcome.errors} errors")
    return Done()


async def reverse(ctx: StepContext) -> Done:
    target = _target(ctx)
    if target is None or ctx.state.get("skip"):
        return Done()
    mode = cast(SyncMode, str(ctx.payload.get("mode") or "provision"))
    ips = target.ptr_addresses(ctx.app.settings.dns_ptr_private)
    if not ips:
        await ctx.log("the server has no address that takes a PTR")
        ctx.state["reverse"] = ReverseOutcome().as_dict()
        return Done()
    async with await DnsSession.open(ctx.app) as session:
        written = (ctx.state.get("forward") or {}).get("written") or []
        if target.hostname and mode != "delete":
            # Forward records written by this job (perhaps by another worker) count as confirmed.
            await session.prime(target.hostname, written)
        outcome = await session.reverse(
            ips,
            target.hostname,
            mode,
            old_hostname=ctx.payload.get("old_hostname") if mode == "rename" else None,
            log=ctx.log,
        )
    ctx.state["reverse"] = outcome.as_dict()
    await ctx.log(f"PTR records: {outcome.ok} ok, {outcome.errors} errors, {len(outcome.entries)} addresses")
    return Done()


async def summary(ctx: StepContext) -> Done:
    if ctx.state.get("skip"):
        return Done({"skipped": ctx.state["skip"]})
    fwd: dict[str, Any] = ctx.state.get("forward") or ForwardOutcome().as_dict()
    rev: dict[str, Any] = ctx.state.get("reverse") or ReverseOutcome().as_dict()
    zones: dict[str, list[str]] = {z: list(m) for z, m in (rev.get("zones") or {}).items()}
    if fwd.get("zone") and fwd.get("messages"):
        zones.setdefault(fwd["zone"], []).extend(fwd["messages"])
    result = {
        "mode": ctx.payload.get("mode"),
        "hostname": (ctx.state.get("target") or {}).get("hostname"),
        "forward_ok": int(fwd.get("ok", 0)),
        "forward_errors": int(fwd.get("errors", 0)),
        "reverse_ok": int(rev.get("ok", 0)),
        "reverse_errors": int(rev.get("errors", 0)),
        "reverse_counts": dict(rev.get("counts") or {}),
        "zones": zones,
        "addresses": list(rev.get("entries") or []),
    }
    level = "warning" if result["forward_errors"] or result["reverse_errors"] else "info"
    await ctx.log(
        f"summary: forward {result['forward_ok']} ok / {result['forward_errors']} errors; "
        f"reverse {result['reverse_ok']} ok / {result['reverse_errors']} errors",
        level,
    )
    for zone, messages in zones.items():
        for message in messages:
            await ctx.log(f"zone {zone}: {message}", level)
    return Done(result)


WORKFLOW = register_workflow(
    Workflow(
        name=DNS_SYNC,
        steps=(
            Step("prepare", prepare),
            Step("forward", forward),
            Step("reverse", reverse),
            Step("summary", summary),
        ),
        resource_key=lambda payload: resource_key(dict(payload)),
        max_attempts=3,
    )
)


@periodic_task("dns_reconcile", default_interval=86400)
async def dns_reconcile(app: AppContext, log: TaskLog) -> TaskResult:
    """Daily: add the PTRs that are missing for live servers; never overwrite an existing one."""
    report = await reconcile_fleet(app, log=log)
    counts = report.reverse.counts()
    await log(
        f"{report.servers} servers, {len(report.reverse.entries)} addresses: "
        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    )
    return TaskResult(
        processed=len(report.reverse.entries),
        errors=report.reverse.errors,
        details={"servers": report.servers, "counts": counts, "requests": report.requests},
    )
