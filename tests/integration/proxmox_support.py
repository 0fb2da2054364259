"""Driver + simulator wiring shared by the Proxmox integration and contract tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vpsbridge.platforms.proxmox import ProxmoxPlatform
from vpsbridge.sim.proxmox import ClusterInfo, ProxmoxSimApp, ProxmoxState, SimTransport, create_app
from vpsbridge.sim.proxmox.cluster import standard_cluster

URL = "https://pve.example.test:8006"


@dataclass
class Env:
    sim: ProxmoxState
    info: ClusterInfo
    app: ProxmoxSimApp
    driver: ProxmoxPlatform

    def requests(
        self, method: str | None = None, contains: str = ""
    ) -> list[tuple[str, str, dict[str, str]]]:
        return [r for r in self.sim.requests if (method is None or r[0] == method) and contains in r[1]]


def make_env(
    *,
    version: str = "9.1.3",
    time_scale: float = 0.0,
    durations: dict[str, float] | None = None,
    settings: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
    read_timeout: float = 1.0,
) -> Env:
    sim = ProxmoxState(version=version, time_scale=time_scale, durations=durations, seed=7)
    sim, info = standard_cluster(sim)
    app = create_app(sim)
    creds = {
        "token_id": info.token_id,
        "token_secret": info.token_secret,
        "console_user": info.console_user,
        "console_password": info.console_password,
    }
    creds.update(credentials or {})
    driver = ProxmoxPlatform(
        url=URL,
        credentials=creds,
        transport=SimTransport(app, read_timeout=read_timeout),
        settings={
            "poll_interval": 0.01,
            "retry_wait": 0.01,
            "task_timeout": 5,
            "read_timeout": read_timeout,
            **(settings or {}),
        },
    )
    return Env(sim, info, app, driver)
