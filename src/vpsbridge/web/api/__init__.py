"""The operator API mounted at ``/api/v1``; see :mod:`vpsbridge.web.api.auth` for tokens and scopes."""

from fastapi import APIRouter

from vpsbridge.web.api import dns, dns_providers, jobs, platforms, pools, products, services, stock, tokens
from vpsbridge.web.errors import error_responses

#: Every API operation can answer these with the error envelope (listed in /docs).
api_router = APIRouter(responses=error_responses(401, 403, 404, 409, 422, 500, 502))
for _module in (platforms, products, pools, dns_providers, tokens, jobs, dns):
    api_router.include_router(_module.router)
api_router.include_router(stock.router)
api_router.include_router(services.router)

__all__ = ["api_router"]
