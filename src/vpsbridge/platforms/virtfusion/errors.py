"""VirtFusion-specific refinements of the typed platform errors."""

from __future__ import annotations

from typing import Any

from vpsbridge.http.errors import UpstreamAuthError
from vpsbridge.platforms.errors import InvalidRequest


class ScopeMissing(UpstreamAuthError):
    """403: the API token lacks the permission ``scope`` (named as in :data:`~.scopes.SCOPES`)."""

    def __init__(self, message: str, *, scope: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.scope = scope


class UserRelationConflict(InvalidRequest):
    """A panel user with the client's e-mail exists but is not linked to this billing client.

    Creating a second user would fail (e-mail taken) or split the client's servers over two logins,
    so the operator is told exactly which link to set instead.
    """


class SsoRedirectRefused(InvalidRequest):
    """The panel answered a login URL that points somewhere other than the configured panel host."""
