"""Which API permission each VirtFusion endpoint needs, as vpsbridge names them.

A VirtFusion API token can be limited to parts of the API. When a call is refused with 403 the driver
looks the endpoint up here, so the operator reads "grant the token ``compute:read``" instead of a bare
"forbidden". The simulator enforces the same table, which is how tests prove that a missing
permission is reported by name at set-up time.
"""

from __future__ import annotations

import re

#: Permission name -> what vpsbridge needs it for (shown in connection tests and docs).
SCOPES: dict[str, str] = {
    "compute:read": "read hypervisor groups and their free resources (placement and stock)",
    "packages:read": "read packages (plans, stock)",
    "media:read": "list the OS templates a package may install",
    "users:read": "find the panel user of a billing client",
    "users:write": "create panel users, reset panel logins, single sign-on",
    "servers:read": "read servers, traffic, console details and tasks",
    "servers:write": "create, build, change, power, suspend and delete servers",
    "ssh_keys:write": "store SSH keys pasted at order time",
    "backups:read": "list backups",
    "self_service:read": "read self-service usage, reports and credit",
    "self_service:write": "add self-service credit",
}

# (method, path regex, scope); first match wins. Paths are relative to /api/v1.
_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), scope)
    for method, pattern, scope in (
        ("GET", r"^/compute/", "compute:read"),
        ("GET", r"^/packages", "packages:read"),
        ("GET", r"^/media/", "media:read"),
        ("GET", r"^/users/", "users:read"),
        ("*", r"^/users", "users:write"),
        ("*", r"^/ssh_keys", "ssh_keys:write"),
        ("GET", r"^/backups/", "backups:read"),
        ("GET", r"^/selfService/", "self_service:read"),
        ("*", r"^/selfService/", "self_service:write"),
        ("GET", r"^/(servers|queue)", "servers:read"),
        ("*", r"^/servers", "servers:write"),
    )
)


def scope_for(method: str, path: str) -> str | None:
    """The permission a request needs (``None`` for ``/connect``, which any valid token may call)."""
    method = method.upper()
    if "/api/v1" in path:
        path = path.split("/api/v1", 1)[1]
    path = path.split("?", 1)[0]
    for rule_method, pattern, scope in _RULES:
        if rule_method in ("*", method) and pattern.search(path):
            return scope
    return None
