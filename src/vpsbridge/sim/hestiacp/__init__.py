"""A stateful HestiaCP command-API simulator limited to the DNS commands."""

from vpsbridge.sim.hestiacp.app import create_app
from vpsbridge.sim.hestiacp.state import DnsDomain, HestiaCommandError, HestiaState

__all__ = ["DnsDomain", "HestiaCommandError", "HestiaState", "create_app"]
