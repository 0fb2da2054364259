"""Service events: how workflows tell the outer ring (the billing bridge) what happened.

The billing bridge reports outcomes back to WHMCS (``UpdateClientProduct``, ``SendEmail``) but the
workflows must not import it (layer rule), so it registers callbacks here instead::

    from vpsbridge.services.provisioning.events import on_service_event

    async def report(ctx: AppContext, event: ServiceEvent) -> None: ...

    on_service_event("provisioned", report)

Event kinds (:data:`EVENT_KINDS`): ``provisioned`` (built, credentials stored; fetch the password
with :func:`vpsbridge.services.provisioning.service_credentials`; ``details`` has ipv4, ipv6,
hostname, username), ``build_failed`` (``details["error"]``), ``create_unknown`` (a platform that can
list servers found none or several), ``package_changed`` (``details["warnings"]``),
``addresses_changed`` (e.g. IPv6 appeared after the build), ``password_reset`` (a new login is
stored; raised once, right after the reset, outside a job), ``terminated``, ``terminate_failed``
(``details["error"]``). ``"*"`` receives every kind. Other actions answered synchronously (suspend,
unsuspend, power, rename) raise no event: their caller already has the answer.

Delivery is *at least once*: a workflow step calls :func:`deliver`, which runs every listener that
has not yet succeeded for this event (remembered in the job's state) and raises if one failed, so
the step is retried later and only the failed listeners run again. Listeners must therefore be
idempotent (sending the same e-mail twice is the thing to guard against: key it on
``event.event_id``). Outside a job (:func:`emit`), failures are logged and swallowed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vpsbridge.logs import get_logger

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

EVENT_KINDS: tuple[str, ...] = (
    "provisioned",
    "build_failed",
    "create_unknown",
    "package_changed",
    "addresses_changed",
    "password_reset",
    "terminated",
    "terminate_failed",
)

log = get_logger(__name__)


@dataclass(frozen=True)
class ServiceEvent:
    """Something that happened to a billing service; ``details`` never holds a password."""

    kind: str
    #: Stable per occurrence (e.g. ``provisioned:job:12``): the key listeners de-duplicate on.
    event_id: str
    service_id: int
    billing_service_id: str | None
    client_id: str
    server_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


Listener = Callable[["AppContext", ServiceEvent], Awaitable[None]]

_LISTENERS: dict[str, list[Listener]] = {}


def on_service_event(kind: str, fn: Listener) -> Listener:
    """Register ``fn`` for events of ``kind`` (or ``"*"``); registering the same function twice is a no-op.

    Returns ``fn`` so it can be used as a plain call or wrapped by a decorator.
    """
    if kind != "*" and kind not in EVENT_KINDS:
        raise ValueError(f"unknown service event {kind!r}; known: {', '.join(EVENT_KINDS)} or '*'")
    bucket = _LISTENERS.setdefault(kind, [])
    if fn not in bucket:
        bucket.append(fn)
    return fn


def remove_service_listener(kind: str, fn: Listener) -> None:
    """Unregister ``fn`` (tests and plug-ins that unload)."""
    bucket = _LISTENERS.get(kind, [])
    if fn in bucket:
        bucket.remove(fn)


def listeners_for(kind: str) -> list[Listener]:
    return [*_LISTENERS.get(kind, []), *_LISTENERS.get("*", [])]


def listener_name(fn: Listener) -> str:
    module = getattr(fn, "__module__", "?")
    return f"{module}.{getattr(fn, '__qualname__', repr(fn))}"


class DeliveryFailed(Exception):
    """One or more listeners raised; the step delivering the event should be retried."""


async def deliver(ctx: AppContext, event: ServiceEvent, done: MutableMapping[str, Any]) -> None:
    """Run the listeners of ``event`` not yet recorded in ``done`` (a job-state dict); raise if any failed.

    ``done`` maps ``event_id`` to the list of listener names that already succeeded, so a retried
    step does not repeat them.
    """
    finished: list[str] = list(done.get(event.event_id, []))
    failures: list[str] = []
    for fn in listeners_for(event.kind):
        name = listener_name(fn)
        if name in finished:
            continue
        try:
            await fn(ctx, event)
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        finished.append(name)
        done[event.event_id] = list(finished)
    done[event.event_id] = list(finished)
    if failures:
        raise DeliveryFailed(f"{event.kind} listener(s) failed: " + "; ".join(failures))


async def emit(ctx: AppContext, event: ServiceEvent) -> None:
    """Deliver once, outside a job: failures are logged, never raised (the action itself succeeded)."""
    try:
        await deliver(ctx, event, {})
    except DeliveryFailed as exc:
        log.warning("service event listener failed", kind=event.kind, error=str(exc))
