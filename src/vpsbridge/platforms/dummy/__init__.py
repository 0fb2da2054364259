"""The in-memory ``dummy`` platform: a complete driver with real state, for the demo and for tests."""

from vpsbridge.platforms.dummy.cloud import DummyCloud, DummyNode
from vpsbridge.platforms.dummy.driver import REQUIRED_SCOPES, DummyPlatform
from vpsbridge.platforms.registry import register_driver

register_driver("dummy", DummyPlatform)

__all__ = ["REQUIRED_SCOPES", "DummyCloud", "DummyNode", "DummyPlatform"]
