"""A stateful simulator of the VirtFusion REST API v1 (see :mod:`.app`), used by the demo and tests."""

from vpsbridge.sim.virtfusion.app import create_app
from vpsbridge.sim.virtfusion.state import Fault, SimError, VirtFusionState

__all__ = ["Fault", "SimError", "VirtFusionState", "create_app"]
