"""Token authentication, scopes and the per-request audit row of the operator API.

Every ``/api/v1`` route is built by :class:`AuditedRoute`, which writes exactly one audit row per
request that presents a credential, once the outcome is known (token id, method, path, status) - also
for refused and failed requests, because "who tried what" matters most when something was refused.
The row is written in its own transaction after the work: a service's own audit row for a change
commits with the change, this one records the use of the token.

Scopes: GET/HEAD need ``read``, every other method ``write``; token management needs ``admin``. A
missing, unknown, expired or revoked token is a 401 (with ``WWW-Authenticate``); a valid token without
the scope is a 403 naming the scope needed.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from vpsbridge.logs import get_logger
from vpsbridge.services import tokens
from vpsbridge.services.audit import Actor, record
from vpsbridge.services.errors import ServiceError
from vpsbridge.services.schemas import Scope, TokenPrincipal
from vpsbridge.web.deps import Ctx, client_ip
from vpsbridge.web.errors import APIError

log = get_logger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="vpsbridge"'}
_STATE_KEY = "api_principal"


def status_of(exc: BaseException) -> int:
    """The HTTP status the error handlers will answer for ``exc``."""
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code
    if isinstance(exc, RequestValidationError):
        return 422
    if isinstance(exc, ServiceError):
        return exc.http_status
    return 500


class AuditedRoute(APIRoute):
    """An API route that records one audit row per request, whatever the outcome."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def audited(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as exc:
                await _audit(request, status_of(exc))
                raise
            await _audit(request, response.status_code)
            return response

        return audited


async def _audit(request: Request, status: int) -> None:
    principal: TokenPrincipal | None = getattr(request.state, _STATE_KEY, None)
    ctx = getattr(request.app.state, "ctx", None)
    if ctx is None:
        return
    if principal is None and "authorization" not in request.headers:
        # No credential at all is not a use of a token; auditing it would let anonymous traffic
        # write to the database at will. A wrong or revoked token *is* recorded.
        return
    actor = Actor(type="token", id=str(principal.token_id) if principal else None, ip=client_ip(request))
    details: dict[str, Any] = {
        "method": request.method,
        "path": request.url.path,
        "status": status,
        "request_id": getattr(request.state, "request_id", None),
    }
    if principal is not None:
        details["token_name"] = principal.name
    try:
        async with ctx.db.session() as session:
            await record(session, actor, "api.request", "api_token", actor.id, details)
    except Exception:
        # The answer stands (a change may already be committed); the gap is loud in the log.
        log.exception("api_audit_failed", **details)


#: Declares the bearer scheme in the OpenAPI document (the "Authorize" button of /docs); errors are
#: ours, so it never raises by itself.
bearer_scheme = HTTPBearer(auto_error=False, bearerFormat="vpsb_<prefix>_<secret>", scheme_name="ApiToken")


class Authorize:
    """Dependency: authenticate the bearer token and check its scope.

    ``scope=None`` derives the scope from the HTTP method (read for GET, write otherwise).
    """

    def __init__(self, scope: Scope | None = None) -> None:
        self.scope = scope

    async def __call__(
        self,
        request: Request,
        ctx: Ctx,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> TokenPrincipal:
        plaintext = credentials.credentials.strip() if credentials is not None else ""
        if not plaintext:
            raise APIError(
                401,
                "An API token is required: send Authorization: Bearer <token>.",
                code="unauthorized",
                headers=_CHALLENGE,
            )
        try:
            principal = await tokens.authenticate_token(ctx, plaintext)
        except ServiceError:
            principal = None
        if principal is None:
            raise APIError(
                401,
                "The API token is unknown, expired or revoked.",
                code="invalid_token",
                headers=_CHALLENGE,
            )
        setattr(request.state, _STATE_KEY, principal)
        needed: Scope = self.scope or ("read" if request.method in READ_METHODS else "write")
        if not principal.allows(needed):
            raise APIError(
                403,
                f"This token has scope {principal.scope!r}; this request needs {needed!r}.",
                code="insufficient_scope",
                details={"required_scope": needed, "token_scope": principal.scope},
            )
        return principal


def principal_of(request: Request) -> TokenPrincipal:
    """The principal authenticated by the router's :class:`Authorize` dependency."""
    principal: TokenPrincipal | None = getattr(request.state, _STATE_KEY, None)
    if principal is None:  # a route mounted without Authorize: refuse rather than act anonymously
        raise APIError(401, "Not authenticated.", headers=_CHALLENGE)
    return principal


def actor_of(request: Request) -> Actor:
    """The audit actor for a change made through the API: the token, with the client's address."""
    return Actor(type="token", id=str(principal_of(request).token_id), ip=client_ip(request))


ApiActor = Annotated[Actor, Depends(actor_of)]
Principal = Annotated[TokenPrincipal, Depends(principal_of)]
