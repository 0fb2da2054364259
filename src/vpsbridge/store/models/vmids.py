"""VMIDs reserved by deploys, so two deploys never clone to the same Proxmox VMID.

Proxmox's ``/cluster/nextid`` only suggests a free id; it reserves nothing, so two deploys asking at
the same moment get the same answer. The unique ``(platform_id, vmid)`` pair here is the reservation:
whoever inserts the row owns the id until the VM is destroyed (then the row is deleted and Proxmox
may hand the id out again).
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vpsbridge.store.models.base import Base, Timestamped


class VmidReservation(Timestamped, Base):
    __tablename__ = "vmid_reservations"
    __table_args__ = (UniqueConstraint("platform_id", "vmid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"), index=True)
    vmid: Mapped[int] = mapped_column()
    #: The server the id is for; null once that server record is deleted (the id stays taken).
    server_id: Mapped[int | None] = mapped_column(ForeignKey("servers.id", ondelete="SET NULL"), index=True)
