"""The platform driver registry: type name -> driver class.

Built-in drivers register themselves when their package is imported; the registry imports them
lazily on first use, so importing the registry stays cheap and a broken optional driver cannot break
the others. Third-party drivers can register through the ``vpsbridge.platforms`` entry-point group
(``name = "package.module:DriverClass"``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

import httpx2
import structlog

from vpsbridge.http.record import Recorder
from vpsbridge.platforms.base import Platform, missing_capability_methods

log = structlog.stdlib.get_logger("vpsbridge.platforms")

#: Modules whose import registers a built-in driver.
BUILTIN_DRIVER_MODULES: tuple[str, ...] = (
    "vpsbridge.platforms.dummy",
    "vpsbridge.platforms.virtfusion",
    "vpsbridge.platforms.proxmox",
)

_drivers: dict[str, type[Platform]] = {}
_loaded = False


class UnknownDriver(LookupError):
    """No driver is registered under that type name."""


def register_driver(type_name: str, cls: type[Platform]) -> None:
    """Register ``cls`` as the driver for platforms of ``type_name``.

    Refuses a class whose ``SUPPORTS`` claims a capability it does not implement, so the mistake is
    found at start-up instead of by a client pressing a button.
    """
    if not type_name or not type_name.replace("_", "").isalnum() or type_name != type_name.lower():
        raise ValueError(f"driver type name must be lower-case letters, digits and '_': {type_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Platform)):
        raise TypeError(f"{cls!r} is not a Platform subclass")
    missing = missing_capability_methods(cls)
    if missing:
        raise TypeError(
            f"driver {type_name!r} declares capabilities it does not implement: {', '.join(missing)}"
        )
    existing = _drivers.get(type_name)
    if existing is not None and existing is not cls:
        raise ValueError(f"driver type {type_name!r} is already registered by {existing.__qualname__}")
    cls.type_name = type_name
    _drivers[type_name] = cls


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_DRIVER_MODULES:
        importlib.import_module(module)
    for entry in entry_points(group="vpsbridge.platforms"):
        try:
            register_driver(entry.name, entry.load())
        except Exception as exc:  # one broken plug-in must not hide the other drivers
            log.warning("platform_driver_not_loaded", driver=entry.name, error=f"{type(exc).__name__}: {exc}")


def driver_types() -> list[str]:
    """Registered platform type names, sorted."""
    _load_builtin()
    return sorted(_drivers)


#: Alias used by the catalog services.
known_types = driver_types


def driver_class(type_name: str) -> type[Platform]:
    _load_builtin()
    try:
        return _drivers[type_name]
    except KeyError:
        known = ", ".join(sorted(_drivers)) or "(none)"
        raise UnknownDriver(f"unknown platform type {type_name!r}; known types: {known}") from None


def create_driver(
    type_name: str,
    *,
    url: str,
    credentials: Mapping[str, Any],
    verify_tls: bool = True,
    ca_bundle: str | None = None,
    recorder: Recorder | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Platform:
    """Build a driver for one configured platform (cheap: connections open on first use)."""
    cls = driver_class(type_name)
    return cls(
        url=url,
        credentials=credentials,
        verify_tls=verify_tls,
        ca_bundle=ca_bundle,
        recorder=recorder,
        transport=transport,
        settings=settings,
    )
