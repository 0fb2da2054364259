"""Workflows: durable operations made of ordered, idempotent steps.

A workflow never runs in one go. The job engine runs one step at a time and persists the job's
``state`` dict and the index of the next step after every completed step, so a job whose worker died
(or was stopped) resumes *after* its last completed step on whichever worker claims it next. That is
why every step must be idempotent: a step that was running when its worker died runs again.

A step returns one of four outcomes:

* :class:`Done` — the step completed; the engine moves to the next step (or finishes the job);
* :class:`Wait` — come back to this same step later (polling an upstream task); not an attempt;
* :class:`Retry` — a transient failure; retried with exponential backoff up to ``max_attempts``;
* :class:`Fail` — a permanent failure; the job ends ``failed`` at once with the reason kept.

An exception escaping a step counts as :class:`Retry` with the exception text as the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext


@dataclass(frozen=True)
class Done:
    """The step completed. ``result`` is merged into the job's result (shown to operators)."""

    result: dict[str, Any] | None = None


@dataclass(frozen=True)
class Wait:
    """Run this same step again after ``seconds`` (scaled by ``time_scale``); not a failure."""

    seconds: float
    reason: str = ""


@dataclass(frozen=True)
class Retry:
    """A transient failure: retry this step after a backoff, counting one attempt."""

    reason: str


@dataclass(frozen=True)
class Fail:
    """A permanent failure: the job ends ``failed`` with ``reason`` as its last error."""

    reason: str


Outcome = Done | Wait | Retry | Fail

LogWriter = Callable[[str, str], Awaitable[None]]
Heartbeat = Callable[[], Awaitable[None]]


class LeaseLost(Exception):
    """Raised inside a step when its worker no longer owns the job; the step must stop at once."""


@dataclass
class StepContext:
    """What a running step sees: its job, the persisted ``state`` and ways to report progress.

    ``state`` is mutable and persisted by the engine after the step completes (whatever the
    outcome), so a step records upstream ids there *before* relying on them in a later step.
    """

    job_id: int
    kind: str
    step: str
    payload: Mapping[str, Any]
    state: dict[str, Any]
    attempt: int
    app: AppContext
    _log: LogWriter = field(repr=False)
    _heartbeat: Heartbeat = field(repr=False)

    async def log(self, message: str, level: str = "info") -> None:
        """Write a timestamped line to the job log (persisted at once, streamed by ``--verbose``)."""
        await self._log(message, level)

    async def heartbeat(self) -> None:
        """Extend the job's lease now; raises :class:`LeaseLost` if another worker took the job.

        The engine already heartbeats in the background while a step runs; a step that does long
        synchronous-looking work in many small awaits may call this to find out early that it lost
        its lease.
        """
        await self._heartbeat()


StepFunction = Callable[[StepContext], Awaitable[Outcome]]


@dataclass(frozen=True)
class Step:
    name: str
    run: StepFunction


def _no_resource(_payload: Mapping[str, Any]) -> str | None:
    return None


@dataclass(frozen=True)
class Workflow:
    """A named, ordered list of steps.

    ``resource_key`` maps a payload to the resource the job mutates (``server:42``); the engine runs
    at most one job per resource at a time. ``max_attempts`` overrides ``settings.job_max_attempts``.
    """

    name: str
    steps: tuple[Step, ...]
    resource_key: Callable[[Mapping[str, Any]], str | None] = _no_resource
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError(f"workflow {self.name!r} has no steps")
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"workflow {self.name!r} has duplicate step names")
        # Accept a list for convenience while keeping the dataclass hashable and immutable.
        object.__setattr__(self, "steps", tuple(self.steps))


_REGISTRY: dict[str, Workflow] = {}


def register_workflow(workflow: Workflow) -> Workflow:
    """Make ``workflow`` runnable by workers under its name; re-registering replaces it."""
    _REGISTRY[workflow.name] = workflow
    return workflow


def get_workflow(name: str) -> Workflow | None:
    return _REGISTRY.get(name)


def registered_workflows() -> dict[str, Workflow]:
    return dict(_REGISTRY)
