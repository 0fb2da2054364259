"""The tri-state result of asking an upstream something: a value, confirmed missing, or unknown.

Code that decides something destructive (set stock to 0, release an IP, delete a DNS record) matches
on these three cases explicitly, so "we could not ask" can never be mistaken for "it is gone"::

    match await tri_state(client.server(42)):
        case Found(server): ...
        case Missing(reason): ...   # safe to clean up
        case Unknown(reason): ...   # keep everything as it is, retry later
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Generic, TypeVar

from vpsbridge.http.errors import UpstreamError, UpstreamNotFound

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Found(Generic[T]):
    value: T


@dataclass(frozen=True, slots=True)
class Missing:
    reason: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """Anything that is not a definite answer, including 4xx refusals and auth failures."""

    reason: str
    error: UpstreamError | None = None


Outcome = Found[T] | Missing | Unknown


async def tri_state(awaitable: Awaitable[T]) -> Found[T] | Missing | Unknown:
    """Await an upstream call and fold its result and :class:`UpstreamError` into the tri-state.

    Only upstream errors are folded; programming errors (``TypeError`` ...) still raise, because
    hiding them behind ``Unknown`` would make a bug look like an outage forever.
    """
    try:
        value = await awaitable
    except UpstreamNotFound as exc:
        return Missing(str(exc))
    except UpstreamError as exc:
        return Unknown(str(exc), exc)
    return Found(value)
