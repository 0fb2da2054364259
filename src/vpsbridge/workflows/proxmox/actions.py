"""Suspend, unsuspend, power, password reset and rebuild of a Proxmox VM, as short workflows.

Each checks the ownership marker first (a reused VMID is never touched), then does its one thing
and waits for it to take effect. Suspend is a hard stop plus ``onboot=0`` (a suspended VM must not
come back with its node); unsuspend undoes both. A password reset goes through cloud-init (and a
reboot of a running VM so the guest applies it). A rebuild destroys the VM and clones the new
template under the same VMID, keeping MACs, addresses, the marker and the sizes.
"""

from __future__ import annotations

import time
from typing import Any

from vpsbridge.platforms.proxmox.driver import marker_description
from vpsbridge.services.provisioning.credentials import generate_password, store_credentials
from vpsbridge.services.provisioning.proxmox import POWER, REBUILD, RESET_PASSWORD, SUSPEND, UNSUSPEND
from vpsbridge.workflows.base import (
    Done,
    Outcome,
    Retry,
    Step,
    StepContext,
    Wait,
    Workflow,
    register_workflow,
)
from vpsbridge.workflows.proxmox import common, deploy
from vpsbridge.workflows.proxmox.common import StepFailed, driver_for, finish, guarded, load, skipped


async def check_owner(ctx: StepContext) -> Outcome:
    rec = await load(ctx)
    owner = ctx.payload.get("owner") or rec.last_known.get("owner")
    async with driver_for(ctx) as driver:
        ref = await driver.locate(rec.vmid or "")
        if ref is None:
            raise StepFailed(f"VM {rec.vmid} does not exist in the cluster")
        await driver.check_owner(ref, str(owner))
        await common.update_server(ctx, node=ref.node)
    return Done()


async def _power_to(ctx: StepContext, wanted: str) -> Outcome:
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        status = (await driver.vm_status(rec.ref)).get("status")
        if status == wanted:
            ctx.state.pop("power_upid", None)
            return Done({"status": wanted})
        upid = ctx.state.get("power_upid")
        if upid:
            task = await common.poll_task(driver, upid, "power")
            if task.state == "running":
                return Wait(2, f"waiting for the VM to be {wanted}")
            ctx.state.pop("power_upid", None)
            if task.state == "failed":
                return Retry(f"power task failed: {task.error}")
            return Retry(f"the VM is {status}, not {wanted}")
        task = await driver.power(rec.ref, "start" if wanted == "running" else "stop")
        ctx.state["power_upid"] = task.id
    return Wait(1, f"waiting for the VM to be {wanted}")


async def stop_vm(ctx: StepContext) -> Outcome:
    return await _power_to(ctx, "stopped")


async def start_vm(ctx: StepContext) -> Outcome:
    return await _power_to(ctx, "running")


async def no_autostart(ctx: StepContext) -> Outcome:
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        config = await driver.vm_config(rec.ref)
        if str(config.get("onboot", "0")) == "0":
            return skipped(ctx, "onboot already off")
        await driver.update_config(rec.ref, {"onboot": 0}, sync=True)
    return Done()


async def autostart(ctx: StepContext) -> Outcome:
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        await driver.update_config(rec.ref, {"onboot": 1}, sync=True)
    return Done()


async def suspended(ctx: StepContext) -> Outcome:
    await common.update_server(ctx, state="suspended")
    return Done()


async def unsuspended(ctx: StepContext) -> Outcome:
    await common.update_server(ctx, state="active")
    await common.update_service(ctx, status="active", last_error=None, expect=("suspended",))
    return Done()


async def power_action(ctx: StepContext) -> Outcome:
    action = str(ctx.payload.get("action") or "")
    if action == "start":
        return await start_vm(ctx)
    if action == "stop":
        return await stop_vm(ctx)
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        if action not in ("shutdown", "restart", "reset"):
            raise StepFailed(f"unknown power action {action!r}")
        await finish(driver, await driver.power(rec.ref, action), ctx, seconds=300)  # type: ignore[arg-type]
    return Done({"action": action})


async def new_password(ctx: StepContext) -> Outcome:
    """Store a new password first, then hand it to cloud-init; a running VM reboots to apply it."""
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        config = await driver.vm_config(rec.ref)
        user = str(config.get("ciuser") or "root")
        if "password_set" not in ctx.state:
            password = generate_password()
            await store_credentials(ctx.app, rec.server_id, user, password)
            await finish(driver, await driver.set_cloudinit(rec.ref, password=password), ctx)
            ctx.state["password_set"] = True
        if (await driver.vm_status(rec.ref)).get("status") == "running":
            await finish(driver, await driver.power(rec.ref, "restart"), ctx, seconds=300)
    await ctx.log(f"new password for {user} set through cloud-init")
    return Done()


async def fail_quietly(ctx: StepContext, message: str) -> None:
    await common.update_service(ctx, last_error=message)


# --- rebuild ------------------------------------------------------------------------------------------


async def rebuild_keep(ctx: StepContext) -> Outcome:
    """Remember what the new VM must keep (sizes, MACs, IP config, marker, cloud-init user/keys)."""
    if "preserved" in ctx.state:
        return skipped(ctx, "already recorded")
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        config = await driver.vm_config(rec.ref, current=True)
        ctx.state["preserved"] = driver.preserved_settings(config)
    return Done()


async def rebuild_destroy(ctx: StepContext) -> Outcome:
    rec = await load(ctx)
    owner = str(ctx.payload.get("owner") or rec.last_known.get("owner"))
    async with driver_for(ctx) as driver:
        upid = ctx.state.get("destroy_upid")
        if upid:
            task = await common.poll_task(driver, upid, "destroy")
            if task.state == "running":
                return Wait(2, "destroy running")
            ctx.state.pop("destroy_upid", None)
            if task.state == "failed":
                return Retry(f"destroy failed: {task.error}")
        ref = await driver.locate(rec.vmid or "")
        if ref is None:
            return Done()
        config = await driver.vm_config(ref)
        if not deploy.owns(config, owner):
            raise StepFailed(f"VM {rec.vmid} is not this service's; nothing was destroyed")
        task = await driver.destroy(ref, owner=owner, purge=False)
        ctx.state["destroy_upid"] = task.id
    return Wait(2, "destroy started")


async def rebuild_clone(ctx: StepContext) -> Outcome:
    """Clone the new template under the same VMID (our reservation keeps it ours)."""
    plan = deploy.plan_of(ctx)
    rec = await load(ctx)
    owner = str(ctx.payload.get("owner") or rec.last_known.get("owner"))
    vmid = int(rec.vmid or 0)
    async with driver_for(ctx) as driver:
        upid = ctx.state.get("clone_upid")
        if upid:
            task = await common.poll_task(driver, upid, "clone")
            if task.state == "running":
                return Wait(2, "clone running")
            ctx.state.pop("clone_upid", None)
            if task.state == "failed":
                return Retry(f"clone failed: {task.error}")
        existing = await driver.locate(vmid)
        if existing is not None:
            config = await driver.vm_config(existing)
            if config.get("lock"):
                return Wait(2, "clone finishing")
            if not deploy.owns(config, owner):
                raise StepFailed(f"VMID {vmid} was taken by a VM that is not ours during the rebuild")
            preserved: dict[str, Any] = dict(ctx.state.get("preserved") or {})
            await finish(driver, await driver.restore_settings(existing, preserved), ctx)
            await driver.write_marker(existing, owner)
            await common.update_server(ctx, node=existing.node)
            return Done()
        source = await deploy._template(driver, str(plan.template))
        task = await driver.clone(
            source.external_id,
            vmid,
            node=source.node,
            name=deploy._vm_name(rec.hostname, vmid),
            full=True,
            description=marker_description(owner),
        )
        ctx.state["clone_upid"] = task.id
        ctx.state["rebuild_started"] = time.time()
    return Wait(2, "clone started")


async def rebuilt(ctx: StepContext) -> Outcome:
    await common.update_server(ctx, state="active")
    await common.update_service(ctx, last_error=None)
    return Done()


def _steps(*pairs: tuple[str, Any]) -> tuple[Step, ...]:
    return tuple(Step(name, guarded(fn, fail_quietly)) for name, fn in pairs)


def _key(p: Any) -> str:
    return f"server:{p['server_id']}"


for _name, _steps_of in (
    (
        SUSPEND,
        _steps(
            ("check_owner", check_owner),
            ("stop", stop_vm),
            ("no_autostart", no_autostart),
            ("done", suspended),
        ),
    ),
    (
        UNSUSPEND,
        _steps(
            ("check_owner", check_owner), ("autostart", autostart), ("start", start_vm), ("done", unsuspended)
        ),
    ),
    (POWER, _steps(("check_owner", check_owner), ("power", power_action))),
    (RESET_PASSWORD, _steps(("check_owner", check_owner), ("password", new_password))),
    (
        REBUILD,
        _steps(
            ("check_owner", check_owner),
            ("keep", rebuild_keep),
            ("stop", stop_vm),
            ("destroy", rebuild_destroy),
            ("clone", rebuild_clone),
            ("system_disk", deploy.system_disk_size),
            ("system_disk_io", deploy.system_disk_io),
            ("network", deploy.network),
            ("firewall", deploy.firewall),
            ("cloudinit", deploy.cloudinit),
            ("start", deploy.start),
            ("verify", deploy.verify),
            ("done", rebuilt),
        ),
    ),
):
    register_workflow(Workflow(name=_name, steps=_steps_of, resource_key=_key, max_attempts=6))
