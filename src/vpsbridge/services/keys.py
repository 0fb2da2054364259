"""Re-encrypting every stored secret with the newest key (``vpsbridge keys rotate``).

Encrypted columns are found by convention, not by a list: every column whose name ends in
``_enc`` holds a MultiFernet token. A table added later is therefore rotated without anyone
remembering to register it. Each table is rotated in batches of short transactions so a large
rotation never holds the SQLite write lock for long; a row already encrypted with the newest key is
skipped, so an interrupted rotation can simply be run again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Column, Table, select, update

from vpsbridge.services.audit import Actor, record
from vpsbridge.services.schemas import RotationReport
from vpsbridge.store.models import Base

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

ENCRYPTED_SUFFIX = "_enc"
BATCH = 200

#: ``progress(column_label, done, total)`` after each batch.
Progress = Callable[[str, int, int], None]


def encrypted_columns() -> list[tuple[Table, Column[str]]]:
    """Every (table, column) that stores an encrypted secret."""
    found = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if column.name.endswith(ENCRYPTED_SUFFIX):
                found.append((table, column))
    return found


async def count_encrypted(ctx: AppContext) -> dict[str, int]:
    """How many non-null secrets each encrypted column holds."""
    counts: dict[str, int] = {}
    async with ctx.db.session() as session:
        for table, column in encrypted_columns():
            rows = await session.execute(select(column).where(column.is_not(None)))
            counts[f"{table.name}.{column.name}"] = len(rows.all())
    return counts


async def rotate_secrets(ctx: AppContext, actor: Actor, progress: Progress | None = None) -> RotationReport:
    """Re-encrypt every stored secret with the first configured key; counts what was rewritten."""
    totals = await count_encrypted(ctx)
    counts: dict[str, int] = {}
    for table, column in encrypted_columns():
        label = f"{table.name}.{column.name}"
        pk = next(iter(table.primary_key.columns))
        rewritten = 0
        seen = 0
        last: object = None
        while True:
            async with ctx.db.session() as session:
                query = select(pk, column).where(column.is_not(None)).order_by(pk).limit(BATCH)
                if last is not None:
                    query = query.where(pk > last)
                batch = (await session.execute(query)).all()
                for key, token in batch:
                    if not ctx.secrets.is_current(token):
                        new = ctx.secrets.rotate(token)
                        await session.execute(update(table).where(pk == key).values({column.name: new}))
                        rewritten += 1
            if not batch:
                break
            seen += len(batch)
            last = batch[-1][0]
            if progress is not None:
                progress(label, seen, totals.get(label, seen))
        counts[label] = rewritten
        if progress is not None:
            progress(label, totals.get(label, seen), totals.get(label, seen))
    async with ctx.db.session() as session:
        await record(session, actor, "keys.rotate", None, None, {"rewritten": counts})
    return RotationReport(counts=counts)
