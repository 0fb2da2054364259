"""A faithful in-process Proxmox VE API simulator (product code: demo, tests, benchmarks)."""

from vpsbridge.sim.proxmox.app import ProxmoxSimApp, create_app
from vpsbridge.sim.proxmox.cluster import ClusterInfo, standard_cluster
from vpsbridge.sim.proxmox.state import Fault, ProxmoxState, PveError
from vpsbridge.sim.proxmox.transport import SimTransport

__all__ = [
    "ClusterInfo",
    "Fault",
    "ProxmoxSimApp",
    "ProxmoxState",
    "PveError",
    "SimTransport",
    "create_app",
    "standard_cluster",
]
