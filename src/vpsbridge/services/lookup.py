"""Finding catalog objects by the reference an operator typed: an id or a name.

Operators name things (``vpsbridge platform show proxmox-fra``) while the API and foreign keys use
ids, so every service accepts either. A string made only of digits is tried as an id first; the
catalog refuses all-digit names for that reason (see :func:`check_name`).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vpsbridge.services.errors import Conflict, Invalid, NotFound
from vpsbridge.store.models import Base

M = TypeVar("M", bound=Base)

Ref = int | str


def check_name(name: str, *, field: str = "name") -> None:
    """Refuse names that would read as ids."""
    if name.isdigit():
        raise Invalid(f"{field} must not be only digits (it would read as an id): {name!r}", field=field)


async def find_by_ref(session: AsyncSession, model: type[M], ref: Ref, *, label: str) -> M:
    """The row of ``model`` whose id or ``name`` is ``ref``; :class:`NotFound` names what was sought."""
    text = str(ref).strip()
    if isinstance(ref, int) or text.isdigit():
        row = await session.get(model, int(text))
        if row is not None:
            return row
    column: Any = model.name  # type: ignore[attr-defined]
    rows = (await session.execute(select(model).where(column == text).limit(2))).scalars().all()
    if not rows:
        raise NotFound(f"no {label} with id or name {text!r}")
    if len(rows) > 1:
        raise Conflict(f"more than one {label} is named {text!r}; use its id")
    return rows[0]


def _with_article(label: str) -> str:
    return f"{'an' if label[:1].lower() in 'aeiou' else 'a'} {label}"


async def ensure_unique_name(
    session: AsyncSession, model: type[M], name: str, *, label: str, exclude_id: int | None = None
) -> None:
    """Refuse a second ``model`` named ``name`` (another row than ``exclude_id``) with a readable Conflict."""
    name_column: Any = model.name  # type: ignore[attr-defined]
    id_column: Any = model.id  # type: ignore[attr-defined]
    query = select(id_column).where(name_column == name)
    if exclude_id is not None:
        query = query.where(id_column != exclude_id)
    if (await session.execute(query)).first() is not None:
        raise Conflict(f"{_with_article(label)} named {name!r} already exists")


async def flush_or_conflict(session: AsyncSession, message: str) -> None:
    """Flush, turning a constraint violation into :class:`Conflict`.

    The services check uniqueness and references before writing, which gives the best messages;
    this catches the race the checks cannot see (two operators creating the same name at the same
    moment on PostgreSQL), where the database constraint is the final judge.
    """
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(message) from None
