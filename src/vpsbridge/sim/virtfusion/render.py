"""JSON shapes of the simulated VirtFusion API, key for key as the spec's examples show them.

The contract tests derive a schema (required keys and types) from every example in
``virtfusion-openapi.yaml`` and validate these renderings against it, so a key dropped here fails a
test rather than a client's parser in production.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from urllib.parse import urlencode

from vpsbridge.sim.virtfusion.state import (
    Group,
    Package,
    QueueTask,
    Server,
    Template,
    User,
    VirtFusionState,
    iso,
    utcnow,
)


def paginate(items: list[dict[str, Any]], *, page: int, per_page: int, url: str) -> dict[str, Any]:
    """Laravel's paginator envelope (``current_page``, ``data``, ``links`` ...)."""
    total = len(items)
    last = max(1, math.ceil(total / per_page))
    chunk = items[(page - 1) * per_page : page * per_page]

    def page_url(n: int | None) -> str | None:
        return None if n is None else f"{url}?{urlencode({'page': n})}"

    links = [{"url": page_url(page - 1 if page > 1 else None), "label": "&laquo; Previous", "active": False}]
    links += [{"url": page_url(n), "label": str(n), "active": n == page} for n in range(1, last + 1)]
    links.append(
        {"url": page_url(page + 1 if page < last else None), "label": "Next &raquo;", "active": False}
    )
    first_index = (page - 1) * per_page + 1 if chunk else None
    return {
        "current_page": page,
        "data": chunk,
        "first_page_url": page_url(1),
        "from": first_index,
        "last_page": last,
        "last_page_url": page_url(last),
        "links": links,
        "next_page_url": page_url(page + 1 if page < last else None),
        "path": url,
        "per_page": per_page,
        "prev_page_url": page_url(page - 1 if page > 1 else None),
        "to": (first_index + len(chunk) - 1) if first_index else None,
        "total": total,
    }


def group(g: Group) -> dict[str, Any]:
    stamp = iso(utcnow())
    return {
        "id": g.id,
        "name": g.name,
        "label": None,
        "description": g.description,
        "distributionType": 5,
        "enabled": g.enabled,
        "default": g.default,
        "created": stamp,
        "updated": stamp,
    }


def package(p: Package) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "description": None,
        "enabled": p.enabled,
        "memory": p.memory,
        "primaryStorage": p.storage,
        "traffic": p.traffic,
        "cpuCores": p.cpu_cores,
        "primaryNetworkSpeedIn": p.speed_in,
        "primaryNetworkSpeedOut": p.speed_out,
        "primaryDiskType": "inherit",
        "backupPlanId": p.backup_plan_id,
        "primaryStorageReadBytesSec": None,
        "primaryStorageWriteBytesSec": None,
        "primaryStorageReadIopsSec": None,
        "primaryStorageWriteIopsSec": None,
        "primaryStorageProfile": p.storage_profile,
        "primaryNetworkProfile": p.network_profile,
        "created": p.created.isoformat().replace("+00:00", ".000000Z"),
    }


def template(t: Template) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "version": t.version,
        "variant": t.variant,
        "arch": 1,
        "description": f"{t.name} {t.version} {t.variant}",
        "icon": t.icon,
        "eol": t.eol,
        "eol_date": "2030-01-01 00:00:00",
        "eol_warning": t.eol,
        "deploy_type": 1,
        "vnc": False,
        "type": t.type,
    }


def template_categories(templates: list[Template]) -> list[dict[str, Any]]:
    categories: dict[str, dict[str, Any]] = {}
    for t in templates:
        cat = categories.setdefault(
            t.category,
            {"name": t.category, "description": f"{t.category} templates", "icon": t.icon, "templates": []},
        )
        cat["templates"].append(template(t))
    return [cat | {"id": n} for n, cat in enumerate(categories.values(), start=1)]


def user(u: User, *, password: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": u.id,
        "admin": False,
        "extRelationId": u.ext_relation_id,
        "selfService": u.self_service,
        "selfServiceHourlyGroupProfiles": [],
        "selfServiceResourceGroupProfiles": [],
        "selfServiceHourlyResourcePack": None,
        "name": u.name,
        "email": u.email,
        "timezone": "Europe/London",
        "suspended": u.suspended,
        "twoFactorAuth": False,
        "created": u.created.isoformat().replace("+00:00", ".000000Z"),
        "updated": u.updated.isoformat().replace("+00:00", ".000000Z"),
    }
    if password is not None:
        body["password"] = password
    return body


def queue_task(t: QueueTask, now: float) -> dict[str, Any]:
    message = t.fail_with if t.failed else None
    return {
        "id": t.id,
        "jobId": str(t.id + 700),
        "job": "App\\Jobs\\Server\\KVM\\" + t.action.title().replace("_", ""),
        "hypervisorId": t.hypervisor_id,
        "serverId": t.server_id,
        "action": t.action,
        "queue": "default",
        "started": iso(t.started),
        "updated": iso(t.finished or utcnow()),
        "finished": iso(t.finished),
        "failed": t.failed,
        "progress": t.progress(now),
        "errors": {
            "exception": {
                "stringable": message is not None,
                "errors": [message] if message else [],
                "type": "TaskFailed" if message else None,
                "trace": None,
                "message": message,
            }
        },
        "primaryActions": [],
        "subActions": [],
    }


def _interface(server: Server, state: VirtFusionState, hv_gateway: str) -> dict[str, Any]:
    ipv4 = [
        {
            "id": n + server.id * 100,
            "order": n,
            "enabled": True,
            "blockId": server.hypervisor_id,
            "address": address,
            "gateway": hv_gateway,
            "netmask": "255.255.255.0",
            "resolver1": "192.0.2.53",
            "resolver2": "192.0.2.54",
            "rdns": None,
            "mac": None,
        }
        for n, address in enumerate(server.ipv4, start=1)
    ]
    ipv6 = []
    if server.ipv6_subnet and server.ipv6_visible_at is not None and state.now() >= server.ipv6_visible_at:
        ipv6.append(
            {
                "id": server.id + 500,
                "block": {"id": server.hypervisor_id, "name": f"IPv6 for hypervisor {server.hypervisor_id}"},
                "order": 1,
                "enabled": True,
                "addresses": [],
                "addressesDetailed": [],
                "subnet": server.ipv6_subnet,
                "cidr": 80,
                "exhausted": False,
                "gateway": server.ipv6_subnet.rsplit(":", 3)[0] + "::1",
                "resolver1": "2001:db8::53",
                "resolver2": "2001:db8::54",
                "routeNet": False,
            }
        )
    return {
        "id": server.id,
        "order": 1,
        "enabled": True,
        "tag": 4000000000 + server.id,
        "name": "eth0",
        "type": "public",
        "driver": 1,
        "processQueues": None,
        "mac": f"00:16:3E:{server.id >> 16 & 255:02X}:{server.id >> 8 & 255:02X}:{server.id & 255:02X}",
        "ipv4ToMac": None,
        "ipv6ToMac": None,
        "inTrafficCount": True,
        "outTrafficCount": False,
        "inAverage": server.speed_in,
        "inPeak": 0,
        "inBurst": 0,
        "outAverage": server.speed_out,
        "outPeak": 0,
        "outBurst": 0,
        "ipFilter": True,
        "vlans": [],
        "ipFilterType": "4-6",
        "portIsolated": False,
        "ipv4_resolver_1": 1,
        "ipv4_resolver_2": 2,
        "ipv6_resolver_1": 1,
        "ipv6_resolver_2": 2,
        "networkProfile": server.network_profile,
        "dhcpV4": 0,
        "dhcpV6": 0,
        "firewallEnabled": False,
        "hypervisorNetwork": server.hypervisor_id,
        "isNat": False,
        "nat": False,
        "firewall": [],
        "hypervisorConnectivity": {
            "id": server.hypervisor_id,
            "type": "simpleBridge",
            "bridge": "br0",
            "mtu": None,
            "primary": True,
            "default": True,
        },
        "ipWhitelist": [],
        "actions": [],
        "ipv4": ipv4,
        "ipv6": ipv6,
    }


def period(created: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The current monthly traffic period, anchored on the day the server was created."""
    now = utcnow()
    start = now.replace(day=min(created.day, 28), hour=0, minute=0, second=0)
    if start > now:
        start = (start - dt.timedelta(days=28)).replace(day=min(created.day, 28))
    end = (start + dt.timedelta(days=32)).replace(day=start.day) - dt.timedelta(seconds=1)
    return start, end


def server(
    s: Server, state: VirtFusionState, *, remote_state: bool = False, password: bool = False
) -> dict[str, Any]:
    hv = state.hypervisors[s.hypervisor_id]
    owner = state.users[s.owner_id]
    group_ = state.groups[hv.group_id]
    start, end = period(s.created)
    task = state.active_task(s)
    keys = [state.ssh_keys[k] for k in s.ssh_key_ids if k in state.ssh_keys]
    settings: dict[str, Any] = {
        "osTemplateInstall": True,
        "osTemplateInstallId": s.os_template_id,
        "encryptedPassword": "sim-encrypted-" + s.uuid[:8],
        "backupPlan": None,
        "uefi": False,
        "uefiType": 0,
        "cloudInit": True,
        "cloudInitType": 1,
        "config": {"cloud.init": {"on.all": {"user.data": []}}},
        "userConfig": [],
        "bootOrder": ["hd", "cdrom"],
        "tpmType": 0,
        "networkBoot": False,
        "bootMenu": 1,
        "customISO": 1,
        "securityDriver": 3,
        "memBalloon": {"model": 1, "autoDeflate": 0, "freePageReporting": 0},
        "hyperv": {
            key: False if key in ("enabled", "passthrough") else 0
            for key in [
                "enabled",
                "passthrough",
                "relaxed",
                "vapic",
                "spinlocks",
                "vpindex",
                "runtime",
                "synic",
                "stimer",
                "reset",
                "vendorId",
                "frequencies",
                "reenlightenment",
                "tlbflush",
                "ipi",
                "evmcs",
            ]
        }
        | {"vendorIdValue": "KVM VM", "spinlocksValue": 8191, "clockEnabled": 0},
        "extended": {"cpuFlags": {"topoext": "1", "svm": "1", "vmx": "1"}},
        "machineType": "inherit",
        "pciPorts": 16,
        "resources": {
            "memory": s.memory,
            "storage": s.storage,
            "traffic": s.traffic,
            "cpuCores": s.cpu_cores,
        },
    }
    if password and s.password:
        settings["decryptedPassword"] = s.password
    res = state.resources(hv)
    body: dict[str, Any] = {
        "id": s.id,
        "ownerId": s.owner_id,
        "hypervisorId": s.hypervisor_id,
        "arch": 1,
        "name": s.name,
        "selfService": 0,
        "selfServiceSettings": [],
        "hostname": s.hostname,
        "commissionStatus": s.commission_status,
        "uuid": s.uuid,
        "state": s.state,
        "migratable": True,
        "timezone": "_default",
        "migrateLevel": 0,
        "deleteLevel": 0,
        "configLevel": 0,
        "backupLevel": 0,
        "elevated": False,
        "elevateId": None,
        "elevate": False,
        "destroyable": True,
        "rebuild": False,
        "suspended": s.suspended,
        "protected": False,
        "buildFailed": s.build_failed,
        "primaryNetworkDhcp4": False,
        "primaryNetworkDhcp6": False,
        "built": iso(s.built),
        "created": iso(s.created),
        "updated": iso(s.updated),
        "traffic": {
            "public": {
                "countMethod": 1,
                "currentPeriod": {
                    "start": start.isoformat().replace("+00:00", ".000000Z"),
                    "end": end.isoformat().replace("+00:00", ".999999Z"),
                    "limit": s.traffic,
                },
            }
        },
        "settings": settings,
        "cpu": {
            "cores": s.cpu_cores,
            "type": "inherit",
            "typeExact": "host-model",
            "shares": 1024,
            "throttle": 0,
            "topology": {"enabled": False, "sockets": 1, "cores": 1, "threads": 1, "dies": 1},
        },
        "customXML": {
            part: {"xml": "", "enabled": False}
            for part in ("domain", "os", "devices", "features", "clock", "cpuTune")
        },
        "qemuCommandline": [],
        "qemuAgent": {"os": {"screen": ""}},
        "media": {
            "isoMounted": False,
            "isoType": "local",
            "isoName": "",
            "isoFilename": "",
            "isoUrl": "",
            "isoDownload": False,
        },
        "backupPlan": {"id": None, "name": None},
        "vnc": {"ip": hv.ip, "port": s.vnc_port, "enabled": s.vnc_enabled},
        "network": {
            "interfaces": [_interface(s, state, hv.ipv4_pool[0].rsplit(".", 1)[0] + ".1")],
            "secondaryInterfaces": [],
        },
        "storage": [
            {
                "_id": s.id * 10,
                "id": 1,
                "cache": None,
                "bus": None,
                "capacity": s.storage,
                "drive": "a",
                "datastoreDiskId": None,
                "filesystem": None,
                "iops": {"read": None, "write": None},
                "bytes": {"read": None, "write": None},
                "type": "qcow2",
                "profile": s.storage_profile,
                "status": 3,
                "enabled": True,
                "primary": True,
                "created": iso(s.created),
                "updated": iso(s.updated),
                "datastore": [],
                "name": f"{s.uuid}_1",
                "filename": f"{s.uuid}_1.img",
                "hypervisorStorageId": None,
                "local": True,
                "locationType": "mountpoint",
                "path": "/home/vf-data/disk",
            }
        ],
        "hypervisorAssets": [],
        "hypervisor": {
            "id": hv.id,
            "ip": hv.ip,
            "hostname": None,
            "port": 8892,
            "maintenance": hv.maintenance,
            "groupId": hv.group_id,
            "group": {"name": group_.name, "icon": None},
            "timezone": "Europe/London",
            "forceIPv6": False,
            "vncListenType": 1,
            "displayName": None,
            "cpuSet": None,
            "nfType": 4,
            "backupStorageType": 2,
            "defaultDiskType": "inherit",
            "defaultDiskCacheType": "inherit",
            "defaultCPU": "inherit",
            "defaultMachineType": "inherit",
            "created": iso(s.created),
            "updated": iso(s.updated),
            "name": hv.name,
            "dataDir": "/home/vf-data",
            "resources": {k: v for k, v in res.items() if k != "network"},
        },
        "owner": {
            "id": owner.id,
            "admin": False,
            "extRelationId": owner.ext_relation_id,
            "name": owner.name,
            "email": owner.email,
            "timezone": "Europe/London",
            "suspended": owner.suspended,
            "twoFactorAuth": False,
            "created": iso(owner.created),
            "updated": iso(owner.updated),
        },
        "sshKeys": [
            {
                "id": k.id,
                "ownerId": k.user_id,
                "type": "OpenSSH",
                "name": k.name,
                "public": k.public_key,
                "enabled": True,
                "created": iso(k.created),
            }
            for k in keys
        ],
        "sharedUsers": [],
        "tasks": {
            "active": task is not None,
            "lastOn": (task.started if task else s.updated).strftime("%Y-%m-%d %H:%M:%S"),
            "actions": {"pending": [{"id": task.id, "action": task.action}] if task else []},
        },
        "remoteState": remote(s) if remote_state else False,
    }
    return body


def remote(s: Server) -> dict[str, Any]:
    """Live state as libvirt (Linux balloon) or the Windows guest agent reports it; memory in KB."""
    running = s.power == "running" and not s.suspended
    total_kb = s.memory * 1024
    if not running:
        return {"state": "shutoff", "cpu": 0.0, "memory": {}, "disk": {}, "agent": {"fsinfo": []}}
    used_kb = int(total_kb * (0.2 + (s.id % 5) / 10))
    memory: dict[str, Any]
    if s.os_type == "windows":
        memory = {"memtotal": total_kb, "memfree": total_kb - used_kb, "_source": "agent_meminfo"}
    else:
        memory = {
            "actual": total_kb,
            "unused": total_kb - used_kb,
            "available": total_kb - 65536,
            "usable": total_kb - used_kb,
            "rss": used_kb + 131072,
        }
    used_bytes = s.storage * 1024**3 // 5
    return {
        "state": "running",
        "cpu": round(3.5 + s.id % 7, 1),
        "memory": memory,
        "disk": {"vda": {"rd.bytes": 10_485_760, "wr.bytes": 5_242_880, "rd.reqs": 1200, "wr.reqs": 800}},
        "agent": {
            "fsinfo": [
                {
                    "name": "vda1",
                    "mountpoint": "/",
                    "type": "ext4",
                    "used-bytes": used_bytes,
                    "total-bytes": s.storage * 1024**3,
                }
            ]
        },
    }
