"""Platform flavours: the few lifecycle decisions that differ per platform type.

The lifecycle services and the workflows are platform-neutral; what genuinely differs is kept here,
one :class:`Flavour` per platform type (looked up by :func:`flavour_for`, falling back to the generic
one):

* how a product plus the client's configurable options becomes a :class:`ServerSpec` (and which
  option names are known: an unknown option is an error, never silently ignored);
* who chooses the root password (we do for most platforms; VirtFusion generates it and returns it
  once in the build answer);
* how long IPv6 may take to show up after a build;
* whether a server whose create timed out can be found again (so an unknown outcome can be resolved
  without guessing).

Other platforms (Proxmox) register their own flavour with :func:`register_flavour`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from vpsbridge.platforms.base import Platform as Driver
from vpsbridge.platforms.models import Capability, ServerRef, ServerSpec, TaskHandle
from vpsbridge.platforms.self_service import self_service_level
from vpsbridge.services.errors import Invalid
from vpsbridge.services.provisioning.credentials import generate_password
from vpsbridge.services.provisioning.drivers import PlatformConfig

if TYPE_CHECKING:
    from vpsbridge.services.audit import Actor
    from vpsbridge.services.context import AppContext
    from vpsbridge.services.provisioning.records import ServiceRef
    from vpsbridge.services.provisioning.schemas import (
        ActionOut,
        ChangePackageRequest,
        CredentialsOut,
        ServiceCreate,
        ServiceOut,
    )


@dataclass(frozen=True)
class ProductView:
    """The product settings a flavour reads (a detached copy of the row)."""

    id: int
    name: str
    platform_id: int
    placement: dict[str, Any]
    plan: dict[str, Any]
    settings: dict[str, Any]


@dataclass(frozen=True)
class SpecRequest:
    """What the caller asked for, besides the product."""

    client_id: str
    options: dict[str, Any] = field(default_factory=dict)
    hostname: str = ""
    name: str | None = None
    os_template: str | None = None
    ssh_keys: tuple[str, ...] = ()
    client_name: str = ""
    client_email: str = ""


@dataclass(frozen=True)
class BuildOutcome:
    task: TaskHandle
    username: str
    #: The root password when known now (chosen by us, or returned by the platform).
    password: str | None


def option_value(raw: Any) -> str:
    """The value part of a billing ``value|Label`` string (``"4|4 GB"`` -> ``"4"``)."""
    return str(raw).strip().split("|", 1)[0].strip()


def option_name(raw: str) -> str:
    """The name part of a billing option name (``"RAM|Memory"`` -> ``"RAM"``)."""
    return raw.split("|", 1)[0].strip()


def _int_option(key: str, raw: Any) -> int:
    text = option_value(raw)
    try:
        return int(float(text)) if "." in text else int(text)
    except ValueError:
        raise Invalid(f"option {key!r} must be a number, got {raw!r}", field=f"options.{key}") from None


def _ignored(product: ProductView) -> set[str]:
    return {option_name(str(n)).casefold() for n in product.settings.get("ignored_options") or []}


def _unknown_error(unknown: Sequence[str], known: Sequence[str]) -> Invalid:
    return Invalid(
        f"unknown product option(s): {', '.join(sorted(unknown))}. Known options: {', '.join(known)}. "
        "Rename the configurable option, map it in the product's option_names, or list it in the "
        "product's ignored_options.",
        field="options",
        details={"unknown_options": sorted(unknown)},
    )


#: ServerSpec field -> accepted option names (the first is the documented one; plain names first).
GENERIC_OPTION_NAMES: dict[str, tuple[str, ...]] = {
    "cpu_cores": ("CPU Cores", "CPU", "Cores"),
    "memory_mb": ("RAM", "Memory"),
    "disk_gb": ("System Disk", "Disk", "Storage", "Disk Space"),
    "traffic_gb": ("Bandwidth", "Traffic"),
    "bandwidth_mbps": ("Network Bandwidth", "Network Speed", "Port Speed"),
    "ipv4": ("IPv4 Addresses", "IPv4"),
    "ipv6": ("IPv6 Addresses", "IPv6"),
    "os_template": ("Operating System",),
}
_PLAN_FIELDS = ("cpu_cores", "memory_mb", "disk_gb", "traffic_gb", "bandwidth_mbps", "ipv4", "ipv6")


class Flavour:
    """The generic flavour: plan defaults + plain-English option names, a password we choose."""

    type_name: ClassVar[str] = "*"
    #: What the flavour does through its own workflows on top of the driver's capabilities (Proxmox
    #: reinstalls by cloning a template, which its driver alone does not offer as ``build``).
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: How long the sync after a build waits for IPv6 addresses that are expected but not yet there.
    ipv6_grace_seconds: ClassVar[float] = 0.0

    # --- spec ------------------------------------------------------------------------------------

    def option_names(self, product: ProductView, platform: PlatformConfig) -> dict[str, tuple[str, ...]]:
        names = dict(GENERIC_OPTION_NAMES)
        for key, value in {
            **platform.settings.get("option_names", {}),
            **product.settings.get("option_names", {}),
        }.items():
            if key in names:
                names[key] = (str(value), *names[key])
        return names

    def server_spec(self, product: ProductView, platform: PlatformConfig, request: SpecRequest) -> ServerSpec:
        """Plan defaults, overridden by matching configurable options; unknown options are refused."""
        values: dict[str, Any] = {k: product.plan[k] for k in _PLAN_FIELDS if product.plan.get(k) is not None}
        extra = {k: v for k, v in product.plan.items() if k not in _PLAN_FIELDS}
        os_template = request.os_template
        names = self.option_names(product, platform)
        lookup = {n.casefold(): f for f, ns in names.items() for n in ns}
        ignored = _ignored(product)
        unknown: list[str] = []
        seen: set[str] = set()
        for key, raw in request.options.items():
            bare = option_name(key).casefold()
            target = lookup.get(bare)
            if target is None:
                if bare not in ignored:
                    unknown.append(key)
                continue
            if raw is None or option_value(raw) == "":
                continue
            # The plain (first listed) name wins over a legacy alias when both are given.
            plain = names[target][0].casefold() == bare
            if target in seen and not plain:
                continue
            seen.add(target)
            if target == "os_template":
                os_template = os_template or option_value(raw)
                continue
            number = _int_option(key, raw)
            if number < 0:
                raise Invalid(f"option {key!r} cannot be negative", field=f"options.{key}")
            if target == "memory_mb" and 0 < number < 1024:
                number *= 1024  # below 1024 means GB, as billing products are usually written
            if target == "traffic_gb" and number == 0:
                values[target] = None  # 0 = unmetered
                continue
            values[target] = number
        if unknown:
            raise _unknown_error(unknown, [ns[0] for ns in names.values()])
        missing = [k for k in ("cpu_cores", "memory_mb", "disk_gb") if values.get(k) is None]
        if missing:
            raise Invalid(
                f"product {product.name!r} does not set {', '.join(missing)} in its plan and no option gave "
                "them; set the plan defaults in the product settings",
                field="product",
            )
        return self._spec(values, product, request, os_template, extra)

    def _spec(
        self,
        values: Mapping[str, Any],
        product: ProductView,
        request: SpecRequest,
        os_template: str | None,
        extra: Mapping[str, Any],
    ) -> ServerSpec:
        try:
            return ServerSpec(
                hostname=request.hostname,
                name=request.name,
                placement=dict(product.placement),
                os_template=os_template,
                ssh_keys=tuple(request.ssh_keys),
                owner=request.client_id,
                extra={**extra, "user": self._panel_user(product, request)},
                **values,
            )
        except ValueError as exc:
            raise Invalid(f"the product and options give an invalid server: {exc}", field="options") from None

    @staticmethod
    def _panel_user(product: ProductView, request: SpecRequest) -> dict[str, Any]:
        """The client as the platform's panel user: name, e-mail and the product's self-service mode."""
        user: dict[str, Any] = {"name": request.client_name, "email": request.client_email}
        level = self_service_level(product.settings)
        if level:
            user["self_service"] = level
        return user

    # --- creation and build ----------------------------------------------------------------------

    async def create(self, driver: Driver, spec: ServerSpec) -> TaskHandle:
        """Ask the platform to create the server without installing it (the build runs in the job)."""
        return await driver.create_server(spec.model_copy(update={"os_template": None}))

    async def initial_addresses(self, driver: Driver, handle: TaskHandle) -> tuple[list[str], list[str]]:
        """Addresses the platform reserved for a just-created server (best effort, never fatal)."""
        if handle.server is None:
            return [], []
        try:
            info = await driver.server_info(handle.server)
        except Exception:
            return [], []
        return list(info.ipv4), list(info.ipv6)

    def chosen_password(self) -> str | None:
        """The password to ask for on a password reset (``None``: the platform generates one)."""
        return generate_password()

    def username_for(self, os_template: str) -> str:
        return "Administrator" if "windows" in os_template.lower() else "root"

    async def build(
        self,
        driver: Driver,
        server: ServerRef,
        *,
        os_template: str,
        ssh_keys: Sequence[str],
        hostname: str | None,
        name: str | None,
    ) -> BuildOutcome:
        password = generate_password()
        task = await driver.build(
            server, os_template, ssh_keys=ssh_keys, hostname=hostname, password=password
        )
        return BuildOutcome(task=task, username=self.username_for(os_template), password=password)

    async def find_created(
        self, driver: Driver, *, owner: str, hostname: str, known: set[str]
    ) -> list[ServerRef] | None:
        """Servers of ``owner`` named ``hostname`` that the platform has and we have not recorded.

        ``None`` means this platform cannot be asked (the outcome stays unknown for an operator);
        an empty list is a confirmed "not created".
        """
        return None

    def expects_ipv6(self, spec_ipv6: int) -> bool:
        return spec_ipv6 > 0

    # --- lifecycle delegation --------------------------------------------------------------------
    #
    # A platform whose lifecycle runs entirely in its own workflows (Proxmox: a deploy is a dozen
    # upstream steps, so nothing may call the platform while billing waits) takes over the public
    # lifecycle functions here. Each answers ``None`` = "not delegated: use the generic path" (one
    # platform call, then a ``service.*`` job), so the generic flavour needs no override at all and
    # the callers (billing bridge, JSON API, CLI, portal) never need to know the platform type.

    async def create_service(self, ctx: AppContext, req: ServiceCreate, actor: Actor) -> ServiceOut | None:
        return None

    async def terminate_service(
        self, ctx: AppContext, ref: ServiceRef, actor: Actor, *, delay_seconds: float | None
    ) -> ActionOut | None:
        return None

    async def change_package(
        self, ctx: AppContext, ref: ServiceRef, req: ChangePackageRequest, actor: Actor
    ) -> ActionOut | None:
        return None

    async def service_action(
        self, ctx: AppContext, ref: ServiceRef, operation: str, actor: Actor, **extra: Any
    ) -> ActionOut | None:
        """``suspend``, ``unsuspend``, ``power`` (``action=...``) or ``rebuild`` (``os_template``,
        ``ssh_keys``) queued as the platform's own workflow."""
        return None

    async def reset_password(self, ctx: AppContext, ref: ServiceRef, actor: Actor) -> CredentialsOut | None:
        return None


class DummyFlavour(Flavour):
    """The in-memory platform: like the generic flavour, and it can list a client's servers."""

    type_name = "dummy"

    async def find_created(
        self, driver: Driver, *, owner: str, hostname: str, known: set[str]
    ) -> list[ServerRef] | None:
        cloud = getattr(driver, "cloud", None)
        if cloud is None:
            return None
        cloud.enter("list_servers")
        return [
            s.ref
            for s in cloud.servers.values()
            if s.owner == owner and s.hostname == hostname and str(s.id) not in known
        ]


class VirtFusionFlavour(Flavour):
    """VirtFusion: the package sizes the server, options map onto API fields, the panel picks the
    root password and returns it in the build answer, and IPv6 shows up seconds after the build."""

    type_name = "virtfusion"
    ipv6_grace_seconds = 60.0

    def server_spec(self, product: ProductView, platform: PlatformConfig, request: SpecRequest) -> ServerSpec:
        from vpsbridge.platforms.virtfusion.options import OptionError, map_options, resolve_names

        overrides = {**platform.settings.get("option_names", {}), **product.settings.get("option_names", {})}
        ignored = _ignored(product)
        options = {k: v for k, v in request.options.items() if option_name(k).casefold() not in ignored}
        try:
            mapped = map_options(options, overrides)
            known = [n for n in resolve_names(overrides).values() if n]
        except OptionError as exc:
            raise Invalid(str(exc), field="options") from None
        if mapped.unknown:
            raise _unknown_error(list(mapped.unknown), known)
        fields = mapped.fields
        plan = product.plan
        package = plan.get("package_id") or platform.settings.get("package_id")
        if not package and "packageId" not in fields:
            raise Invalid(
                f"product {product.name!r} has no VirtFusion package_id in its plan", field="product"
            )
        values = {
            "cpu_cores": int(fields.get("cpuCores") or plan.get("cpu_cores") or 1),
            "memory_mb": int(fields.get("memory") or plan.get("memory_mb") or 1024),
            "disk_gb": int(fields.get("storage") or plan.get("disk_gb") or 1),
            "traffic_gb": fields.get("traffic", plan.get("traffic_gb")),
            "ipv4": max(1, int(fields.get("ipv4") or plan.get("default_ipv4") or plan.get("ipv4") or 1)),
        }
        extra = {k: v for k, v in plan.items() if k not in _PLAN_FIELDS}
        extra["options"] = options
        if values["ipv4"] and "ipv4" not in fields:
            extra["ipv4"] = values["ipv4"]
        if package:
            extra["package_id"] = package
        return self._spec(values, product, request, request.os_template, extra)

    def chosen_password(self) -> str | None:
        return None  # the panel generates passwords and refuses chosen ones

    async def initial_addresses(self, driver: Driver, handle: TaskHandle) -> tuple[list[str], list[str]]:
        from vpsbridge.platforms.virtfusion.driver import addresses

        created = handle.result.get("server_object")
        if isinstance(created, dict):
            return addresses(created)
        return await super().initial_addresses(driver, handle)

    async def build(
        self,
        driver: Driver,
        server: ServerRef,
        *,
        os_template: str,
        ssh_keys: Sequence[str],
        hostname: str | None,
        name: str | None,
    ) -> BuildOutcome:
        build: Any = driver.build  # the VirtFusion driver also takes the panel label (``name``)
        task: TaskHandle = await build(server, os_template, ssh_keys=ssh_keys, hostname=hostname, name=name)
        password = task.result.get("root_password")
        # The handle is persisted in job state; the password must not be.
        clean = task.model_copy(
            update={"result": {k: v for k, v in task.result.items() if k != "root_password"}}
        )
        return BuildOutcome(task=clean, username="root", password=str(password) if password else None)

    def expects_ipv6(self, spec_ipv6: int) -> bool:
        # Packages decide IPv6 on VirtFusion; wait the grace period only if the server gets a subnet
        # at all is unknowable up front, so the wait is bounded and never fatal.
        return True


_FLAVOURS: dict[str, Flavour] = {}


def register_flavour(flavour: Flavour) -> None:
    _FLAVOURS[flavour.type_name] = flavour


def flavour_for(platform_type: str) -> Flavour:
    return _FLAVOURS.get(platform_type) or _FLAVOURS["*"]


def platform_capabilities(platform_type: str | None) -> frozenset[str]:
    """What services on this platform type can do: the driver's flags plus what the flavour's own
    workflows add (both the portal and the operator console show only these actions)."""
    from vpsbridge.platforms import registry

    if not platform_type:
        return frozenset()
    try:
        supports = registry.driver_class(platform_type).SUPPORTS
    except registry.UnknownDriver:
        return frozenset()
    return frozenset(str(c) for c in (*supports, *flavour_for(platform_type).capabilities))


for _flavour in (Flavour(), DummyFlavour(), VirtFusionFlavour()):
    register_flavour(_flavour)

__all__ = [
    "GENERIC_OPTION_NAMES",
    "BuildOutcome",
    "Flavour",
    "ProductView",
    "SpecRequest",
    "flavour_for",
    "platform_capabilities",
    "register_flavour",
]
