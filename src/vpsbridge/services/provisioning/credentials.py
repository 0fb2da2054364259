"""The server's login (root password), stored encrypted and handed to billing on request.

Platforms return the root password exactly once (VirtFusion's build answer, our own generated
password for platforms that take one), so it is encrypted with the context's secret box and
written as soon as it is known, before anything else can fail. It never appears in job state,
logs, audit details or service listings; :func:`read_credentials` is the only way out.
"""

from __future__ import annotations

import secrets
import string
from typing import TYPE_CHECKING, Any

from vpsbridge.store.models import Server, utcnow

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

_ALPHABET = string.ascii_letters + string.digits


def generate_password(length: int = 20) -> str:
    """A random password for platforms that let us choose one: letters and digits only, since some
    guest tools and cloud-init configurations mangle punctuation."""
    while True:
        value = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if (
            any(c.isdigit() for c in value)
            and any(c.isupper() for c in value)
            and any(c.islower() for c in value)
        ):
            return value


async def store_credentials(ctx: AppContext, server_id: int, username: str, password: str) -> None:
    """Encrypt and save the login of ``server_id`` (replacing the previous one)."""
    token = ctx.secrets.encrypt_json(
        {"username": username, "password": password, "updated_at": utcnow().isoformat()}
    )
    async with ctx.db.session() as session:
        row = await session.get(Server, server_id)
        if row is not None:
            row.credentials_enc = token


async def read_credentials(ctx: AppContext, server_id: int) -> dict[str, Any] | None:
    """``{"username", "password", "updated_at"}`` of ``server_id``, or ``None`` when none is stored."""
    async with ctx.db.session() as session:
        row = await session.get(Server, server_id)
        token = row.credentials_enc if row is not None else None
    return ctx.secrets.decrypt_json(token) if token else None
