"""``proxmox.terminate``: stop, remove, destroy (only our own VM), release - or ``error_terminate``.

Billing already got its answer and the customer lost access when the job was queued. The worker:
waits for the delay, checks the ownership marker (a VMID reused by somebody else is never touched),
asks the guest to shut down and polls every 5 s for up to 120 s, then force-stops for up to 60 s,
removes the VM's backups (none are kept yet), deletes the DNS records, destroys the VM with purge,
releases the addresses and the VMID. Any failure puts the service in ``error_terminate`` at once:
no automatic retry, the addresses stay allocated, and an operator retries, marks it removed or
deletes the record.

Payload: ``service_id``, ``server_id``, ``platform_id``, ``owner``, ``not_before`` (epoch seconds).
"""

from __future__ import annotations

import time

from vpsbridge.platforms.errors import ServerMissing
from vpsbridge.platforms.proxmox import NotOwned
from vpsbridge.services import ipam
from vpsbridge.services.provisioning.proxmox import TERMINATE
from vpsbridge.services.proxmox_vmids import release_vmid
from vpsbridge.workflows.base import Done, Outcome, Step, StepContext, Wait, Workflow, register_workflow
from vpsbridge.workflows.proxmox import common
from vpsbridge.workflows.proxmox.common import StepFailed, driver_for, guarded, load, skipped

SHUTDOWN_SECONDS = 120.0
FORCE_STOP_SECONDS = 60.0
POLL_SECONDS = 5.0


def gone(ctx: StepContext) -> bool:
    return bool(ctx.state.get("gone"))


async def delay(ctx: StepContext) -> Outcome:
    remaining = float(ctx.payload.get("not_before") or 0) - time.time()
    if remaining > 0:
        return Wait(remaining / max(ctx.app.settings.time_scale, 1e-9), "terminate delay")
    return Done()


async def check_owner(ctx: StepContext) -> Outcome:
    """The VM under this VMID must carry our marker; a VM that is gone is fine (nothing to destroy)."""
    rec = await load(ctx)
    if not rec.vmid:
        ctx.state["gone"] = True
        return skipped(ctx, "no VM was ever created")
    owner = ctx.payload.get("owner") or rec.last_known.get("owner")
    async with driver_for(ctx) as driver:
        ref = await driver.locate(rec.vmid)
        if ref is None:
            ctx.state["gone"] = True
            await ctx.log(f"VM {rec.vmid} no longer exists; nothing to stop or destroy")
            return Done()
        if not owner:
            raise StepFailed(
                f"server {rec.server_id} has no ownership marker on record; refusing to destroy VM {rec.vmid}"
            )
        try:
            await driver.check_owner(ref, str(owner))
        except NotOwned:
            raise StepFailed(
                f"VMID {rec.vmid} now holds a VM that is not this service's (ownership marker differs); "
                "nothing was destroyed. Check the cluster, then mark the service removed."
            ) from None
        await common.update_server(ctx, node=ref.node)
    return Done()


async def stop(ctx: StepContext) -> Outcome:
    """ACPI shutdown, polled every 5 s for up to 120 s; then a forced stop for up to 60 s."""
    if gone(ctx):
        return skipped(ctx, "no VM")
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        try:
            status = await driver.vm_status(rec.ref)
        except ServerMissing:
            ctx.state["gone"] = True
            return skipped(ctx, "the VM disappeared")
        if status.get("status") == "stopped":
            await ctx.log("VM is stopped")
            return Done()
        now = time.time()
        if "shutdown_until" not in ctx.state:
            await driver.shutdown(rec.ref, timeout=int(SHUTDOWN_SECONDS))
            ctx.state["shutdown_until"] = now + common.scaled(ctx, SHUTDOWN_SECONDS)
            await ctx.log("shutdown requested (ACPI)")
            return Wait(POLL_SECONDS, "waiting for the guest to shut down")
        if now < float(ctx.state["shutdown_until"]):
            return Wait(POLL_SECONDS, "waiting for the guest to shut down")
        if "stop_until" not in ctx.state:
            await ctx.log("the guest did not shut down in time; forcing a stop", "warning")
            await driver.stop(rec.ref, overrule_shutdown=True)
            ctx.state["stop_until"] = now + common.scaled(ctx, FORCE_STOP_SECONDS)
            return Wait(POLL_SECONDS, "waiting for the forced stop")
        if now < float(ctx.state["stop_until"]):
            return Wait(POLL_SECONDS, "waiting for the forced stop")
    raise StepFailed(f"VM {rec.vmid} is still {status.get('status')} after the forced stop")


async def backups(ctx: StepContext) -> Outcome:
    return skipped(ctx, "vpsbridge keeps no backups of this VM")


async def dns(ctx: StepContext) -> Outcome:
    try:
        from vpsbridge.services.dns.hooks import on_server_terminated
    except ImportError:
        return skipped(ctx, "DNS automation is not installed")
    try:
        job = await on_server_terminated(ctx.app, int(ctx.payload["server_id"]))
    except Exception as exc:
        await ctx.log(f"DNS records not queued for deletion ({type(exc).__name__}: {exc})", "warning")
        return skipped(ctx, f"DNS not queued: {exc}")
    await ctx.log(f"DNS record deletion queued (job {job})")
    return Done()


async def destroy(ctx: StepContext) -> Outcome:
    if gone(ctx):
        return skipped(ctx, "no VM")
    rec = await load(ctx)
    owner = str(ctx.payload.get("owner") or rec.last_known.get("owner"))
    async with driver_for(ctx) as driver:
        upid = ctx.state.get("destroy_upid")
        if upid:
            task = await common.poll_task(driver, upid, "destroy")
            if task.state == "running":
                return Wait(2, "destroy running")
            if task.state == "failed":
                raise StepFailed(f"destroying VM {rec.vmid} failed: {task.error}")
            if await driver.locate(rec.vmid or "") is not None:
                raise StepFailed(f"VM {rec.vmid} still exists after its destroy task")
            await ctx.log(f"VM {rec.vmid} destroyed")
            return Done()
        try:
            task = await driver.destroy(rec.ref, owner=owner, purge=True)
        except ServerMissing:
            ctx.state["gone"] = True
            return skipped(ctx, "the VM disappeared")
        except NotOwned as exc:
            raise StepFailed(str(exc)) from None
        ctx.state["destroy_upid"] = task.id
    return Wait(2, "destroy started")


async def release(ctx: StepContext) -> Outcome:
    rec = await load(ctx)
    released = await ipam.release(ctx.app, rec.server_id)
    if rec.vmid and rec.vmid.isdigit():
        await release_vmid(ctx.app, rec.platform_id, int(rec.vmid))
    # The VMID may be reused by Proxmox; keep it for the record but free the unique slot.
    await common.update_server(
        ctx, state="terminated", external_id=None, last_known={"vmid": rec.vmid, "ipv4": [], "ipv6": []}
    )
    await common.update_service(ctx, status="terminated", last_error=None)
    await common.event(ctx, "terminated", rec, {"vmid": rec.vmid, "released": released})
    await ctx.log(f"{released} address(es) released; service {rec.service_id} terminated")
    return Done({"released": released})


async def terminate_failed(ctx: StepContext, message: str) -> None:
    rec = await load(ctx)
    await common.update_service(ctx, status="error_terminate", last_error=message)
    try:
        await common.event(ctx, "terminate_failed", rec, {"error": message})
    except Exception as exc:
        await ctx.log(f"terminate_failed not delivered: {exc}", "warning")


STEPS = (
    ("delay", delay),
    ("check_owner", check_owner),
    ("stop", stop),
    ("backups", backups),
    ("dns", dns),
    ("destroy", destroy),
    ("release", release),
)

WORKFLOW = register_workflow(
    Workflow(
        name=TERMINATE,
        steps=tuple(Step(name, guarded(fn, terminate_failed, retry=False)) for name, fn in STEPS),
        resource_key=lambda p: f"server:{p['server_id']}",
        max_attempts=2,
    )
)
