"""Ready-made simulated clusters for the demo, tests and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

from vpsbridge.sim.proxmox.state import ProxmoxState

#: The template VMs every standard cluster has: (vmid, name, size in GiB).
TEMPLATES: tuple[tuple[int, str, int], ...] = (
    (9000, "debian-12", 3),
    (9001, "ubuntu-2404", 4),
    (9002, "almalinux-9", 10),
)
TOKEN_ID = "vpsbridge@pve!deploy"  # noqa: S105 - an identifier, not a secret
CONSOLE_USER = "vnc@pve"


@dataclass(frozen=True)
class ClusterInfo:
    token_id: str
    token_secret: str
    console_user: str
    console_password: str
    template_node: str
    nodes: tuple[str, ...]


def standard_cluster(
    state: ProxmoxState | None = None,
    *,
    token_secret: str = "11111111-2222-3333-4444-555555555555",  # noqa: S107 - simulator credential
    console_password: str = "console-password",  # noqa: S107 - simulator credential
    nodes: int = 3,
) -> tuple[ProxmoxState, ClusterInfo]:
    """Nodes ``pve1..pveN`` (local LVM-thin + a shared Ceph RBD pool), templates on ``pve1`` local storage."""
    sim = state or ProxmoxState()
    sim.add_shared_storage("ceph", "rbd", 20000)
    names = tuple(f"pve{i}" for i in range(1, nodes + 1))
    for index, name in enumerate(names):
        sim.add_node(
            name,
            cpus=32 if index else 16,
            memory_gb=128 if index else 64,
            local_storage={"local": ("dir", 200), "local-lvm": ("lvmthin", 1500 + 500 * index)},
        )
        sim.nodes[name].storages["local"].content = ("iso", "vztmpl", "backup", "images")
    for vmid, name, size in TEMPLATES:
        sim.add_template(vmid, names[0], name, storage="local-lvm", disk_gb=size)
    sim.add_token(TOKEN_ID, token_secret)
    sim.add_user(CONSOLE_USER, console_password, frozenset({"VM.Console", "VM.Audit"}))
    return sim, ClusterInfo(TOKEN_ID, token_secret, CONSOLE_USER, console_password, names[0], names)
