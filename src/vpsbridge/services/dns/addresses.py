"""Which addresses, subnets, hostname and forward zone a server has, for its DNS records.

Three sources, each for its purpose:

* the ``ip_addresses`` rows assigned to the server (our own allocation) and the platform's last
  answer cached in ``servers.last_known`` - what provisioning, rename and reconcile write PTRs for;
* the platform itself, asked afresh (:func:`fresh_addresses`) - what a *client's* PTR edit is checked
  against, because a cached list could still hold an address that has since moved to someone else.

Private addresses (RFC 1918, CGNAT, ULA, link-local, or a pool marked ``private``) get PTRs only when
``dns_ptr_private`` is set: public reverse zones cannot hold them and internal ones are the
operator's choice. IPv6 may come as routed subnets (``2001:db8:1::/64``) rather than host addresses;
those have no PTR of their own until a client names a host inside them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from vpsbridge.core.ipam import normalize_name
from vpsbridge.services.errors import Conflict, NotFound, UpstreamError
from vpsbridge.store.models import IpAddress, IpPool, Platform, Product, Server, Service

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "127.0.0.0/8",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
)
#: Server states whose records must not be (re)written by a reconcile.
GONE_STATES = frozenset({"terminated", "terminating", "deleted", "cancelled"})


def is_private(ip: str) -> bool:
    """Private-use ranges only (documentation ranges such as 192.0.2.0/24 count as public here)."""
    address = ipaddress.ip_address(ip)
    return any(address.version == net.version and address in net for net in _PRIVATE_NETWORKS)


def split_entries(entries: Iterable[Any]) -> tuple[list[str], list[str]]:
    """Host addresses and subnets from a platform's address list (``addr`` or ``net/len``).

    A ``/128`` (or ``/32``) is a host address; malformed entries are dropped rather than trusted.
    """
    hosts: list[str] = []
    subnets: list[str] = []
    for entry in entries:
        text = str(entry).strip()
        try:
            if "/" in text:
                network = ipaddress.ip_network(text, strict=False)
                if network.num_addresses == 1:
                    hosts.append(str(network.network_address))
                else:
                    subnets.append(str(network))
            else:
                hosts.append(str(ipaddress.ip_address(text)))
        except ValueError:
            continue
    return _unique(hosts), _unique(subnets)


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


@dataclass
class ServerTarget:
    """A server's DNS-relevant facts at one moment (stored in a job's payload or state as a dict)."""

    server_id: int
    hostname: str | None
    state: str
    addresses: list[str] = field(default_factory=list)
    private: list[str] = field(default_factory=list)
    subnets: list[str] = field(default_factory=list)
    forward_zone: str | None = None

    def ptr_addresses(self, include_private: bool) -> list[str]:
        return self.addresses + (self.private if include_private else [])

    def as_dict(self) -> dict[str, Any]:
        return {
            "server_id": self.server_id,
            "hostname": self.hostname,
            "state": self.state,
            "addresses": list(self.addresses),
            "private": list(self.private),
            "subnets": list(self.subnets),
            "forward_zone": self.forward_zone,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerTarget:
        return cls(
            server_id=int(data["server_id"]),
            hostname=data.get("hostname"),
            state=str(data.get("state") or "unknown"),
            addresses=list(data.get("addresses") or []),
            private=list(data.get("private") or []),
            subnets=list(data.get("subnets") or []),
            forward_zone=data.get("forward_zone"),
        )


def _last_known_entries(last_known: Mapping[str, Any] | None) -> list[Any]:
    data = dict(last_known or {})
    entries: list[Any] = []
    for key in ("ipv4", "ipv6", "addresses"):
        value = data.get(key)
        if isinstance(value, list | tuple):
            entries.extend(value)
    return entries


async def load_targets(ctx: AppContext, server_ids: Iterable[int] | None = None) -> list[ServerTarget]:
    """Targets of the given servers (all servers when ``None``), in three queries whatever the count."""
    ids = None if server_ids is None else sorted(set(server_ids))
    async with ctx.db.session() as session:
        query = select(Server).order_by(Server.id)
        if ids is not None:
            query = query.where(Server.id.in_(ids))
        servers = (await session.scalars(query)).all()
        wanted = [s.id for s in servers]
        rows = (
            await session.execute(
                select(IpAddress.server_id, IpAddress.address, IpPool.settings)
                .join(IpPool, IpPool.id == IpAddress.pool_id)
                .where(IpAddress.server_id.in_(wanted))
                .order_by(IpAddress.id)
            )
        ).all()
        zones = (
            await session.execute(
                select(Service.server_id, Product.dns_zone)
                .join(Product, Product.id == Service.product_id)
                .where(Service.server_id.in_(wanted), Product.dns_zone.is_not(None))
            )
        ).all()
    pool_rows: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for server_id, address, settings in rows:
        if server_id is None:
            continue
        pool_rows.setdefault(int(server_id), []).append((str(address), dict(settings or {})))
    product_zone = {int(sid): str(zone) for sid, zone in zones if zone and sid is not None}
    targets = []
    for server in servers:
        assigned = pool_rows.get(server.id, [])
        hosts, subnets = split_entries([a for a, _ in assigned] + _last_known_entries(server.last_known))
        private_pool = {a for a, s in assigned if s.get("private")}
        forward = product_zone.get(server.id) or next(
            (str(s["dns_zone"]) for _, s in assigned if s.get("dns_zone")), None
        )
        public = [h for h in hosts if h not in private_pool and not is_private(h)]
        targets.append(
            ServerTarget(
                server_id=server.id,
                hostname=server.hostname or None,
                state=server.state,
                addresses=public,
                private=[h for h in hosts if h not in public],
                subnets=subnets,
                forward_zone=normalize_name(forward) if forward else None,
            )
        )
    return targets


async def load_target(ctx: AppContext, server_id: int) -> ServerTarget:
    found = await load_targets(ctx, [server_id])
    if not found:
        raise NotFound(f"no server with id {server_id}")
    return found[0]


@dataclass(frozen=True)
class FreshAddresses:
    """The addresses the platform says the server has right now (the ownership check's truth)."""

    hostname: str | None
    addresses: tuple[str, ...]
    subnets: tuple[str, ...]


async def fresh_addresses(ctx: AppContext, server_id: int) -> FreshAddresses:
    """Ask the server's platform for its current addresses; refuse when it cannot be asked.

    Refusing (rather than falling back to cached data) is deliberate: a client edit must be checked
    against what is true now, or a released address could be claimed by its previous holder.
    """
    from vpsbridge.http.errors import UpstreamError as HttpUpstreamError
    from vpsbridge.platforms import registry
    from vpsbridge.platforms.models import ServerRef

    async with ctx.db.session() as session:
        server = await session.get(Server, server_id)
        if server is None:
            raise NotFound(f"no server with id {server_id}")
        if not server.external_id:
            raise Conflict("this server has not been created on its platform yet")
        platform = await session.get(Platform, server.platform_id)
        if platform is None:  # pragma: no cover - the foreign key forbids it
            raise NotFound(f"the platform of server {server_id} does not exist")
        credentials = ctx.secrets.decrypt_json(platform.credentials_enc) if platform.credentials_enc else {}
        ref = ServerRef(external_id=server.external_id, node=server.node)
        spec = (platform.type, platform.url, platform.verify_tls, platform.ca_bundle, dict(platform.settings))
    type_, url, verify_tls, ca_bundle, settings = spec
    driver = registry.create_driver(
        type_,
        url=url,
        credentials=credentials,
        verify_tls=verify_tls,
        ca_bundle=ca_bundle,
        recorder=ctx.extras.get("upstream_recorder"),
        settings=settings,
    )
    try:
        info = await driver.server_info(ref, live=False)
    except HttpUpstreamError as exc:
        raise UpstreamError(f"cannot confirm the server's addresses with its platform: {exc}") from exc
    finally:
        await driver.aclose()
    hosts, subnets = split_entries([*info.ipv4, *info.ipv6])
    return FreshAddresses(info.hostname, tuple(hosts), tuple(subnets))
