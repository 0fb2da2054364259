"""Context shared between the job engine and upstream clients without importing each other.

The worker binds the id of the job it runs; every upstream request made inside that job (however deep
in a driver) is then recorded with the job id, so the operator console can show "what did this deploy
send to VirtFusion" next to the job's own log.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: Id of the job currently running in this task (``None`` outside jobs).
current_job_id: ContextVar[int | None] = ContextVar("vpsbridge_job_id", default=None)


@contextmanager
def bind_job_id(job_id: int | None) -> Iterator[None]:
    """Record upstream requests made inside the block under ``job_id``."""
    token = current_job_id.set(job_id)
    try:
        yield
    finally:
        current_job_id.reset(token)
