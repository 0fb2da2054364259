"""Which disk sizes a billing upgrade page may offer a service: disks are never shrunk.

Billing shows every choice of a configurable option on its upgrade page, including sizes smaller
than the disk the server already has. A package change to such a size is refused (the disk cannot
shrink), so the page must not let the client pick it and pay first. Billing sends the service's
configurable options with their choices; this module answers, per disk option, which choices are
allowed and which are disabled, plus a warning to show next to them.

The current sizes come from what the service was sold (its product's settings and its stored
options), the same source a package change compares against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vpsbridge.core.options import (
    OptionError,
    ResolvedResources,
    disk_choice_allowed,
    match_option,
    parse_gb,
    resolve_resources,
)
from vpsbridge.services.errors import Invalid
from vpsbridge.services.provisioning.records import ServiceRef, find_service
from vpsbridge.store.models import Product

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

#: The disk resources an upgrade page restricts, with the name used in messages.
DISKS: dict[str, str] = {"disk_gb": "System Disk", "additional_disk_gb": "Additional Disk"}


async def current_resources(ctx: AppContext, ref: ServiceRef) -> tuple[int, ResolvedResources, Product]:
    """The service's id, what it was sold (product settings + its options) and its product."""
    async with ctx.db.session() as session:
        service = await find_service(session, ref)
        product = await session.get(Product, service.product_id) if service.product_id else None
        if product is None:
            raise Invalid(f"service {service.id} has no product")
        settings = dict(product.settings or {})
        try:
            resources = resolve_resources(
                dict(product.plan or {}),
                dict(service.options or {}),
                option_names=settings.get("option_names") or {},
                ignored=settings.get("ignored_options") or [],
                strict=False,
            )
        except OptionError as exc:
            raise Invalid(str(exc), field="options") from None
        return service.id, resources, product


def _choice_gb(label: Any) -> int | None:
    try:
        return parse_gb(label, what="choice")
    except OptionError:
        return None


def _warning(resource: str, current_gb: int) -> str:
    name = DISKS[resource]
    text = f"{name} is {current_gb} GB now; disks are never shrunk, so smaller sizes cannot be chosen."
    if resource == "additional_disk_gb":
        text += " Removing the additional disk destroys its data and needs a request to support."
    return text


async def upgrade_disk_choices(
    ctx: AppContext, ref: ServiceRef, options: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Per disk option, the choice ids an upgrade page may offer and those it must disable.

    ``options`` is billing's list ``[{"id", "name", "choices": [{"id", "label"}]}]``; option names
    are matched like at ordering (plain-English names, legacy prefixes, the product's
    ``option_names``). A choice whose label is not a size is left allowed: the package change still
    refuses a shrink, this page only saves the client from paying for one.
    """
    service_id, current, product = await current_resources(ctx, ref)
    extra_names = (product.settings or {}).get("option_names") or {}
    sizes = {"disk_gb": current.disk_gb, "additional_disk_gb": current.additional_disk_gb}
    answer: list[dict[str, Any]] = []
    for option in options:
        found = match_option(str(option.get("name") or ""), extra_names)
        if found is None or found[0] not in DISKS:
            continue
        resource = found[0]
        allowed: list[Any] = []
        disabled: list[Any] = []
        for choice in option.get("choices") or []:
            if not isinstance(choice, Mapping):
                continue
            gb = _choice_gb(choice.get("label"))
            (allowed if gb is None or disk_choice_allowed(sizes[resource], gb) else disabled).append(
                choice.get("id")
            )
        answer.append(
            {
                "id": option.get("id"),
                "name": str(option.get("name")),
                "resource": resource,
                "current_gb": sizes[resource],
                "allowed": allowed,
                "disabled": disabled,
                "warning": _warning(resource, sizes[resource]) if disabled else "",
            }
        )
    return {
        "service_id": service_id,
        "disks": {DISKS[r]: gb for r, gb in sizes.items()},
        "options": answer,
    }


__all__ = ["DISKS", "current_resources", "upgrade_disk_choices"]
