"""Platform-neutral capacity inputs of the stock calculation.

Every platform (VirtFusion today, Proxmox next) maps what its API reports onto these frozen types, so
the math in :mod:`.quantity` is written and tested once. Sizes are plain integers in the units the
footprint uses (MB of memory, CPU cores, GB of storage). A limit of ``None`` means *unlimited*: the
platform does not cap that resource, so it can never bind (VirtFusion reports such a quota as
``max: 0``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class MalformedInput(ValueError):
    """An input does not have the shape the math needs.

    The caller must treat it as *unknown* (like a timeout): a product whose inputs cannot be read keeps
    its last quantity instead of being zeroed because a field was renamed upstream.
    """


@dataclass(frozen=True, slots=True)
class Footprint:
    """What one server of the product takes. ``storage_type`` 0 means the host's local storage."""

    memory_mb: int
    cpu_cores: int
    storage_gb: int
    storage_type: int = 0
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Resource:
    """One capped quantity of a host: ``limit`` (``None`` = unlimited) and what is still ``free``."""

    limit: int | None
    free: int

    @property
    def unlimited(self) -> bool:
        return self.limit is None


@dataclass(frozen=True, slots=True)
class StoragePool:
    """A storage a server's primary disk can live on; ``type_code`` is the platform's storage type."""

    id: str
    name: str
    type_code: int
    enabled: bool
    space: Resource
    #: ``True`` for the host's local (default) storage, used when the footprint has no type code.
    local: bool = False


@dataclass(frozen=True, slots=True)
class Host:
    """One hypervisor (node) of a group and what it still has free.

    ``ineligible`` names why no server may be placed on it (disabled, not commissioned, prohibited),
    or is ``None``. ``servers`` is the host's server-count limit when it has one. ``ipv4_free`` is the
    IPv4 count the host reports for the group-wide pool (``None``: not reported).
    """

    id: str
    name: str
    memory_mb: Resource
    cpu_cores: Resource
    pools: tuple[StoragePool, ...] = ()
    servers: Resource | None = None
    ipv4_free: int | None = None
    ineligible: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """A placement group (a hypervisor group, a Proxmox node set).

    ``missing`` marks a group the platform confirmed does not exist (deleted): it contributes 0.
    """

    id: str
    hosts: tuple[Host, ...] = ()
    missing: bool = False
    notes: tuple[str, ...] = field(default=())
