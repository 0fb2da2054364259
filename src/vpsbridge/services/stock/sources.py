"""Stock sources: per platform type, how a product's capacity inputs are fetched and computed.

A source lives for one recalculation of one platform: it holds the driver and remembers every fetch
it started, so each distinct package and group is asked for once per recalculation however many
products share it, concurrently. Underneath, :meth:`Cache.get_or_fetch` shares answers across
recalculations and processes (package 10 min, group resources 2 min, confirmed 404s 1 min).

Tri-state: a value, *confirmed missing* (a 404, cached briefly as ``None``) or *unknown* (timeout, 5xx,
malformed body, refused credentials: raised, never cached) - and only the first two may ever change
what the billing side shows.

Proxmox registers its own source with :func:`register_stock_source` and returns the same
:class:`~.outcome.StockOutcome`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import structlog

from vpsbridge.core.stock import Group, MalformedInput, product_quantity
from vpsbridge.core.stock import virtfusion as vf_shapes
from vpsbridge.http.errors import UpstreamError, UpstreamNotFound
from vpsbridge.platforms import registry
from vpsbridge.platforms.base import Platform
from vpsbridge.services.stock.outcome import ProductInputs, StockOutcome
from vpsbridge.services.upstream_log import EXTRAS_RECORDER

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

log = structlog.stdlib.get_logger("vpsbridge.stock")

#: ``ctx.extras`` key: ``{platform url: httpx2 transport}`` routing a platform to an in-process
#: simulator (tests, benchmarks). Absent in production, where drivers talk HTTP.
EXTRAS_TRANSPORTS = "platform_transports"

PACKAGE_TTL = 600.0
GROUP_TTL = 120.0
MISSING_TTL = 60.0


class UnknownInput(Exception):
    """An input could not be read (transient); the product's stock must be left alone."""


@dataclass(frozen=True, slots=True)
class PlatformInfo:
    id: int
    name: str
    type: str
    url: str
    credentials: dict[str, Any]
    verify_tls: bool
    ca_bundle: str | None
    settings: dict[str, Any]
    enabled: bool = True


def open_driver(ctx: AppContext, platform: PlatformInfo) -> Platform:
    transports = ctx.extras.get(EXTRAS_TRANSPORTS) or {}
    return registry.create_driver(
        platform.type,
        url=platform.url,
        credentials=platform.credentials,
        verify_tls=platform.verify_tls,
        ca_bundle=platform.ca_bundle,
        recorder=ctx.extras.get(EXTRAS_RECORDER),
        transport=transports.get(platform.url),
        settings=platform.settings,
    )


def positive_int(value: Any) -> int | None:
    """``3``, ``"3"`` and WHMCS's ``"3|London"`` are 3; anything else (blank, 0, text) is ``None``."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).split("|", 1)[0].strip()
    try:
        number = int(float(text)) if "." in text else int(text)
    except ValueError:
        return None
    return number if number > 0 else None


class StockSource(ABC):
    """Base of the per-platform stock sources (one instance per platform and recalculation)."""

    cache_prefix: ClassVar[str] = "stock"

    def __init__(self, ctx: AppContext, platform: PlatformInfo, driver: Platform) -> None:
        self.ctx = ctx
        self.platform = platform
        self.driver = driver
        self._started: dict[str, asyncio.Task[Any]] = {}

    def key(self, kind: str, ident: int | str) -> str:
        return f"{self.cache_prefix}:{self.platform.id}:{kind}:{ident}"

    async def shared(
        self, key: str, ttl: float, fetch: Callable[[], Awaitable[Any]], *, negative_ttl: float | None = None
    ) -> Any:
        """``fetch`` through the cache, started at most once per recalculation (also when it fails)."""
        task = self._started.get(key)
        if task is None:
            task = asyncio.ensure_future(
                self.ctx.cache.get_or_fetch(key, ttl, fetch, negative_ttl=negative_ttl)
            )
            self._started[key] = task
        return await asyncio.shield(task)

    @abstractmethod
    async def quantity(self, product: ProductInputs) -> StockOutcome:
        """The product's quantity, or an outcome saying why it is missing or unknown."""

    async def forget(self, product: ProductInputs) -> None:  # noqa: B027 - optional hook
        """Drop cached capacity of the product's placement (a server was just created or deleted)."""


_SOURCES: dict[str, type[StockSource]] = {}


def register_stock_source(type_name: str, cls: type[StockSource]) -> None:
    _SOURCES[type_name] = cls


def source_for(type_name: str) -> type[StockSource] | None:
    return _SOURCES.get(type_name)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set):
        return list(value)
    return [value]


class VirtFusionStock(StockSource):
    """Stock of VirtFusion products: package footprint x every hypervisor group the product may use.

    Product inputs: ``plan.package_id`` (else the platform's ``package_id``), the default group
    ``placement.hypervisor_group_id`` (else the platform's) plus every value of the Location option
    (``placement.location_group_ids``), ``plan.default_ipv4`` (at least 1) and the product's buffer.
    The same math as :func:`vpsbridge.core.stock.compute_quantity`, with each group mapped once.
    """

    def __init__(self, ctx: AppContext, platform: PlatformInfo, driver: Platform) -> None:
        super().__init__(ctx, platform, driver)
        self._groups: dict[int, Group | MalformedInput] = {}

    def package_id(self, product: ProductInputs) -> int | None:
        return positive_int(product.plan.get("package_id")) or positive_int(
            self.platform.settings.get("package_id")
        )

    def group_ids(self, product: ProductInputs) -> list[int]:
        place = product.placement
        default = place.get("hypervisor_group_id") or self.platform.settings.get("hypervisor_group_id")
        raw = [
            default,
            *_as_list(place.get("hypervisor_group_ids")),
            *_as_list(place.get("location_group_ids")),
        ]
        ids: list[int] = []
        for value in raw:
            number = positive_int(value)
            if number is not None and number not in ids:
                ids.append(number)
        return ids

    @staticmethod
    def ipv4_per_server(product: ProductInputs) -> int:
        plan = product.plan
        return positive_int(plan.get("default_ipv4", plan.get("ipv4"))) or 1

    async def _fetch(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await call()
        except UpstreamNotFound:
            return None
        except UpstreamError as exc:
            raise UnknownInput(f"{what}: {exc}") from exc
        except Exception as exc:  # a bug or a transport failure is still "could not ask"
            log.warning("stock_fetch_failed", what=what, error=f"{type(exc).__name__}: {exc}")
            raise UnknownInput(f"{what}: {type(exc).__name__}: {exc}") from exc

    async def package(self, package_id: int) -> Any:
        """The package's ``data`` object, ``None`` when confirmed gone; raises :class:`UnknownInput`."""
        driver: Any = self.driver

        async def fetch() -> Any:
            return await self._fetch(f"package {package_id}", lambda: driver.package(package_id))

        return await self.shared(
            self.key("package", package_id), PACKAGE_TTL, fetch, negative_ttl=MISSING_TTL
        )

    async def group(self, group_id: int) -> Any:
        """Every hypervisor entry of the group (all pages), ``None`` when the group was deleted."""
        driver: Any = self.driver

        async def fetch() -> Any:
            return await self._fetch(f"hypervisor group {group_id}", lambda: driver.group_resources(group_id))

        return await self.shared(self.key("group", group_id), GROUP_TTL, fetch, negative_ttl=MISSING_TTL)

    def _shaped(self, group_id: int, entries: Any) -> Group:
        """The group mapped onto the capacity types once per recalculation, however many products use it."""
        shaped = self._groups.get(group_id)
        if shaped is None:
            try:
                shaped = vf_shapes.group(entries, str(group_id))
            except MalformedInput as exc:
                shaped = exc
            self._groups[group_id] = shaped
        if isinstance(shaped, MalformedInput):
            raise shaped
        return shaped

    async def forget(self, product: ProductInputs) -> None:
        for group_id in self.group_ids(product):
            await self.ctx.cache.delete(self.key("group", group_id))
            self._started.pop(self.key("group", group_id), None)
            self._groups.pop(group_id, None)

    async def quantity(self, product: ProductInputs) -> StockOutcome:
        package_id = self.package_id(product)
        if package_id is None:
            return StockOutcome.unknown_because("the product has no VirtFusion package id (plan.package_id)")
        group_ids = self.group_ids(product)
        if not group_ids:
            return StockOutcome.unknown_because(
                "the product has no hypervisor group (placement.hypervisor_group_id)"
            )
        fetches = [self.package(package_id), *(self.group(g) for g in group_ids)]
        answers = await asyncio.gather(*fetches, return_exceptions=True)
        failures = [str(a) for a in answers if isinstance(a, BaseException)]
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, UnknownInput):
                raise answer
        package = answers[0]
        # A package confirmed gone or disabled decides the answer whatever the groups said.
        if package is None:
            return StockOutcome(
                status="missing",
                quantity=0,
                breakdown={"package_id": package_id, "notes": [f"package {package_id} no longer exists"]},
            )
        if isinstance(package, Mapping) and package.get("enabled") in (False, 0, "0"):
            return StockOutcome(
                status="disabled",
                quantity=0,
                breakdown={"package_id": package_id, "notes": [f"package {package_id} is disabled"]},
            )
        if failures:
            return StockOutcome.unknown_because(*failures)
        try:
            shaped = [self._shaped(g, entries) for g, entries in zip(group_ids, answers[1:], strict=True)]
            result = product_quantity(
                vf_shapes.footprint(package),
                shaped,
                ipv4_per_server=self.ipv4_per_server(product),
                buffer_pct=product.buffer_pct,
            )
        except MalformedInput as exc:
            return StockOutcome.unknown_because(f"malformed answer: {exc}")
        breakdown = dict(result.breakdown, package_id=package_id)
        return StockOutcome(status="ok", quantity=result.quantity, breakdown=breakdown)


register_stock_source("virtfusion", VirtFusionStock)
