"""Driver registry and the Platform base contract."""

from __future__ import annotations

from typing import Any

import pytest

from vpsbridge.http import Missing, Unknown, tri_state
from vpsbridge.platforms import registry
from vpsbridge.platforms.base import (
    Capability,
    Check,
    ConnectionReport,
    NotSupported,
    Platform,
    ServerInfo,
    ServerLocked,
    ServerMissing,
    ServerRef,
    TaskHandle,
    missing_capability_methods,
)
from vpsbridge.platforms.dummy import DummyPlatform


class MinimalDriver(Platform):
    async def test_connection(self) -> ConnectionReport:
        return ConnectionReport.from_checks([Check(name="ping", ok=True)], "1")

    async def server_info(self, server: ServerRef, *, live: bool = False) -> ServerInfo:
        return ServerInfo(ref=server)

    async def task_status(self, task: TaskHandle) -> TaskHandle:
        return task


def test_dummy_is_registered_and_known_types_alias() -> None:
    assert "dummy" in registry.driver_types()
    assert registry.known_types() == registry.driver_types()
    assert registry.driver_class("dummy") is DummyPlatform


def test_create_driver_passes_configuration() -> None:
    driver = registry.create_driver(
        "dummy",
        url="dummy://registry-test",
        credentials={"token": "t"},
        verify_tls=False,
        ca_bundle="/etc/ssl/ca.pem",
        settings={"task_seconds": 0.01},
    )
    assert isinstance(driver, DummyPlatform)
    assert driver.type_name == "dummy"
    assert driver.credentials == {"token": "t"}
    assert driver.verify == "/etc/ssl/ca.pem"  # a CA bundle wins over verify_tls
    assert driver.supports(Capability.CONSOLE)
    assert driver.supports("backups")


def test_unknown_type_names_known_ones() -> None:
    with pytest.raises(registry.UnknownDriver, match=r"known types: .*dummy"):
        registry.create_driver("nope", url="x", credentials={})


def test_register_refuses_capabilities_without_implementation() -> None:
    class Liar(MinimalDriver):
        SUPPORTS = frozenset({"power", "console"})

    assert sorted(missing_capability_methods(Liar)) == ["console: console", "power: power"]
    with pytest.raises(TypeError, match="does not implement"):
        registry.register_driver("liar", Liar)
    assert "liar" not in registry.driver_types()

    class Typo(MinimalDriver):
        SUPPORTS = frozenset({"teleport"})

    with pytest.raises(TypeError, match="unknown capability 'teleport'"):
        registry.register_driver("typo", Typo)


def test_register_validates_name_and_duplicates() -> None:
    with pytest.raises(ValueError, match="lower-case"):
        registry.register_driver("Bad-Name", MinimalDriver)
    with pytest.raises(ValueError, match="already registered"):
        registry.register_driver("dummy", MinimalDriver)
    with pytest.raises(TypeError):
        registry.register_driver("notadriver", dict)  # type: ignore[arg-type]


def test_every_registered_driver_is_consistent() -> None:
    for name in registry.driver_types():
        assert missing_capability_methods(registry.driver_class(name)) == [], name


async def test_unsupported_operations_raise_not_supported() -> None:
    driver = MinimalDriver(url="x", credentials={})
    ref = ServerRef(external_id="1")
    with pytest.raises(NotSupported, match="does not support power"):
        await driver.power(ref, "start")
    with pytest.raises(NotSupported):
        await driver.console(ref)
    assert not driver.supports(Capability.POWER)
    assert (await driver.test_connection()).ok


async def test_platform_errors_fold_into_tri_state() -> None:
    async def missing() -> Any:
        raise ServerMissing("gone", status=404)

    async def locked() -> Any:
        raise ServerLocked("busy", status=409)

    assert isinstance(await tri_state(missing()), Missing)
    assert isinstance(await tri_state(locked()), Unknown)


def test_connection_report_helpers() -> None:
    report = ConnectionReport.from_checks(
        [Check(name="auth", ok=True), Check(name="scope x", ok=False, missing_scope="x")], "9"
    )
    assert not report.ok
    assert report.missing_scopes == ["x"]
    assert report.model_dump(mode="json")["checks"][1]["missing_scope"] == "x"
