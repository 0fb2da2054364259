"""The durable job engine: enqueue, claim, leases and heartbeats, retries, periodic tasks, workers.

Import what you need from the submodules: :mod:`vpsbridge.jobs.queue` (enqueue and operator actions),
:mod:`vpsbridge.jobs.periodic` (``periodic_task``, ``run_task``), :mod:`vpsbridge.jobs.worker`
(``Worker``). The engine's own periodic task (``job_log_purge``) is registered on first import of
:mod:`vpsbridge.jobs.maintenance`, which the worker and cron commands import.
"""
