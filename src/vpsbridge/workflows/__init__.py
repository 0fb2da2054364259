"""Durable multi-step operations (deploy, terminate, dns_sync ...) run by the job engine.

Each capability adds a module to this package that builds its :class:`Workflow` objects and calls
:func:`register_workflow` (and ``periodic_task`` for scheduled work) at import time. Workers call
:func:`autodiscover` so dropping a module here is all it takes for workers to know it.
"""

from __future__ import annotations

import importlib
import pkgutil

from vpsbridge.workflows.base import (
    Done,
    Fail,
    LeaseLost,
    Outcome,
    Retry,
    Step,
    StepContext,
    Wait,
    Workflow,
    get_workflow,
    register_workflow,
    registered_workflows,
)


def autodiscover() -> list[str]:
    """Import every module of this package (registering its workflows); returns their names."""
    loaded = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"{__name__}.{info.name}")
        loaded.append(info.name)
    return loaded


__all__ = [
    "Done",
    "Fail",
    "LeaseLost",
    "Outcome",
    "Retry",
    "Step",
    "StepContext",
    "Wait",
    "Workflow",
    "autodiscover",
    "get_workflow",
    "register_workflow",
    "registered_workflows",
]
