"""The built-in PBX simulator: Asterisk 22's AMI over TCP, for ``hotline demo`` and tests."""

from hotline.simulator.script import SimulatedCall
from hotline.simulator.server import PbxSimulator, SimulatorStats

__all__ = ["PbxSimulator", "SimulatedCall", "SimulatorStats"]
