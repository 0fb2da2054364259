"""A stateful Cloudflare DNS API v4 simulator (zones, records, batch, 429 with Retry-After)."""

from vpsbridge.sim.cloudflare.app import create_app
from vpsbridge.sim.cloudflare.state import CloudflareApiError, CloudflareState

__all__ = ["CloudflareApiError", "CloudflareState", "create_app"]
