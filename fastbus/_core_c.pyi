# The compiled core has the pure core's interface exactly (tests/test_parity.py checks it).
from ._core_py import CoreBus as CoreBus

__all__ = ("CoreBus",)
