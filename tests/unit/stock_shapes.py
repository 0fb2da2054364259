"""Builders of VirtFusion-shaped stock inputs shared by the stock unit and property tests."""

from __future__ import annotations

from typing import Any


def package(
    memory: int = 1024, cores: int = 1, storage: int = 10, profile: int = 0, enabled: bool = True
) -> dict[str, Any]:
    return {
        "id": 1,
        "name": "VPS",
        "enabled": enabled,
        "memory": memory,
        "cpuCores": cores,
        "primaryStorage": storage,
        "primaryStorageProfile": profile,
        "traffic": 0,
    }


def block(maximum: int, free: int, **extra: Any) -> dict[str, Any]:
    return {"units": "#", "max": maximum, "allocated": maximum - free, "free": free, **extra}


def entry(
    hv_id: int = 1,
    *,
    memory: tuple[int, int] = (65536, 65536),
    cores: tuple[int, int] = (32, 32),
    local: tuple[int, int] = (2000, 2000),
    local_type: int = 0,
    local_enabled: bool = True,
    other: list[dict[str, Any]] | None = None,
    servers: tuple[int, int] | None = (0, -1),
    ipv4: int | None = 100,
    enabled: bool = True,
    commissioned: bool = True,
    prohibit: bool = False,
) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "memory": block(*memory),
        "cpuCores": block(*cores),
        "localStorage": block(*local, enabled=int(local_enabled), storageType=local_type, name="Local"),
        "otherStorage": other or [],
    }
    if servers is not None:
        resources["servers"] = block(*servers)
    if ipv4 is not None:
        resources["network"] = {"total": {"ipv4": {"free": ipv4}}}
    return {
        "hypervisor": {
            "id": hv_id,
            "name": f"HV{hv_id}",
            "enabled": enabled,
            "prohibit": prohibit,
            "accept": False,
            "commissioned": commissioned,
        },
        "resources": resources,
    }


def pool(pool_id: int, storage_type: int, maximum: int, free: int, *, enabled: bool = True) -> dict[str, Any]:
    return {
        "id": pool_id,
        "name": f"pool{pool_id}",
        "enabled": int(enabled),
        "storageType": storage_type,
        "units": "GB",
        "max": maximum,
        "allocated": maximum - free,
        "free": free,
    }
