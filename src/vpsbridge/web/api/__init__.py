"""The operator API mounted at ``/api/v1``; see :mod:`vpsbridge.web.api.auth` for tokens and scopes."""

from fastapi import APIRouter

from vpsbridge.web.api import dns_providers, jobs, platforms, pools, products, tokens

api_router = APIRouter()
for _module in (platforms, products, pools, dns_providers, tokens, jobs):
    api_router.include_router(_module.router)

__all__ = ["api_router"]
