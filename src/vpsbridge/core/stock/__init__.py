"""Live stock math: how many servers of a product the platform can still provision.

Pure: no I/O, no framework. Platforms map their API onto :mod:`.capacity` (platform-neutral types);
:func:`product_quantity` computes; :func:`compute_quantity` is the stable entry point for
VirtFusion-shaped inputs (``GET /packages/{id}`` data + group resources entries).
"""

from vpsbridge.core.stock.capacity import Footprint, Group, Host, MalformedInput, Resource, StoragePool
from vpsbridge.core.stock.quantity import (
    UNBOUNDED_HOST,
    GroupFit,
    HostFit,
    StockQuantity,
    clamp_buffer,
    fit,
    group_fit,
    host_fit,
    product_quantity,
)
from vpsbridge.core.stock.virtfusion import compute_quantity

__all__ = [
    "UNBOUNDED_HOST",
    "Footprint",
    "Group",
    "GroupFit",
    "Host",
    "HostFit",
    "MalformedInput",
    "Resource",
    "StockQuantity",
    "StoragePool",
    "clamp_buffer",
    "compute_quantity",
    "fit",
    "group_fit",
    "host_fit",
    "product_quantity",
]
