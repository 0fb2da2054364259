"""Suspend, unsuspend, power, password reset and rebuild of a Proxmox VM, as short workflows.

Each checks the ownership marker first (a reused VMID is never touched), then does its one thing
and waits for it to take effect. Suspend is a hard stop plus ``onboot=0`` (a suspended VM must not
come back with its node); unsuspend undoes both. A password reset goes through cloud-init (and a
reboot of a running VM so the guest applies it). A rebuild replaces only the system disk with one
cloned from the new template, so MACs, addresses, the marker, the sizes and the additional disk stay.
"""

from __future__ import annotations

import re
from typing import Any

from vpsbridge.core.disks import format_property_string, parse_drive, system_disk
from vpsbridge.platforms.models import ServerRef
from vpsbridge.platforms.proxmox import VmidTaken
from vpsbridge.platforms.proxmox.driver import marker_description
from vpsbridge.services.provisioning.credentials import generate_password, store_credentials
from vpsbridge.services.provisioning.proxmox import POWER, REBUILD, RESET_PASSWORD, SUSPEND, UNSUSPEND
from vpsbridge.services.proxmox_vmids import release_vmid, reserve_extra_vmid
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
    await common.update_server(ctx, state="running")
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


# --- rebuild ---
#
# A rebuild replaces only the system disk, so the VM keeps its VMID, MACs, IP configuration,
# ownership marker, firewall, additional disk (and its data), sizes and limits. The new system
# disk comes from a full clone of the template into a staging VM (its own reserved VMID), which is
# migrated to the VM's node if needed; ``move_disk`` with ``target-vmid`` (PVE 7.3+) then hands
# that disk to the VM in place of the old one, which is purged only once the new one is attached.


_STAGING_NOTE = "rebuild staging VM: safe to delete once the rebuild ended"


def _staging_marker(owner: str) -> str:
    return marker_description(owner, _STAGING_NOTE)


def _our_staging(config: dict[str, Any], owner: str) -> bool:
    """A staging clone of ours, marked from its creation (the tag is only added once it is done)."""
    return str(config.get("description") or "").strip() == _staging_marker(owner) and not config.get("lock")


async def rebuild_stage(ctx: StepContext) -> Outcome:
    """Clone the new template into a staging VM that only lends its system disk."""
    plan = deploy.plan_of(ctx)
    rec = await load(ctx)
    owner = str(ctx.payload.get("owner") or rec.last_known.get("owner"))
    async with driver_for(ctx) as driver:
        upid = ctx.state.get("stage_upid")
        if upid:
            task = await common.poll_task(driver, upid, "clone")
            if task.state == "running":
                return Wait(2, "clone of the new template running")
            ctx.state.pop("stage_upid", None)
            if task.state == "failed":
                await release_vmid(ctx.app, rec.platform_id, int(ctx.state.pop("stage_vmid")))
                return Retry(f"clone of the new template failed: {task.error}")
        if "stage_vmid" in ctx.state:
            staged = await driver.locate(int(ctx.state["stage_vmid"]))
            if staged is not None and _our_staging(await driver.vm_config(staged), owner):
                await finish(driver, await driver.write_marker(staged, owner), ctx)
                await ctx.log(f"template cloned to staging VM {ctx.state['stage_vmid']}")
                return Done({"staging_vmid": ctx.state["stage_vmid"]})
            await release_vmid(ctx.app, rec.platform_id, int(ctx.state.pop("stage_vmid")))
        vmid = await reserve_extra_vmid(ctx.app, rec.platform_id, rec.server_id, driver)
        ctx.state["stage_vmid"] = vmid
        source = await deploy._template(driver, str(plan.template))
        try:
            task = await driver.clone(
                source.external_id,
                vmid,
                node=source.node,
                name=f"rebuild-{rec.vmid}",
                full=True,
                description=_staging_marker(owner),
            )
        except VmidTaken:
            await release_vmid(ctx.app, rec.platform_id, int(ctx.state.pop("stage_vmid")))
            return Retry(f"VMID {vmid} was taken before the clone; reserving another")
        ctx.state["stage_upid"] = task.id
    return Wait(2, "clone of the new template started")


async def rebuild_stage_node(ctx: StepContext) -> Outcome:
    """Bring the staging VM to the VM's node (a disk can only be handed over on one node)."""
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        upid = ctx.state.get("stage_migrate_upid")
        if upid:
            task = await common.poll_task(driver, upid, "migrate")
            if task.state == "running":
                return Wait(2, "staging VM migrating")
            ctx.state.pop("stage_migrate_upid", None)
            if task.state == "failed":
                return Retry(f"moving the staging VM failed: {task.error}")
        here = await driver.locate(rec.vmid or "")
        staged = await driver.locate(int(ctx.state["stage_vmid"]))
        if here is None or staged is None:
            raise StepFailed("the VM or its staging clone disappeared during the rebuild")
        if staged.node == here.node:
            return skipped(ctx, f"staging VM already on {here.node}")
        config = await driver.vm_config(here, current=True)
        key = system_disk(config)
        storage = parse_drive(key, config[key]).file.split(":", 1)[0] if key else None
        task = await driver.migrate(staged, str(here.node), targetstorage=storage)
        ctx.state["stage_migrate_upid"] = task.id
    return Wait(2, f"moving the staging VM to {here.node}")


async def rebuild_swap(ctx: StepContext) -> Outcome:
    """Detach the old system disk, hand the staging VM's disk over under the same key, purge the old."""
    rec = await load(ctx)
    stage_ref = ServerRef(external_id=str(ctx.state["stage_vmid"]), node=None)
    async with driver_for(ctx) as driver:
        upid = ctx.state.get("swap_upid")
        if upid:
            task = await common.poll_task(driver, upid, "move_disk")
            if task.state == "running":
                return Wait(1, "system disk being handed over")
            ctx.state.pop("swap_upid", None)
            if task.state == "failed":
                return Retry(f"handing over the new system disk failed: {task.error}")
        config = await driver.vm_config(rec.ref, current=True)
        if "swap_key" not in ctx.state:
            key = system_disk(config)
            if key is None:
                raise StepFailed(f"VM {rec.vmid} has no system disk to replace")
            old = parse_drive(key, config[key])
            ctx.state["swap_key"] = key
            ctx.state["old_volume"] = old.file
            ctx.state["old_options"] = {k: v for k, v in old.options.items() if k != "size"}
        key = str(ctx.state["swap_key"])
        old_volume = str(ctx.state["old_volume"])
        current = parse_drive(key, config[key]).file if key in config else None
        if current == old_volume:
            await finish(driver, await driver.update_config(rec.ref, {}, delete=[key]), ctx)
            current = None
        if current is None:
            staged_config = await driver.vm_config(stage_ref, current=True)
            source_key = system_disk(staged_config)
            if source_key is None:
                raise StepFailed("the template has no system disk")
            task = await driver.reassign_disk(stage_ref, source_key, int(rec.vmid or 0), key)
            ctx.state["swap_upid"] = task.id
            return Wait(1, f"handing the new system disk over as {key}")
        # The new disk is attached: give it the old drive options, then purge the old volume.
        options: dict[str, Any] = dict(ctx.state.get("old_options") or {})
        if options:
            value = format_property_string({"file": current, **options}, default_key="file")
            await finish(driver, await driver.update_config(rec.ref, {key: value}), ctx)
        leftovers = [k for k, v in config.items() if re.fullmatch(r"unused\d+", k) and v == old_volume]
        if leftovers:
            await finish(driver, await driver.update_config(rec.ref, {}, delete=leftovers), ctx)
    await ctx.log(f"system disk {key} replaced ({old_volume} -> {current}); other disks untouched")
    return Done({"system_disk": key, "volume": current})


async def rebuild_unstage(ctx: StepContext) -> Outcome:
    """Destroy the (now diskless) staging VM and give its VMID back."""
    rec = await load(ctx)
    owner = str(ctx.payload.get("owner") or rec.last_known.get("owner"))
    vmid = int(ctx.state["stage_vmid"])
    async with driver_for(ctx) as driver:
        upid = ctx.state.get("unstage_upid")
        if upid:
            task = await common.poll_task(driver, upid, "destroy")
            if task.state == "running":
                return Wait(1, "staging VM being removed")
            ctx.state.pop("unstage_upid", None)
            if task.state == "failed":
                return Retry(f"removing the staging VM failed: {task.error}")
        staged = await driver.locate(vmid)
        if staged is not None:
            task = await driver.destroy(staged, owner=owner, purge=True)
            ctx.state["unstage_upid"] = task.id
            return Wait(1, "staging VM being removed")
    await release_vmid(ctx.app, rec.platform_id, vmid)
    return Done()


async def rebuilt(ctx: StepContext) -> Outcome:
    await common.update_server(ctx, state="running")
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
            ("stage", rebuild_stage),
            ("stage_node", rebuild_stage_node),
            ("stop", stop_vm),
            ("swap_system_disk", rebuild_swap),
            ("unstage", rebuild_unstage),
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
