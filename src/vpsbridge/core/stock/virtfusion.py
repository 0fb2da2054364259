"""VirtFusion-shaped inputs mapped onto the shared capacity types, and the stable entry point.

``package`` is the ``data`` object of ``GET /packages/{id}``; each group is the list of hypervisor
entries of ``GET /compute/hypervisors/groups/{id}/resources`` (all pages concatenated). VirtFusion
writes an unlimited quota as ``max: 0`` (then ``free`` may be negative); that becomes an unlimited
:class:`Resource`.

Shape problems raise :class:`MalformedInput` instead of guessing: a renamed field must leave the
product's stock untouched, not zero it (the field's module once zeroed every product fleet-wide by
matching the storage *pool id* against the package's storage *type*). Flags that are absent default
to the non-destructive reading (enabled, commissioned, not prohibited).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vpsbridge.core.stock.capacity import Footprint, Group, Host, MalformedInput, Resource, StoragePool
from vpsbridge.core.stock.quantity import StockQuantity, product_quantity


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value.strip()))
        except ValueError:
            pass
    raise MalformedInput(f"{what} is not a number: {value!r}")


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedInput(f"{what} is missing or not an object")
    return value


def unwrap(document: Any) -> Any:
    """The ``data`` member of an API answer, or the document itself when it is already unwrapped."""
    if isinstance(document, Mapping) and "data" in document and len(document) <= 12:
        return document["data"]
    return document


def footprint(package: Any) -> Footprint:
    """A package's footprint (memory MB, cores, primary storage GB, storage type code, enabled)."""
    pkg = _mapping(package, "package")
    return Footprint(
        memory_mb=_int(pkg.get("memory"), "package memory"),
        cpu_cores=_int(pkg.get("cpuCores"), "package cpuCores"),
        storage_gb=_int(pkg.get("primaryStorage"), "package primaryStorage"),
        storage_type=_int(pkg.get("primaryStorageProfile") or 0, "package primaryStorageProfile"),
        enabled=_flag(pkg.get("enabled"), True),
    )


def _resource(block: Any, what: str) -> Resource:
    data = _mapping(block, what)
    limit = _int(data.get("max"), f"{what}.max")
    free = _int(data.get("free"), f"{what}.free")
    return Resource(limit=None if limit <= 0 else limit, free=free)


def _pools(resources: Mapping[str, Any], where: str) -> tuple[StoragePool, ...]:
    local = _mapping(resources.get("localStorage"), f"{where} localStorage")
    pools = [
        StoragePool(
            id="local",
            name=str(local.get("name") or "local"),
            type_code=_int(local.get("storageType") or 0, f"{where} localStorage.storageType"),
            enabled=_flag(local.get("enabled"), True),
            space=_resource(local, f"{where} localStorage"),
            local=True,
        )
    ]
    other = resources.get("otherStorage") or []
    if not isinstance(other, Sequence) or isinstance(other, str):
        raise MalformedInput(f"{where} otherStorage is not a list")
    for index, item in enumerate(other):
        pool = _mapping(item, f"{where} otherStorage[{index}]")
        pools.append(
            StoragePool(
                id=str(pool.get("id", index)),
                name=str(pool.get("name") or f"pool {pool.get('id', index)}"),
                type_code=_int(pool.get("storageType") or 0, f"{where} otherStorage[{index}].storageType"),
                enabled=_flag(pool.get("enabled"), True),
                space=_resource(pool, f"{where} otherStorage[{index}]"),
            )
        )
    return tuple(pools)


def _ipv4_free(resources: Mapping[str, Any], where: str) -> int | None:
    network = resources.get("network")
    if not isinstance(network, Mapping):
        return None
    ipv4 = (network.get("total") or {}).get("ipv4") if isinstance(network.get("total"), Mapping) else None
    if not isinstance(ipv4, Mapping) or ipv4.get("free") is None:
        return None
    return _int(ipv4.get("free"), f"{where} network.total.ipv4.free")


def host(entry: Any, index: int = 0) -> Host:
    """One entry of the group resources list (``{"hypervisor": {...}, "resources": {...}}``)."""
    item = _mapping(entry, f"hypervisor entry {index}")
    hv = _mapping(item.get("hypervisor"), f"hypervisor entry {index} hypervisor")
    ident = str(hv.get("id", index))
    name = str(hv.get("name") or f"hypervisor {ident}")
    where = f"hypervisor {ident}"
    ineligible = None
    if not _flag(hv.get("enabled"), True):
        ineligible = "disabled"
    elif not _flag(hv.get("commissioned"), True):
        ineligible = "not commissioned"
    elif _flag(hv.get("prohibit"), False):
        ineligible = "prohibited"
    if ineligible is not None:  # its resources are never read, so they cannot be malformed
        zero = Resource(limit=0, free=0)
        return Host(id=ident, name=name, memory_mb=zero, cpu_cores=zero, ineligible=ineligible)
    res = _mapping(item.get("resources"), f"{where} resources")
    servers = res.get("servers")
    return Host(
        id=ident,
        name=name,
        memory_mb=_resource(res.get("memory"), f"{where} memory"),
        cpu_cores=_resource(res.get("cpuCores"), f"{where} cpuCores"),
        pools=_pools(res, where),
        servers=_resource(servers, f"{where} servers") if servers is not None else None,
        ipv4_free=_ipv4_free(res, where),
    )


def group(entries: Sequence[Any] | None, group_id: str) -> Group:
    """A group from its resource entries; ``None`` entries = the group was confirmed deleted (404)."""
    if entries is None:
        return Group(id=group_id, missing=True, notes=("the group no longer exists",))
    if not isinstance(entries, Sequence) or isinstance(entries, str | bytes):
        raise MalformedInput(f"group {group_id}: resources are not a list")
    return Group(id=group_id, hosts=tuple(host(e, i) for i, e in enumerate(entries)))


def compute_quantity(
    package: Any,
    groups: Sequence[Sequence[Any] | None],
    *,
    ipv4_per_server: int = 1,
    buffer_pct: float = 10.0,
    group_ids: Sequence[int | str] | None = None,
) -> StockQuantity:
    """Servers of ``package`` that can still be provisioned across ``groups``.

    ``groups`` holds one item per hypervisor group: the concatenated hypervisor entries of its
    resources endpoint (``None`` for a group the panel confirmed deleted). ``group_ids`` names them in
    the breakdown (default: their position, 1-based). The result has ``.quantity`` and ``.breakdown``.
    Raises :class:`MalformedInput` when an input cannot be read: treat that as unknown, never as 0.
    """
    ids = [str(g) for g in group_ids] if group_ids is not None else [str(i + 1) for i in range(len(groups))]
    if len(ids) != len(groups):
        raise ValueError("group_ids must name every group")
    shaped = [group(entries, gid) for entries, gid in zip(groups, ids, strict=True)]
    return product_quantity(
        footprint(package), shaped, ipv4_per_server=ipv4_per_server, buffer_pct=buffer_pct
    )
