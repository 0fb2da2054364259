"""``service.change_package``: finish a package change the platform has accepted.

:func:`vpsbridge.services.provisioning.change_package` asks the platform for the change while the
billing request waits (so the platform's warnings, e.g. VirtFusion's ``info[]`` "primary disk not
updated", reach billing in the answer). This job then waits for the platform's task, refreshes the
server record (new sizes) and raises ``package_changed`` with those warnings for billing.
"""

from __future__ import annotations

from vpsbridge.services.provisioning.lifecycle import CHANGE_PACKAGE, JOB_ATTEMPTS
from vpsbridge.workflows.base import Workflow, register_workflow
from vpsbridge.workflows.server_sync import SYNC_STEPS, server_resource

CHANGE_PACKAGE_WORKFLOW = register_workflow(
    Workflow(
        name=CHANGE_PACKAGE,
        steps=SYNC_STEPS,
        resource_key=server_resource,
        max_attempts=JOB_ATTEMPTS[CHANGE_PACKAGE],
    )
)
