"""``proxmox.change_package``: bring a VM to a new package, step by step, changing only what differs.

Every step compares the VM with the new plan first and records ``skipped: <why>`` when nothing needs
to change. Disks are never shrunk (skipped with a message). An Additional Disk of 0 detaches and
destroys the existing one only when the request carried an explicit confirmation. CPU and RAM on a
running VM become pending changes in Proxmox; the last step reboots the VM to apply them.

Payload: ``service_id``, ``server_id``, ``platform_id``, ``owner``, ``plan``, ``confirm_detach``.
"""

from __future__ import annotations

from typing import cast

from vpsbridge.services import ipam
from vpsbridge.services.provisioning.proxmox import CHANGE_PACKAGE
from vpsbridge.workflows.base import Done, Outcome, Step, StepContext, Workflow, register_workflow
from vpsbridge.workflows.proxmox import common, deploy
from vpsbridge.workflows.proxmox.common import StepFailed, driver_for, finish, guarded, load, skipped
from vpsbridge.workflows.proxmox.deploy import extra_disk_key, plan_of


async def check(ctx: StepContext) -> Outcome:
    """The VM must still be ours before anything is changed."""
    rec = await load(ctx)
    owner = ctx.payload.get("owner") or rec.last_known.get("owner")
    async with driver_for(ctx) as driver:
        ref = await driver.locate(rec.vmid or "")
        if ref is None:
            raise StepFailed(f"VM {rec.vmid} does not exist in the cluster")
        await driver.check_owner(ref, str(owner))
        await common.update_server(ctx, node=ref.node)
    return Done()


async def addresses(ctx: StepContext) -> Outcome:
    """More addresses are allocated; fewer are left alone (removing a used address breaks the guest)."""
    plan = plan_of(ctx)
    spec = plan.spec
    rec = await load(ctx)
    async with ctx.app.db.session() as session:
        before = await ipam.addresses_of(session, rec.server_id)
        have4 = sum(1 for a in before if a.family == 4)
        have6 = sum(1 for a in before if a.family == 6)
        if spec.ipv4 <= have4 and spec.ipv6 <= have6:
            return skipped(ctx, f"has {have4} IPv4 / {have6} IPv6, needs {spec.ipv4} / {spec.ipv6}")
        try:
            got = await ipam.allocate(
                session,
                server_id=rec.server_id,
                platform_id=rec.platform_id,
                ipv4=max(spec.ipv4, have4),
                ipv6=max(spec.ipv6, have6),
                scopes=[*plan.scopes, *([rec.node] if rec.node else [])],
                pool_refs=plan.pools,
                pools6=plan.pools6,
            )
        except ipam.PoolExhausted as exc:
            raise StepFailed(str(exc)) from None
    new = [a.address for a in got if a.address not in {b.address for b in before}]
    await common.update_server(
        ctx,
        last_known={
            "ipv4": [a.address for a in got if a.family == 4],
            "ipv6": [a.subnet or a.address for a in got if a.family == 6],
        },
    )
    ctx.state["new_addresses"] = new
    await ctx.log(f"new addresses: {', '.join(new)} (to be configured inside the guest)")
    return Done({"new_addresses": new})


async def detach_additional_disk(ctx: StepContext) -> Outcome:
    spec = plan_of(ctx).spec
    if spec.additional_disk_gb > 0:
        return skipped(ctx, "the package keeps an additional disk")
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        config = await driver.vm_config(rec.ref, current=True)
        key = extra_disk_key(config)
        if key is None:
            return skipped(ctx, "no additional disk attached")
        if not ctx.payload.get("confirm_detach"):
            message = f"{key} kept: removing the additional disk destroys its data and was not confirmed"
            await ctx.log(message, "warning")
            ctx.state.setdefault("warnings", []).append(message)
            return skipped(ctx, message)
        await finish(driver, await driver.remove_disk(rec.ref, key), ctx)
    await ctx.log(f"additional disk {key} detached and destroyed (confirmed)")
    return Done({"detached": key})


async def additional_disk(ctx: StepContext) -> Outcome:
    """Attach a new additional disk, or find the existing one for the size and I/O steps."""
    if plan_of(ctx).spec.additional_disk_gb <= 0:
        return skipped(ctx, "no additional disk in the package")
    return await deploy.additional_disk(ctx)


async def reboot(ctx: StepContext) -> Outcome:
    """Apply pending CPU/RAM changes of a running VM with a reboot (Proxmox applies them on reboot)."""
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        status = await driver.vm_status(rec.ref)
        if status.get("status") != "running":
            return skipped(ctx, "the VM is stopped; changes apply at the next start")
        ref = await driver.locate(rec.vmid or "")
        if ref is None:
            raise StepFailed(f"VM {rec.vmid} does not exist in the cluster")
        pending = await driver.client.get(f"/nodes/{ref.node}/qemu/{ref.external_id}/pending")
        waiting = [p["key"] for p in pending or [] if "pending" in p or p.get("delete")]
        if not waiting:
            return skipped(ctx, "no pending changes")
        await finish(driver, await driver.power(rec.ref, "restart"), ctx, seconds=300)
    await ctx.log(f"rebooted to apply {', '.join(waiting)}")
    return Done({"rebooted_for": waiting})


async def report(ctx: StepContext) -> Outcome:
    rec = await load(ctx)
    warnings = cast(list[str], ctx.state.get("warnings") or [])
    await common.update_service(ctx, last_error=None, lifecycle={"warnings": warnings})
    await common.event(
        ctx,
        "package_changed",
        rec,
        {"warnings": warnings, "new_addresses": ctx.state.get("new_addresses") or []},
    )
    return Done({"warnings": warnings})


async def change_failed(ctx: StepContext, message: str) -> None:
    await common.update_service(ctx, last_error=message)


async def _disk_step(ctx: StepContext) -> Outcome:
    outcome = await deploy.system_disk_size(ctx)
    _warn_skip(ctx, outcome)
    return outcome


async def _extra_size(ctx: StepContext) -> Outcome:
    outcome = await deploy.additional_disk_size(ctx)
    _warn_skip(ctx, outcome)
    return outcome


def _warn_skip(ctx: StepContext, outcome: Outcome) -> None:
    if isinstance(outcome, Done) and outcome.result:
        for text in outcome.result.values():
            if isinstance(text, str) and "never shrunk" in text:
                ctx.state.setdefault("warnings", []).append(text.removeprefix("skipped: "))


STEPS = (
    ("check", check),
    ("resources", deploy.resources),
    ("system_disk", _disk_step),
    ("system_disk_io", deploy.system_disk_io),
    ("detach_additional_disk", detach_additional_disk),
    ("additional_disk", additional_disk),
    ("additional_disk_size", _extra_size),
    ("additional_disk_io", deploy.additional_disk_io),
    ("addresses", addresses),
    ("network", deploy.network),
    ("firewall", deploy.firewall),
    ("reboot", reboot),
    ("report", report),
)

WORKFLOW = register_workflow(
    Workflow(
        name=CHANGE_PACKAGE,
        steps=tuple(Step(name, guarded(fn, change_failed)) for name, fn in STEPS),
        resource_key=lambda p: f"server:{p['server_id']}",
        max_attempts=8,
    )
)
