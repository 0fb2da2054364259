"""``proxmox.deploy``: from reserved addresses to a running, configured VM, one step at a time.

allocate IPs -> DNS (never blocks) -> clone (VMID reserved in our database, ownership marker) ->
migrate to the chosen node -> CPU and RAM -> grow the system disk -> its I/O limits -> the
additional disk, its size and I/O limits -> network -> firewall -> cloud-init -> start -> verify
-> report. Each step first looks at what the VM already has, so running it again (after a retry, or
on another worker after this one died) changes nothing that is already right.

Payload: ``service_id``, ``server_id``, ``platform_id``, ``owner`` (the ownership marker) and
``plan`` (:class:`~vpsbridge.services.provisioning.proxmox.DeployPlan`).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from vpsbridge.core.disks import data_disks, parse_drive, system_disk, volume_format
from vpsbridge.http.errors import UpstreamError, UpstreamUnavailable
from vpsbridge.platforms.errors import InvalidRequest, ServerMissing
from vpsbridge.platforms.models import ServerRef, TaskHandle
from vpsbridge.platforms.proxmox import ProxmoxPlatform, VmidTaken
from vpsbridge.platforms.proxmox.driver import marker_description
from vpsbridge.services import ipam
from vpsbridge.services.ipam import Allocation, PoolExhausted
from vpsbridge.services.provisioning.credentials import generate_password, read_credentials, store_credentials
from vpsbridge.services.provisioning.proxmox import DEPLOY, DeployPlan
from vpsbridge.services.proxmox_vmids import release_vmid, reserve_vmid
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
from vpsbridge.workflows.proxmox import common
from vpsbridge.workflows.proxmox.common import StepFailed, driver_for, finish, guarded, load, skipped

#: How often a clone is attempted with a fresh VMID within one pass when ids keep being taken.
CLONE_ID_ATTEMPTS = 5


def plan_of(ctx: StepContext) -> DeployPlan:
    return DeployPlan.from_dict(ctx.payload["plan"])


async def addresses(ctx: StepContext) -> list[Allocation]:
    async with ctx.app.db.session() as session:
        return await ipam.addresses_of(session, int(ctx.payload["server_id"]))


def owns(config: dict[str, Any], owner: str) -> bool:
    """Whether a VM config carries our marker line (the tag is added right after the clone)."""
    return f"vpsbridge-owner: {owner}" in str(config.get("description") or "")


# --- steps ------------------------------------------------------------------------------------------


async def allocate_ips(ctx: StepContext) -> Outcome:
    """Make sure the server has its addresses (normally reserved when the service was created)."""
    plan = plan_of(ctx)
    spec = plan.spec
    rec = await load(ctx)
    try:
        async with ctx.app.db.session() as session:
            got = await ipam.allocate(
                session,
                server_id=rec.server_id,
                platform_id=rec.platform_id,
                ipv4=spec.ipv4,
                ipv6=spec.ipv6,
                scopes=plan.scopes,
                pool_refs=plan.pools,
                pools6=plan.pools6,
            )
    except PoolExhausted as exc:
        raise StepFailed(str(exc)) from None
    pinned = next((a.scope for a in got if a.scope and a.scope in plan.nodes), None)
    if pinned:
        ctx.state["pinned_node"] = pinned
    v4 = [a.address for a in got if a.family == 4]
    v6 = [a.subnet or a.address for a in got if a.family == 6]
    await common.update_server(ctx, last_known={"ipv4": v4, "ipv6": v6})
    await ctx.log(
        f"addresses: {', '.join(v4 + v6) or 'none'}" + (f" (pool bound to node {pinned})" if pinned else "")
    )
    return Done({"addresses": v4 + v6})


async def dns(ctx: StepContext) -> Outcome:
    """Queue the forward and reverse records; DNS trouble never holds up or fails a deploy."""
    try:
        from vpsbridge.services.dns.hooks import on_server_provisioned
    except ImportError:
        return skipped(ctx, "DNS automation is not installed")
    try:
        job = await on_server_provisioned(ctx.app, int(ctx.payload["server_id"]))
    except Exception as exc:
        await ctx.log(f"DNS records not queued ({type(exc).__name__}: {exc}); the deploy goes on", "warning")
        return skipped(ctx, f"DNS not queued: {exc}")
    await ctx.log(f"DNS records queued (job {job})")
    return Done()


async def _template(driver: ProxmoxPlatform, template: str) -> ServerRef:
    if template.isdigit():
        ref = await driver.locate(template)
        if ref is None:
            raise StepFailed(f"template VM {template} does not exist in the cluster")
        return ref
    for entry in await driver.vm_resources():
        if entry.get("template") and str(entry.get("name")) == template:
            return ServerRef(external_id=str(entry["vmid"]), node=str(entry["node"]))
    raise StepFailed(f"no template VM named {template!r} in the cluster")


async def clone(ctx: StepContext) -> Outcome:
    """Clone the template to a VMID reserved in our database; the VM carries our marker from birth."""
    plan = plan_of(ctx)
    owner = str(ctx.payload["owner"])
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        upid = ctx.state.get("clone_upid")
        if upid:
            task = await common.poll_task(driver, upid, "clone")
            if task.state == "running":
                return Wait(2, "clone running")
            ctx.state.pop("clone_upid", None)
            if task.state == "failed":
                vmid = int(ctx.state["vmid"])
                await _drop_failed_clone(ctx, driver, vmid, owner)
                return Retry(f"clone to VMID {vmid} failed: {task.error}")
            return await _cloned(ctx, driver, int(ctx.state["vmid"]), owner)

        for _ in range(CLONE_ID_ATTEMPTS):
            vmid = await reserve_vmid(ctx.app, rec.platform_id, rec.server_id, driver)
            ctx.state["vmid"] = vmid
            existing = await driver.locate(vmid)
            if existing is not None:
                # A clone whose answer we never got (timeout, a worker that died) - or somebody else's VM.
                config = await driver.vm_config(existing)
                if config.get("lock") == "clone" and not config.get("description"):
                    return Wait(2, f"VM {vmid} is still being cloned")
                if owns(config, owner):
                    await ctx.log(f"VM {vmid} already exists and carries our marker; continuing with it")
                    return await _cloned(ctx, driver, vmid, owner)
                await ctx.log(f"VMID {vmid} is taken by a VM that is not ours; reserving another", "warning")
                await release_vmid(ctx.app, rec.platform_id, vmid)
                continue
            source = await _template(driver, str(plan.template))
            storage = (
                plan.storage
                if plan.storage and await _has_storage(driver, source.node, plan.storage)
                else None
            )
            try:
                task = await driver.clone(
                    source.external_id,
                    vmid,
                    node=source.node,
                    name=_vm_name(rec.hostname, vmid),
                    storage=storage,
                    full=True,
                    description=marker_description(owner),
                )
            except VmidTaken:
                await ctx.log(
                    f"VMID {vmid} was taken between the check and the clone; reserving another", "warning"
                )
                await release_vmid(ctx.app, rec.platform_id, vmid)
                continue
            ctx.state["clone_upid"] = task.id
            await common.update_server(ctx, external_id=str(vmid), node=source.node)
            await ctx.log(f"cloning template {source.external_id} on {source.node} to VMID {vmid}")
            return Wait(2, "clone started")
    return Retry(f"no VMID could be used after {CLONE_ID_ATTEMPTS} tries")


def _vm_name(hostname: str | None, vmid: int) -> str:
    """A DNS-name-like VM name (Proxmox refuses anything else)."""
    name = re.sub(r"[^A-Za-z0-9.-]+", "-", hostname or "").strip("-.")
    return name[:60] or f"vm-{vmid}"


async def _has_storage(driver: ProxmoxPlatform, node: str | None, storage: str) -> bool:
    try:
        listing = await driver.client.get(f"/nodes/{node}/storage", {"content": "images"})
    except UpstreamError:
        return False
    return any(s.get("storage") == storage for s in listing or [])


async def _drop_failed_clone(ctx: StepContext, driver: ProxmoxPlatform, vmid: int, owner: str) -> None:
    """After a failed clone: Proxmox removes the half-made VM itself; anything left of ours goes too."""
    ref = await driver.locate(vmid)
    if ref is None:
        return
    config = await driver.vm_config(ref)
    if owns(config, owner) and not config.get("lock"):
        await ctx.log(f"removing what the failed clone left under VMID {vmid}", "warning")
        await finish(driver, await driver.destroy(ref, purge=True), ctx)


async def _cloned(ctx: StepContext, driver: ProxmoxPlatform, vmid: int, owner: str) -> Outcome:
    ref = await driver.locate(vmid)
    if ref is None:
        ctx.state.pop("clone_upid", None)
        return Retry(f"VM {vmid} is not in the cluster after its clone")
    config = await driver.vm_config(ref)
    if config.get("lock"):
        return Wait(2, f"VM {vmid} still locked ({config['lock']})")
    if not owns(config, owner) or "vpsbridge" not in str(config.get("tags") or ""):
        await driver.write_marker(ref, owner)
    await common.update_server(ctx, external_id=str(vmid), node=ref.node)
    ctx.state["node"] = ref.node
    await ctx.log(f"VM {vmid} cloned on {ref.node}; ownership marker written")
    return Done({"vmid": vmid})


async def _choose_node(ctx: StepContext, driver: ProxmoxPlatform, plan: DeployPlan) -> str | None:
    """The node with the plan's storage and the most free RAM (among the allowed ones)."""
    pinned = ctx.state.get("pinned_node")
    if pinned:
        return str(pinned)
    placement: dict[str, Any] = {"nodes": plan.nodes} if plan.nodes else {}
    if plan.storage:
        placement["storage"] = plan.storage
    report = await driver.capacity(placement)
    spec = plan.spec
    best: tuple[int, str] | None = None
    for node in report.nodes:
        if not node.enabled or node.memory_mb_free < spec.memory_mb:
            continue
        if plan.storage and (node.disk_gb_free or 0) < spec.disk_gb + spec.additional_disk_gb:
            continue
        if best is None or node.memory_mb_free > best[0]:
            best = (node.memory_mb_free, node.name)
    return best[1] if best else None


async def migrate(ctx: StepContext) -> Outcome:
    """Move the VM to the chosen node; if that fails or takes too long, stay where it is and go on."""
    plan = plan_of(ctx)
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        upid = ctx.state.get("migrate_upid")
        if upid:
            task: TaskHandle | None = None
            try:
                task = await common.poll_task(driver, upid, "migrate")
                reason = task.error or ""
            except UpstreamUnavailable as exc:
                reason = f"the source node does not answer ({exc})"
            if (
                task is not None
                and task.state == "running"
                and time.time() < float(ctx.state["migrate_deadline"])
            ):
                return Wait(3, "migration running")
            ctx.state.pop("migrate_upid", None)
            where = await driver.locate(rec.vmid or "")
            if task is not None and task.state == "succeeded" and where is not None:
                await common.update_server(ctx, node=where.node)
                await ctx.log(f"VM moved to {where.node}")
                return Done({"node": where.node})
            if task is not None and task.state == "running":
                reason = "the migration did not finish in time"
            node = where.node if where else rec.node
            if where is not None:
                await common.update_server(ctx, node=where.node)
            await ctx.log(
                f"migration to {ctx.state.get('target_node')} failed ({reason}); the VM stays on {node}",
                "warning",
            )
            return Done({"migrate": f"skipped: {reason}; stays on {node}"})

        target = ctx.state.get("target_node") or await _choose_node(ctx, driver, plan)
        ref = await driver.locate(rec.vmid or "")
        if ref is None:
            raise ServerMissing(f"VM {rec.vmid} is not in the cluster")
        if target is None:
            await ctx.log(f"no node has room (RAM and storage); the VM stays on {ref.node}", "warning")
            return skipped(ctx, "no node with room")
        if target == ref.node:
            return skipped(ctx, f"already on {target}")
        ctx.state["target_node"] = target
        try:
            task = await driver.migrate(ref, target, targetstorage=plan.storage)
        except (InvalidRequest, UpstreamError) as exc:
            if isinstance(exc, UpstreamUnavailable) and ctx.attempt < 3:
                raise
            await ctx.log(f"migration to {target} refused ({exc}); the VM stays on {ref.node}", "warning")
            return Done({"migrate": f"skipped: {exc}"})
        ctx.state["migrate_upid"] = task.id
        ctx.state["migrate_deadline"] = time.time() + common.scaled(ctx, plan.migrate_timeout)
        await ctx.log(f"migrating VM {rec.vmid} from {ref.node} to {target}")
        return Wait(3, "migration started")


async def resources(ctx: StepContext) -> Outcome:
    spec = plan_of(ctx).spec
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        task = await driver.set_resources(rec.ref, cores=spec.cpu_cores, memory_mb=spec.memory_mb)
        if task is None:
            return skipped(ctx, "CPU and RAM already as planned")
        await finish(driver, task, ctx)
    await ctx.log(f"{spec.cpu_cores} cores, {spec.memory_mb} MB RAM")
    return Done()


async def grow_disk(
    ctx: StepContext, driver: ProxmoxPlatform, ref: ServerRef, key: str, size_gb: int
) -> str | None:
    """Grow ``key`` to ``size_gb``; returns why nothing was done (``None`` = grown)."""
    config = await driver.vm_config(ref, current=True)
    current = parse_drive(key, config[key]).size or 0
    wanted = size_gb * 1024**3
    if wanted == current:
        return f"{key} already {size_gb} GB"
    if wanted < current:
        message = f"{key} stays at {current / 1024**3:g} GB: disks are never shrunk (asked {size_gb} GB)"
        await ctx.log(message, "warning")
        return message
    await finish(driver, await driver.resize_disk(ref, key, size_gb), ctx, seconds=300)
    await ctx.log(f"{key} grown to {size_gb} GB")
    return None


async def system_disk_size(ctx: StepContext) -> Outcome:
    spec = plan_of(ctx).spec
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        config = await driver.vm_config(rec.ref, current=True)
        key = system_disk(config)
        if key is None:
            raise StepFailed(f"VM {rec.vmid} has no system disk (check the template)")
        ctx.state["system_disk"] = key
        why = await grow_disk(ctx, driver, rec.ref, key, spec.disk_gb)
    return skipped(ctx, why) if why else Done()


async def _io(ctx: StepContext, key: str | None, limits: dict[str, float], what: str) -> Outcome:
    if not any(limits.values()):
        return skipped(ctx, f"no {what} I/O limits")
    if key is None:
        return skipped(ctx, f"no {what}")
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        task = await driver.set_disk_io(
            rec.ref,
            key,
            mbps_rd=limits["mbps_rd"],
            mbps_wr=limits["mbps_wr"],
            iops_rd=int(limits["iops_rd"]),
            iops_wr=int(limits["iops_wr"]),
        )
        if task is None:
            return skipped(ctx, f"{what} I/O limits already set")
        await finish(driver, task, ctx)
    await ctx.log(f"{what} I/O limits: {', '.join(f'{k}={v:g}' for k, v in limits.items() if v)}")
    return Done()


async def system_disk_io(ctx: StepContext) -> Outcome:
    return await _io(ctx, ctx.state.get("system_disk"), plan_of(ctx).spec.system_io(), "system disk")


def extra_disk_key(config: dict[str, Any]) -> str | None:
    """The additional disk: the first real data disk that is not the system disk."""
    boot = system_disk(config)
    return next((d.key for d in data_disks(config) if d.key != boot), None)


async def _storage_type(driver: ProxmoxPlatform, node: str | None, storage: str) -> str | None:
    listing = await driver.client.get(f"/nodes/{node}/storage")
    return next((str(s.get("type")) for s in listing or [] if s.get("storage") == storage), None)


async def additional_disk(ctx: StepContext) -> Outcome:
    plan = plan_of(ctx)
    size = plan.spec.additional_disk_gb
    if size <= 0:
        return skipped(ctx, "the package has no additional disk")
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        ref = await driver.locate(rec.ref.external_id)
        if ref is None:
            raise ServerMissing(f"VM {rec.vmid} is not in the cluster")
        config = await driver.vm_config(ref, current=True)
        key = extra_disk_key(config)
        if key is not None:
            ctx.state["additional_disk"] = key
            return skipped(ctx, f"{key} already attached")
        boot = system_disk(config)
        storage = plan.additional_storage or (
            parse_drive(boot, config[boot]).file.split(":", 1)[0] if boot else None
        )
        if not storage:
            raise StepFailed("no storage for the additional disk (set placement.additional_storage)")
        stype = await _storage_type(driver, ref.node, storage)
        if stype is None:
            raise StepFailed(f"storage {storage!r} does not exist on node {ref.node}")
        system_volid = (
            parse_drive(boot, config[boot]).file if boot else f"{storage}:vm-{ref.external_id}-disk-0"
        )
        try:
            # The system disk's format (its trailing extension), raw on block storages.
            fmt = volume_format(system_volid, stype)
        except ValueError as exc:
            raise StepFailed(str(exc)) from None
        key, task = await driver.add_disk(
            ref, storage, size, format=fmt, options={"iothread": 1} if key_bus_scsi(config) else None
        )
        ctx.state["additional_disk"] = key
        await finish(driver, task, ctx)
    await ctx.log(f"additional disk {key}: {size} GB on {storage} ({fmt})")
    return Done({"additional_disk": key})


def key_bus_scsi(config: dict[str, Any]) -> bool:
    return str(config.get("scsihw") or "").startswith("virtio-scsi-single")


async def additional_disk_size(ctx: StepContext) -> Outcome:
    key = ctx.state.get("additional_disk")
    size = plan_of(ctx).spec.additional_disk_gb
    if not key or size <= 0:
        return skipped(ctx, "no additional disk")
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        why = await grow_disk(ctx, driver, rec.ref, key, size)
    return skipped(ctx, why) if why else Done()


async def additional_disk_io(ctx: StepContext) -> Outcome:
    return await _io(
        ctx, ctx.state.get("additional_disk"), plan_of(ctx).spec.additional_io(), "additional disk"
    )


async def network(ctx: StepContext) -> Outcome:
    plan = plan_of(ctx)
    got = await addresses(ctx)
    primary = got[0] if got else None
    bridge = (primary.bridge if primary else None) or plan.bridge
    vlan = (primary.vlan if primary else None) or plan.vlan
    rate = plan.spec.bandwidth_mbps or None
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        task = await driver.set_network(
            rec.ref, bridge=bridge, vlan=vlan, rate_mbps=rate, firewall=plan.firewall
        )
        if task is None:
            return skipped(ctx, "network already as planned")
        await finish(driver, task, ctx)
    await ctx.log(
        f"net0 on {bridge}" + (f" VLAN {vlan}" if vlan else "") + (f", {rate} Mbit/s" if rate else "")
    )
    return Done()


async def firewall(ctx: StepContext) -> Outcome:
    plan = plan_of(ctx)
    if not plan.firewall:
        return skipped(ctx, "the product turns the firewall off")
    got = await addresses(ctx)
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        await driver.set_firewall_options(rec.ref, enable=True, ipfilter=True)
        await driver.sync_ipset(
            rec.ref, "ipfilter-net0", [a.host_cidr for a in got], comment="vpsbridge anti-spoofing"
        )
    await ctx.log(f"firewall on; anti-spoofing set: {', '.join(a.host_cidr for a in got) or 'empty'}")
    return Done()


def ipconfig(got: list[Allocation]) -> str:
    """``ipconfig0`` for the primary IPv4 and IPv6 address (further addresses go inside the guest)."""
    parts: list[str] = []
    v4 = next((a for a in got if a.family == 4), None)
    v6 = next((a for a in got if a.family == 6), None)
    if v4 is not None:
        parts.append(f"ip={v4.cidr}" + (f",gw={v4.gateway}" if v4.gateway else ""))
    if v6 is not None:
        parts.append(f"ip6={v6.cidr}" + (f",gw6={v6.gateway}" if v6.gateway else ""))
    return ",".join(parts) or "ip=dhcp"


async def cloudinit(ctx: StepContext) -> Outcome:
    plan = plan_of(ctx)
    rec = await load(ctx)
    stored = await read_credentials(ctx.app, rec.server_id)
    if stored is None or ctx.payload.get("new_password"):
        password = generate_password()
        # Stored before it is sent: a VM whose password we do not know is worse than a retry.
        await store_credentials(ctx.app, rec.server_id, plan.ciuser, password)
    else:
        password = str(stored["password"])
    got = await addresses(ctx)
    nameservers = list(dict.fromkeys([*plan.nameservers, *(s for a in got for s in a.dns_servers)]))
    async with driver_for(ctx) as driver:
        task = await driver.set_cloudinit(
            rec.ref,
            user=plan.ciuser,
            password=password,
            ssh_keys=plan.ssh_keys or None,
            ipconfig={0: ipconfig(got)},
            nameservers=nameservers or None,
        )
        await finish(driver, task, ctx)
    await ctx.log(
        f"cloud-init: user {plan.ciuser}, {ipconfig(got)}"
        + (f", DNS {' '.join(nameservers)}" if nameservers else "")
    )
    return Done()


async def start(ctx: StepContext) -> Outcome:
    """Start the VM and watch it for up to ``start_timeout`` seconds in this same pass."""
    plan = plan_of(ctx)
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        if str((await driver.vm_config(rec.ref)).get("onboot", "0")) != "1":
            await driver.update_config(rec.ref, {"onboot": 1}, sync=True)  # back after a node reboot
        status = await driver.vm_status(rec.ref)
        if status.get("status") == "running":
            return Done()
        upid = ctx.state.get("start_upid")
        if upid:
            task = await common.poll_task(driver, upid, "start")
            if task.state == "failed":
                ctx.state.pop("start_upid", None)
                return Retry(f"start failed: {task.error}")
        else:
            task = await driver.power(rec.ref, "start")
            ctx.state["start_upid"] = task.id
            ctx.state["start_deadline"] = time.time() + common.scaled(ctx, plan.start_timeout)
        end = time.monotonic() + max(common.scaled(ctx, plan.start_timeout), 1.0)
        while time.monotonic() < end:
            if (await driver.vm_status(rec.ref)).get("status") == "running":
                ctx.state.pop("start_upid", None)
                await ctx.log("VM started")
                return Done()
            await asyncio.sleep(max(common.scaled(ctx, 1.0), 0.05))
    if time.time() > float(ctx.state.get("start_deadline") or 0) + common.scaled(ctx, 300):
        ctx.state.pop("start_upid", None)
        return Retry("the VM did not start")
    return Wait(5, "VM still starting")


async def verify(ctx: StepContext) -> Outcome:
    rec = await load(ctx)
    async with driver_for(ctx) as driver:
        status = await driver.vm_status(rec.ref)
        config = await driver.vm_config(rec.ref)
    if status.get("status") != "running":
        ctx.state.pop("start_upid", None)
        return Retry(f"VM {rec.vmid} is {status.get('status')}, not running")
    if not owns(config, str(ctx.payload["owner"])):
        raise StepFailed(f"VM {rec.vmid} lost its ownership marker")
    return Done({"running": True})


async def report(ctx: StepContext) -> Outcome:
    """Record the result and hand IPs and credentials to billing (the welcome e-mail listener)."""
    rec = await load(ctx)
    got = await addresses(ctx)
    v4 = [a.address for a in got if a.family == 4]
    v6 = [a.subnet or a.address for a in got if a.family == 6]
    await common.update_server(ctx, state="running", last_known={"ipv4": v4, "ipv6": v6})
    await common.update_service(ctx, status="active", last_error=None, expect=("provisioning",))
    creds = await read_credentials(ctx.app, rec.server_id)
    notice = None
    if len(v4) > 1 or len(v6) > 1:
        notice = "additional IP addresses must be configured inside the operating system"
    await common.event(
        ctx,
        "provisioned",
        rec,
        {
            "ipv4": v4,
            "ipv6": v6,
            "hostname": rec.hostname,
            "username": (creds or {}).get("username", "root"),
            "vmid": rec.vmid,
            "node": rec.node,
            "notice": notice,
        },
    )
    await ctx.log(f"service {rec.service_id} active: VM {rec.vmid} on {rec.node}, {', '.join(v4 + v6)}")
    return Done({"vmid": rec.vmid, "node": rec.node, "ipv4": v4, "ipv6": v6})


async def deploy_failed(ctx: StepContext, message: str) -> None:
    """The deploy gave up: the service is ``failed`` and billing hears why (addresses stay reserved
    until the service is terminated, which also removes whatever the deploy left)."""
    rec = await load(ctx)
    await common.update_server(ctx, state="error")
    await common.update_service(ctx, status="failed", last_error=message)
    try:
        await common.event(ctx, "build_failed", rec, {"error": message})
    except Exception as exc:
        await ctx.log(f"build_failed not delivered: {exc}", "warning")


STEPS = (
    ("allocate_ips", allocate_ips),
    ("dns", dns),
    ("clone", clone),
    ("migrate", migrate),
    ("resources", resources),
    ("system_disk", system_disk_size),
    ("system_disk_io", system_disk_io),
    ("additional_disk", additional_disk),
    ("additional_disk_size", additional_disk_size),
    ("additional_disk_io", additional_disk_io),
    ("network", network),
    ("firewall", firewall),
    ("cloudinit", cloudinit),
    ("start", start),
    ("verify", verify),
    ("report", report),
)

WORKFLOW = register_workflow(
    Workflow(
        name=DEPLOY,
        steps=tuple(Step(name, guarded(fn, deploy_failed)) for name, fn in STEPS),
        resource_key=lambda p: f"server:{p['server_id']}",
        max_attempts=12,
    )
)
