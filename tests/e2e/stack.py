"""Runs the parts the PHP bridge talks to: vpsbridge (web + worker, SQLite) and the VirtFusion simulator.

Started as a subprocess by the end-to-end tests: ``python stack.py DATA_DIR SECRET``. Both servers
listen on free loopback ports; when they answer, one line ``READY {"bridge": url, "sim": url}`` is
printed. The vpsbridge side has one platform, ``vf``, pointing at the simulator.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import uvicorn

from vpsbridge.config import load_settings
from vpsbridge.services import admins, platforms, tokens
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.sim.virtfusion.app import create_app as create_sim
from vpsbridge.sim.virtfusion.state import VirtFusionState
from vpsbridge.store import migrate
from vpsbridge.web.app import create_app

TOKEN = "e2e-virtfusion-token"
#: The operator account WHMCS staff named ``ADMIN`` sign in to the console as.
ADMIN = "whmcsadmin"
ADMIN_PASSWORD = "e2e-operator-password-0123"  # a throw-away test account


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main(data_dir: Path, secret: str) -> None:
    sim_port, bridge_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    settings = load_settings(
        data_dir=data_dir,
        bridge_secret=secret,
        public_url=f"http://127.0.0.1:{bridge_port}",
        time_scale=0.05,
        worker_poll_seconds=0.1,
        job_lease_seconds=10,
        job_heartbeat_seconds=2,
        log_level="warning",
    )
    await migrate.upgrade(settings.effective_database_url)
    ctx = await AppContext.create(settings)
    try:
        await platforms.create_platform(
            ctx,
            {
                "name": "vf",
                "type": "virtfusion",
                "url": sim_url,
                "credentials": {"token": TOKEN},
                "settings": {"panel_url": sim_url, "read_timeout": 5, "connect_timeout": 2},
            },
            Actor.system("e2e"),
        )
        await admins.create_admin(ctx, ADMIN, ADMIN_PASSWORD, Actor.system("e2e"))
        _, api_token = await tokens.create_token(ctx, "e2e", "read", Actor.system("e2e"))
    finally:
        await ctx.close()

    state = VirtFusionState(tokens={TOKEN: None}).seed_demo()
    state.task_seconds = 0.5
    sim = uvicorn.Server(
        uvicorn.Config(create_sim(state), host="127.0.0.1", port=sim_port, log_level="warning")
    )
    app = create_app(settings, with_worker=True, migrate=False)
    web = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=bridge_port, log_level="warning"))
    tasks = [asyncio.create_task(sim.serve()), asyncio.create_task(web.serve())]
    while not (sim.started and web.started):
        await asyncio.sleep(0.05)
    ready = {"bridge": f"http://127.0.0.1:{bridge_port}", "sim": sim_url, "api_token": api_token}
    print("READY " + json.dumps(ready), flush=True)
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
