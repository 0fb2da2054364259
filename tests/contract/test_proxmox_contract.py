"""Every request the Proxmox driver sends, checked against the official PVE API schema.

The driver runs a complete set of operations against the simulator; the simulator records each
request as pveproxy would see it (form/query decoded, path parameters included). Each one must name
an existing endpoint that accepts API tokens, and every parameter must exist there and satisfy its
type, enum, pattern, length and range - the rules Proxmox enforces with "Parameter verification
failed.". The simulator's own parameter tables are compared with the schema as well.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

from proxmox_support import Env, make_env

from conftest import require_shared
from vpsbridge.platforms.models import ServerRef
from vpsbridge.sim.proxmox.params import CONFIG_KEYS, ENDPOINTS

Schema = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def schema() -> Schema:
    path = require_shared("specs/pve-apidoc.json")
    flat: Schema = {}

    def walk(node: dict[str, Any]) -> None:
        for method, info in (node.get("info") or {}).items():
            flat[f"{method} {node['path']}"] = info
        for child in node.get("children") or []:
            walk(child)

    for root in json.loads(path.read_text()):
        walk(root)
    return flat


def _template_for(schema: Schema, method: str, path: str) -> str | None:
    parts = path.strip("/").split("/")
    for key in schema:
        m, _, template = key.partition(" ")
        tparts = template.strip("/").split("/")
        if m != method or len(tparts) != len(parts):
            continue
        if all(t == p or (t.startswith("{") and t.endswith("}")) for t, p in zip(tparts, parts, strict=True)):
            return key
    return None


def _perl_regex(pattern: str) -> str:
    return pattern.replace("(?^:", "(?:").replace("(?^i:", "(?i:")


def _property(props: dict[str, Any], name: str) -> dict[str, Any] | None:
    if name in props:
        return dict(props[name])
    for key, spec in props.items():
        if key.endswith("[n]") and re.fullmatch(re.escape(key[:-3]) + r"\d+", name):
            return dict(spec)
    return None


_FORMAT_CHECKS = {
    "pve-vmid": r"\d+",
    "pve-node": r"[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?",
    "pve-storage-id": r"[a-z][a-z0-9\-_.]*[a-z0-9]",
    "urlencoded": r"[-%a-zA-Z0-9_.!~*'()]*",
    "dns-name": r"([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)(\.([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?))*",
    "pve-configid-list": r"[a-z][a-z_\-]*\d*([,;\s]+[a-z][a-z_\-]*\d*)*",
    "pve-tag-list": r"[a-z0-9_][a-z0-9_\-+.]*(;[a-z0-9_][a-z0-9_\-+.]*)*",
}


def _violations(spec: dict[str, Any], value: str) -> list[str]:
    problems: list[str] = []
    kind = spec.get("type")
    if kind == "boolean" and value not in ("0", "1"):
        problems.append(f"boolean sent as {value!r}")
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", value):
            problems.append(f"integer sent as {value!r}")
        else:
            if "minimum" in spec and int(value) < float(spec["minimum"]):
                problems.append(f"{value} < minimum {spec['minimum']}")
            if "maximum" in spec and int(value) > float(spec["maximum"]):
                problems.append(f"{value} > maximum {spec['maximum']}")
    if kind == "number" and not re.fullmatch(r"-?\d+(\.\d+)?", value):
        problems.append(f"number sent as {value!r}")
    if kind == "string":
        if "enum" in spec and value not in spec["enum"]:
            problems.append(f"{value!r} not in enum {spec['enum']}")
        if "pattern" in spec and not re.fullmatch(_perl_regex(spec["pattern"]), value):
            problems.append(f"{value!r} does not match {spec['pattern']}")
        if "maxLength" in spec and len(value) > int(spec["maxLength"]):
            problems.append(f"longer than {spec['maxLength']}")
        fmt = spec.get("format")
        if isinstance(fmt, str) and fmt in _FORMAT_CHECKS and not re.fullmatch(_FORMAT_CHECKS[fmt], value):
            problems.append(f"{value!r} violates format {fmt}")
    return problems


async def _exercise(env: Env) -> None:
    """Every driver operation that talks to Proxmox, once."""
    d = env.driver
    await d.test_connection()
    await d.capacity({"storage": "local-lvm"})
    await d.os_templates()
    vmid = await d.next_vmid()
    await d.vmid_free(vmid)
    task = await d.clone(9000, vmid, name="vps-contract", storage="local-lvm", description="deploy")
    await d.task_status(task)
    await d.wait(task)
    ref = ServerRef(external_id=str(vmid), node="pve1")
    await d.write_marker(ref, "svc-9")
    await d.wait(await d.migrate(ref, "pve2", targetstorage="local-lvm"))
    ref = ServerRef(external_id=str(vmid), node="pve2")
    await d.wait(await d.set_resources(ref, cores=2, memory_mb=2048))
    await d.wait(await d.resize_disk(ref, "scsi0", 20))
    await d.wait(await d.set_disk_io(ref, "scsi0", mbps_rd=100, mbps_wr=100, iops_rd=2000, iops_wr=2000))
    key, add = await d.add_disk(ref, "local-lvm", 10, options={"iothread": 1})
    await d.wait(add)
    await d.wait(await d.resize_disk(ref, key, 15))
    await d.wait(await d.set_network(ref, bridge="vmbr0", vlan=100, rate_mbps=1000))
    await d.set_firewall_options(ref, enable=True, ipfilter=True, policy_in="ACCEPT", policy_out="ACCEPT")
    await d.sync_ipset(ref, "ipfilter-net0", ["192.0.2.10", "2001:db8::10"], comment="anti-spoofing")
    await d.sync_ipset(ref, "ipfilter-net0", ["192.0.2.10"])
    await d.wait(
        await d.set_cloudinit(
            ref,
            user="root",
            password="Pa55-word",
            ssh_keys=["ssh-ed25519 AAAAC3Nza+/= me@example.test"],
            ipconfig={0: "ip=192.0.2.10/24,gw=192.0.2.1", 1: "ip6=2001:db8::10/64,gw6=2001:db8::1"},
            nameservers=["192.0.2.53"],
            searchdomain="example.test",
        )
    )
    await d.wait(await d.power(ref, "start"))
    await d.server_info(ref, live=True)
    await d.traffic(ref)
    await d.rrd(ref, "hour")
    await d.console(ref)
    await d.console(ref, kind="xterm")
    reset = await d.reset_password(ref, "N3w-password")
    await d.wait(reset.task)
    await d.wait(await d.power(ref, "restart"))
    await d.wait(await d.power(ref, "reset"))
    await d.wait(await d.shutdown(ref, timeout=30, force_stop=True))
    await d.wait(await d.power(ref, "start"))
    await d.wait(await d.stop(ref))
    await d.wait(await d.suspend(ref))
    await d.wait(await d.unsuspend(ref))
    await d.wait(await d.stop(ref))
    # a rebuild's staging clone hands a disk over to another VM on the same node
    staging = await d.next_vmid()
    await d.wait(await d.clone(9000, staging, name="vps-staging", description="staging"))
    staging_ref = ServerRef(external_id=str(staging), node="pve1")
    await d.write_marker(staging_ref, "svc-9")
    await d.wait(await d.migrate(staging_ref, "pve2", targetstorage="local-lvm"))
    staging_ref = ServerRef(external_id=str(staging), node="pve2")
    await d.wait(await d.reassign_disk(ref, key, staging, "scsi1"))
    await d.wait(await d.remove_disk(staging_ref, "scsi1"))
    await d.wait(await d.destroy(staging_ref, owner="svc-9"))
    await d.wait(await d.destroy(ref, owner="svc-9"))


async def test_every_driver_request_matches_the_schema(schema: Schema) -> None:
    env = make_env()
    await _exercise(env)
    await env.driver.aclose()
    assert len(env.sim.requests) > 40
    problems: list[str] = []
    seen: set[str] = set()
    for method, path, params in env.sim.requests:
        endpoint = _template_for(schema, method, path)
        if endpoint is None:
            problems.append(f"{method} {path}: no such endpoint in the API schema")
            continue
        seen.add(endpoint)
        info = schema[endpoint]
        if endpoint != "POST /access/ticket" and not info.get("allowtoken", 1):
            problems.append(f"{endpoint}: API tokens are not allowed here")
        props = info.get("parameters", {}).get("properties", {})
        values = dict(params)
        template_parts = endpoint.partition(" ")[2].strip("/").split("/")
        for tpart, part in zip(template_parts, path.strip("/").split("/"), strict=True):
            if tpart.startswith("{"):
                values[tpart[1:-1]] = part
        for name, value in values.items():
            spec = _property(props, name)
            if spec is None:
                problems.append(f"{endpoint}: unknown parameter {name!r}")
                continue
            problems.extend(f"{endpoint}: {name}: {p}" for p in _violations(spec, value))
        for name, spec in props.items():
            if not spec.get("optional") and not name.endswith("[n]") and name not in values:
                problems.append(f"{endpoint}: required parameter {name!r} missing")
    assert problems == []
    # the exercise really covers the driver's surface
    for expected in (
        "POST /nodes/{node}/qemu/{vmid}/clone",
        "POST /nodes/{node}/qemu/{vmid}/migrate",
        "PUT /nodes/{node}/qemu/{vmid}/resize",
        "POST /nodes/{node}/qemu/{vmid}/move_disk",
        "POST /nodes/{node}/qemu/{vmid}/config",
        "PUT /nodes/{node}/qemu/{vmid}/config",
        "DELETE /nodes/{node}/qemu/{vmid}",
        "PUT /nodes/{node}/qemu/{vmid}/firewall/options",
        "POST /nodes/{node}/qemu/{vmid}/firewall/ipset/{name}",
        "DELETE /nodes/{node}/qemu/{vmid}/firewall/ipset/{name}/{cidr}",
        "POST /nodes/{node}/qemu/{vmid}/vncproxy",
        "POST /nodes/{node}/qemu/{vmid}/termproxy",
        "GET /nodes/{node}/qemu/{vmid}/rrddata",
        "POST /access/ticket",
        "GET /cluster/nextid",
        "GET /access/permissions",
        "POST /nodes/{node}/qemu/{vmid}/status/shutdown",
    ):
        assert expected in seen, expected


async def test_driver_passes_a_simulator_checking_with_the_official_schema(schema: Schema) -> None:
    env = make_env()
    env.sim.use_schema(require_shared("specs/pve-apidoc.json"))
    assert env.sim.param_tables is not None
    assert "POST /nodes/{node}/qemu/{vmid}/clone" in env.sim.param_tables
    await _exercise(env)
    await env.driver.aclose()
    # and the derived tables do reject what Proxmox rejects
    from vpsbridge.sim.proxmox.params import validate

    tables = env.sim.param_tables
    endpoint = "POST /nodes/{node}/qemu/{vmid}/clone"
    base = {"node": "pve1", "vmid": "9000", "newid": "120"}
    assert validate(endpoint, base, tables) == {}
    assert set(validate(endpoint, {**base, "fulll": "1"}, tables)) == {"fulll"}
    assert set(validate(endpoint, {**base, "format": "vdi"}, tables)) == {"format"}
    config = "POST /nodes/{node}/qemu/{vmid}/config"
    assert validate(config, {"node": "pve1", "vmid": "100", "net7": "virtio,bridge=vmbr0"}, tables) == {}
    assert set(validate(config, {"node": "pve1", "vmid": "100", "sshkeys": "a b"}, tables)) == {"sshkeys"}


def test_simulator_parameter_tables_follow_the_schema(schema: Schema) -> None:
    problems: list[str] = []
    for endpoint, table in ENDPOINTS.items():
        info = schema.get(endpoint)
        if info is None:
            problems.append(f"{endpoint}: not in the schema")
            continue
        props = info.get("parameters", {}).get("properties", {})
        for name, spec in table.items():
            official = _property(props, name)
            if official is None:
                problems.append(f"{endpoint}: simulator accepts unknown {name!r}")
                continue
            if official.get("type") != spec.type:
                problems.append(f"{endpoint}: {name} is {official.get('type')}, simulator says {spec.type}")
            if spec.enum and set(spec.enum) - set(official.get("enum", spec.enum)):
                problems.append(f"{endpoint}: {name} enum differs")
            if bool(official.get("optional")) != spec.optional and name not in ("upid",):
                problems.append(f"{endpoint}: {name} optional={official.get('optional')} in the schema")
        # the simulator must not reject what Proxmox accepts (config writes are checked key by key)
        if not endpoint.endswith("/config") or endpoint.startswith("GET"):
            missing = {n for n in props if not n.endswith("[n]")} - set(table)
            if missing:
                problems.append(f"{endpoint}: simulator rejects valid {sorted(missing)}")
    config_props = schema["POST /nodes/{node}/qemu/{vmid}/config"]["parameters"]["properties"]
    for name, spec in CONFIG_KEYS.items():
        official = config_props.get(name)
        if official is None or official.get("type") != spec.type:
            problems.append(f"config key {name}: {official and official.get('type')} vs {spec.type}")
    assert problems == []


async def test_console_websocket_url_matches_the_schema(schema: Schema) -> None:
    """The relay opens ``vncwebsocket`` (a websocket, so it bypasses the recorded transport): its path
    and query parameters must be the schema's, and every parameter value must pass its rules."""
    env = make_env()
    try:
        vmid = await env.driver.next_vmid()
        task = await env.driver.clone(9000, vmid, name=f"vps{vmid}")
        await env.driver.wait(task)
        assert task.server is not None
        await env.driver.wait(await env.driver.power(task.server, "start"))
        ticket = await env.driver.console(task.server)
    finally:
        await env.driver.aclose()
    assert ticket.url is not None
    url = ticket.url.split("/api2/json", 1)[1]
    path, _, query = url.partition("?")
    key = _template_for(schema, "GET", path)
    assert key == "GET /nodes/{node}/qemu/{vmid}/vncwebsocket"
    props = schema[key]["parameters"]["properties"]
    params = dict(part.split("=", 1) for part in query.split("&"))
    assert set(params) == {"port", "vncticket"}
    for name, value in params.items():
        spec = _property(props, name)
        assert spec is not None, name
        assert _violations(spec, value) == [], name
