"""Provisioning: the lifecycle of billing services and their servers (platform-neutral).

The stable API the billing bridge, the JSON API and the CLI call (all ``async``, ``ctx`` first)::

    create_service(ctx, data: ServiceCreate | Mapping, actor) -> ServiceOut
    get_service(ctx, ref) -> ServiceOut
    list_services(ctx, *, status=None, client_id=None, limit=100, offset=0) -> list[ServiceOut]
    suspend_service(ctx, ref, actor, *, reason=None) -> ActionOut
    unsuspend_service(ctx, ref, actor) -> ActionOut
    terminate_service(ctx, ref, actor, *, delay_seconds=None) -> ActionOut
    change_package(ctx, ref, data: ChangePackageRequest | Mapping, actor) -> ActionOut
    reset_password(ctx, ref, actor) -> CredentialsOut
    rename_service(ctx, ref, actor, *, hostname, name=None) -> ActionOut
    power_service(ctx, ref, action, actor) -> ActionOut
    rebuild_service(ctx, ref, actor, *, os_template, ssh_keys=()) -> ActionOut
    service_credentials(ctx, ref) -> CredentialsOut
    resolve_unknown_create(ctx, ref, actor, *, external_id: str | None) -> ServiceOut
    on_service_event(kind, fn)  # fn(ctx, ServiceEvent) -> Awaitable[None]

Each dispatches through the platform's :class:`~.flavours.Flavour`: Proxmox services run in the
``proxmox.*`` workflows (:mod:`.proxmox`), everything else through the generic create-then-deploy path.

``ref`` is a service id (``12`` / ``"12"``) or ``by_billing(<billing service id>)`` (``"billing:345"``).
"""

from vpsbridge.services.provisioning import proxmox as proxmox  # registers the Proxmox flavour
from vpsbridge.services.provisioning.events import (
    EVENT_KINDS,
    ServiceEvent,
    on_service_event,
    remove_service_listener,
)
from vpsbridge.services.provisioning.lifecycle import (
    change_package,
    create_service,
    get_service,
    list_services,
    power_service,
    rebuild_service,
    rename_service,
    reset_password,
    resolve_unknown_create,
    service_credentials,
    suspend_service,
    terminate_service,
    unsuspend_service,
)
from vpsbridge.services.provisioning.records import ServiceRef, by_billing
from vpsbridge.services.provisioning.schemas import (
    ActionOut,
    ChangePackageRequest,
    ClientInfo,
    CredentialsOut,
    ServerOut,
    ServiceCreate,
    ServiceOut,
)

__all__ = [
    "EVENT_KINDS",
    "ActionOut",
    "ChangePackageRequest",
    "ClientInfo",
    "CredentialsOut",
    "ServerOut",
    "ServiceCreate",
    "ServiceEvent",
    "ServiceOut",
    "ServiceRef",
    "by_billing",
    "change_package",
    "create_service",
    "get_service",
    "list_services",
    "on_service_event",
    "power_service",
    "rebuild_service",
    "remove_service_listener",
    "rename_service",
    "reset_password",
    "resolve_unknown_create",
    "service_credentials",
    "suspend_service",
    "terminate_service",
    "unsuspend_service",
]
