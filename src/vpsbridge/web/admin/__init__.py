"""The operator console at ``/admin``: server-rendered pages on the shared UI infrastructure.

Mounted by the app factory with ``app.include_router(admin.router)``. Every route except the sign-in
pages depends on :func:`~vpsbridge.web.admin.deps.signed_in` (session, same-origin check, CSRF token
on POST), and every state-changing action goes through a service that writes an audit row naming
the operator.
"""

from pathlib import Path

from fastapi import APIRouter

from vpsbridge.web.admin import auth, catalog, jobs, logs, new_service, overview, services, stock
from vpsbridge.web.admin.deps import PREFIX
from vpsbridge.web.ui import add_template_dir

add_template_dir(Path(__file__).resolve().parent / "templates")

#: The page modules; each has a ``router`` of routes relative to ``/admin`` (tests enumerate them).
#: ``new_service`` comes before ``services``: its ``/services/new`` must match before
#: ``/services/{service_id}`` would take "new" for an id.
MODULES = (auth, overview, new_service, services, jobs, catalog, stock, logs)

router = APIRouter(prefix=PREFIX, include_in_schema=False)
for _module in MODULES:
    router.include_router(_module.router)

__all__ = ["MODULES", "PREFIX", "router"]
