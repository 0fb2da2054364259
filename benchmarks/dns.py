"""Reverse-DNS reconcile against a real PowerDNS: batched per zone (ours) against one call per address.

    python benchmarks/dns.py            # 5,000 addresses over 40 reverse zones
    python benchmarks/dns.py --smoke    # 200 addresses over 8 zones, a few seconds, for CI

The script starts Debian's ``pdns_server`` (gsqlite3 backend, throw-away directory, free loopback
ports, ``primary=yes`` and ``also-notify`` to a local listener) and creates two identical sets of
reverse zones with ``soa_edit_api=INCREASE``, one per approach, so both start from the same state:

* **ours**: every address is placed with ``find_zone`` (one parse of the zone list), the PTRs of a zone
  go to ``PowerDnsProvider.apply`` as one batch: one read of the zone, one PATCH, one NOTIFY;
* **naive**: one PATCH and one NOTIFY per address, the way per-address modules do it.

A third row repeats our reconcile unchanged: it must read each zone once and write nothing, leaving
every SOA serial as it was. The figures printed are HTTP calls and wall time per approach, and ratios.
"""

# ruff: noqa: E402 - the import path is fixed up before the imports below
from __future__ import annotations

import importlib
import sys
from pathlib import Path

# This file is called dns.py, like dnspython's package. Running any script in this folder puts the
# folder first on sys.path, so drop it from there before anything imports ``dns``; and should another
# benchmark import this file *as* ``dns`` anyway, hand that import over to dnspython.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if __name__ == "dns":
    del sys.modules[__name__]
    sys.modules[__name__] = importlib.import_module(__name__)
sys.path.insert(0, str(_HERE.parent / "tests" / "integration"))

import argparse
import asyncio
import ipaddress
import shutil
import time
from dataclasses import dataclass

import httpx2
from pdns_support.launcher import PdnsServer, find_schema, running_pdns

from vpsbridge.config import load_settings
from vpsbridge.core.ipam import build_zone_index
from vpsbridge.dns.powerdns import PowerDnsProvider
from vpsbridge.dns.records import Change
from vpsbridge.http import UpstreamRecord
from vpsbridge.logs import configure_logging


@dataclass
class Row:
    name: str
    calls: int
    seconds: float
    written: int


def plan(second_octet: int, zones: int, addresses: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Zone names ``N.<second>.10.in-addr.arpa.`` and (ip, hostname) pairs spread evenly over them."""
    names = [f"{n}.{second_octet}.10.in-addr.arpa." for n in range(zones)]
    pairs = []
    for i in range(addresses):
        zone, host = i % zones, i // zones + 1
        ip = str(ipaddress.IPv4Address(f"10.{second_octet}.{zone}.{host % 254 + 1}"))
        pairs.append((ip, f"vps-{second_octet}-{i}.example.com."))
    return names, pairs


def create_zones(server: PdnsServer, names: list[str]) -> None:
    with httpx2.Client(
        base_url=f"{server.api_url}/api/v1/servers/localhost", headers={"X-API-Key": server.api_key}
    ) as admin:
        for name in names:
            body = {
                "name": name,
                "kind": "Native",
                "nameservers": ["ns1.example.net."],
                "soa_edit_api": "INCREASE",
            }
            admin.post("/zones", json=body).raise_for_status()


async def ours(server: PdnsServer, names: list[str], pairs: list[tuple[str, str]], label: str) -> Row:
    records: list[UpstreamRecord] = []
    provider = PowerDnsProvider.from_config(
        url=server.api_url, credentials={"api_key": server.api_key}, settings={}, recorder=records.append
    )
    started = time.perf_counter()
    try:
        index = build_zone_index(await provider.zone_names())
        batches: dict[str, list[Change]] = {}
        for ip, host in pairs:
            found = index.find(ip)
            if found is None or found[0] not in names:
                continue
            batches.setdefault(found[0], []).append(Change.replace(found[1], "PTR", host, ttl=3600))
        written = 0
        for zone, changes in batches.items():
            result = await provider.apply(zone, changes)
            if not result.ok:
                raise SystemExit(f"{zone}: {result.failed[:3]}")
            written += len(result.applied)
    finally:
        await provider.aclose()
    return Row(label, len(records), time.perf_counter() - started, written)


async def naive(server: PdnsServer, names: list[str], pairs: list[tuple[str, str]]) -> Row:
    """One PATCH and one NOTIFY per address, reusing one connection (a fair baseline)."""
    calls = 0
    started = time.perf_counter()
    async with httpx2.AsyncClient(
        base_url=f"{server.api_url}/api/v1/servers/localhost", headers={"X-API-Key": server.api_key}
    ) as client:
        for ip, host in pairs:
            owner = ipaddress.ip_address(ip).reverse_pointer + "."
            zone = owner.split(".", 1)[1]
            body = {
                "rrsets": [
                    {
                        "name": owner,
                        "type": "PTR",
                        "ttl": 3600,
                        "changetype": "REPLACE",
                        "records": [{"content": host, "disabled": False}],
                    }
                ]
            }
            (await client.patch(f"/zones/{zone}", json=body)).raise_for_status()
            (await client.put(f"/zones/{zone}/notify")).raise_for_status()
            calls += 2
    return Row("naive: PATCH + NOTIFY per address", calls, time.perf_counter() - started, len(pairs))


def serials(server: PdnsServer, names: list[str]) -> dict[str, int]:
    with httpx2.Client(
        base_url=f"{server.api_url}/api/v1/servers/localhost", headers={"X-API-Key": server.api_key}
    ) as admin:
        return {z["name"]: int(z["serial"]) for z in admin.get("/zones").json() if z["name"] in names}


def ptr_count(server: PdnsServer, zone: str) -> int:
    with httpx2.Client(
        base_url=f"{server.api_url}/api/v1/servers/localhost", headers={"X-API-Key": server.api_key}
    ) as admin:
        return sum(r["type"] == "PTR" for r in admin.get(f"/zones/{zone}").json()["rrsets"])


async def run(args: argparse.Namespace) -> int:
    binary = shutil.which("pdns_server")
    schema = find_schema()
    if binary is None or schema is None:
        print("needs pdns_server and its SQLite backend: apt-get install pdns-server pdns-backend-sqlite3")
        return 2
    zones, addresses = (8, 200) if args.smoke else (args.zones, args.addresses)
    ours_zones, ours_pairs = plan(0, zones, addresses)
    naive_zones, naive_pairs = plan(1, zones, addresses)
    with running_pdns(binary, schema) as server:
        create_zones(server, ours_zones + naive_zones)
        batched = await ours(server, ours_zones, ours_pairs, "ours: one batch per zone")
        after_first = serials(server, ours_zones)
        repeat = await ours(server, ours_zones, ours_pairs, "ours, repeated (nothing to change)")
        after_repeat = serials(server, ours_zones)
        baseline = await naive(server, naive_zones, naive_pairs)
        per_zone = addresses // zones
        for name in (ours_zones[0], naive_zones[0]):
            if ptr_count(server, name) != per_zone:
                print(f"unexpected PTR count in {name}")
                return 1
        if after_first != after_repeat:
            print("the repeated reconcile changed SOA serials")
            return 1
    print(f"reconcile of {addresses} addresses over {zones} reverse zones, pdns_server with gsqlite3\n")
    print(f"{'approach':<40} {'HTTP calls':>10} {'seconds':>9} {'written':>8}")
    for row in (batched, repeat, baseline):
        print(f"{row.name:<40} {row.calls:>10} {row.seconds:>9.2f} {row.written:>8}")
    print()
    print(f"HTTP calls, naive / ours: {baseline.calls / batched.calls:.1f}x")
    print(f"wall time,  naive / ours: {baseline.seconds / batched.seconds:.1f}x")
    print(f"repeated reconcile: {repeat.calls} calls, 0 writes, SOA serials unchanged")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="200 addresses over 8 zones (CI)")
    parser.add_argument("--zones", type=int, default=40)
    parser.add_argument("--addresses", type=int, default=5000)
    args = parser.parse_args()
    configure_logging(load_settings(log_level="warning"))  # one log line per request would skew timings
    if args.addresses // args.zones > 254:
        parser.error("at most 254 addresses per /24 zone")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
