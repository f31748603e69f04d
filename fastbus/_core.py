"""Select the core: the compiled one when it is importable, else the pure-Python twin.

``FASTBUS_NO_EXTENSIONS`` set to a true value (``1``, ``true``, ``yes``, ``on``) forces the pure
core; so does an interpreter other than CPython. Type checkers see the pure module, which is
the typed reference of the contract.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

__all__ = ("COMPILED", "CoreBus", "WHY_NOT_COMPILED")

WHY_NOT_COMPILED: str | None = None

if TYPE_CHECKING:
    from ._core_py import CoreBus

    COMPILED = False
elif os.environ.get("FASTBUS_NO_EXTENSIONS", "").strip().lower() in {"1", "true", "yes", "on"}:
    from ._core_py import CoreBus

    COMPILED = False
    WHY_NOT_COMPILED = "FASTBUS_NO_EXTENSIONS is set"
elif sys.implementation.name != "cpython":
    from ._core_py import CoreBus

    COMPILED = False
    WHY_NOT_COMPILED = f"the compiled core needs CPython, not {sys.implementation.name}"
else:
    try:
        from ._core_c import CoreBus
    except ImportError as exc:
        from ._core_py import CoreBus

        COMPILED = False
        WHY_NOT_COMPILED = f"the compiled core is not importable ({exc})"
    else:
        COMPILED = True
