"""The ``virtfusion`` platform: VirtFusion REST API v1 client, driver and option mapping."""

from vpsbridge.platforms.registry import register_driver
from vpsbridge.platforms.virtfusion.client import VirtFusionClient
from vpsbridge.platforms.virtfusion.driver import VirtFusionPlatform
from vpsbridge.platforms.virtfusion.errors import ScopeMissing, SsoRedirectRefused, UserRelationConflict
from vpsbridge.platforms.virtfusion.options import DEFAULT_OPTION_NAMES, map_options

register_driver("virtfusion", VirtFusionPlatform)

__all__ = [
    "DEFAULT_OPTION_NAMES",
    "ScopeMissing",
    "SsoRedirectRefused",
    "UserRelationConflict",
    "VirtFusionClient",
    "VirtFusionPlatform",
    "map_options",
]
