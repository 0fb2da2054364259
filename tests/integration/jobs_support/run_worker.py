"""A worker process for the multi-process job tests: ``python run_worker.py '<json options>'``.

Options: database_url, data_dir, key, time_scale, lease, heartbeat, poll, concurrency, mode
("idle" = run until no job is pending, "forever" = until SIGTERM), periodic (bool), intervals (dict).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workflows

from vpsbridge.config import load_settings
from vpsbridge.jobs.worker import Worker
from vpsbridge.services.context import AppContext


async def main(options: dict[str, object]) -> None:
    settings = load_settings(
        database_url=options["database_url"],
        data_dir=options["data_dir"],
        encryption_keys=[options["key"]],
        time_scale=options.get("time_scale", 0.01),
        job_lease_seconds=options.get("lease", 60),
        job_heartbeat_seconds=options.get("heartbeat", 15),
        worker_poll_seconds=options.get("poll", 0.05),
        job_backoff_base_seconds=options.get("backoff", 2),
        task_intervals=options.get("intervals", {}),
    )
    app = await AppContext.create(settings)
    worker = Worker(
        app,
        concurrency=int(options.get("concurrency", 4)),  # type: ignore[call-overload]
        worker_id=f"test-{os.getpid()}",
        periodic=bool(options.get("periodic", False)),
    )
    ready = options.get("ready_file")
    if ready:
        Path(str(ready)).write_text(str(os.getpid()))
    try:
        if options.get("mode", "idle") == "idle":
            await worker.run_until_idle(timeout=float(options.get("timeout", 120)))  # type: ignore[arg-type]
        else:
            await worker.run_forever(install_signal_handlers=True)
    finally:
        await app.close()


if __name__ == "__main__":
    assert workflows.RECORD_ENV
    asyncio.run(main(json.loads(sys.argv[1])))
