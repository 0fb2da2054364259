"""Platform capacity for the platforms page: free resources per node, straight from the driver.

Asked on demand (a button), never on page load: capacity is one or more upstream calls, and the
platforms list must open even when a platform is down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vpsbridge.services.admin_console.wording import N_, WordedConflict, WordedUpstreamError

if TYPE_CHECKING:
    from vpsbridge.platforms.models import CapacityReport
    from vpsbridge.services.context import AppContext


async def platform_capacity(
    ctx: AppContext, platform_id: int, placement: dict[str, Any] | None = None
) -> CapacityReport:
    """The platform's free CPU, memory and disk per node for ``placement`` (all nodes by default)."""
    from vpsbridge.http.errors import UpstreamError as HttpUpstreamError
    from vpsbridge.platforms.errors import PlatformError
    from vpsbridge.services.provisioning.drivers import open_driver

    try:
        async with open_driver(ctx, platform_id) as (driver, config):
            if not driver.supports("capacity"):
                raise WordedConflict(
                    N_("Platform '%(platform)s' (%(type)s) does not report capacity."),
                    platform=config.name,
                    type=config.type,
                )
            return await driver.capacity(placement or {})
    except (HttpUpstreamError, PlatformError) as exc:
        raise WordedUpstreamError(
            N_("The platform did not report its capacity: %(reason)s"), reason=str(exc)
        ) from exc
