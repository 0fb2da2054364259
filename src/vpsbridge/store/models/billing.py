"""Invoices vpsbridge raised in billing for VirtFusion self-service credit, and what became of them.

Self-service credit is never free: vpsbridge asks billing for an invoice first and credits the panel
only once that invoice is paid. The unique ``invoice_id`` is what makes crediting happen once per
invoice however often billing reports the payment; ``status`` moves ``pending`` -> ``crediting`` ->
``credited`` with compare-and-set updates, so two deliveries of the same payment never both credit.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vpsbridge.store.models.base import Base, Timestamped


class CreditInvoice(Timestamped, Base):
    __tablename__ = "credit_invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The billing system's invoice id (WHMCS ``tblinvoices.id``).
    invoice_id: Mapped[int] = mapped_column(unique=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"), index=True)
    #: The billing client, which is also the panel user's external relation id.
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="SET NULL"))
    amount: Mapped[float] = mapped_column()
    tokens: Mapped[float] = mapped_column()
    #: ``client`` (asked for in the client area) or ``topoff`` (the daily auto top-off).
    source: Mapped[str] = mapped_column(String(16))
    #: ``pending`` (unpaid), ``crediting`` (paid, panel being credited), ``credited``.
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    #: The panel's credit id once credited.
    credit_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
