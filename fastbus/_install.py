"""Making CherryPy run on fastbus: ``cherrypy.process.wspbus`` served by :mod:`fastbus.wspbus`.

CherryPy builds ``cherrypy.engine`` at import time from ``cherrypy.process.wspbus.bus``, so
the swap must happen before ``import cherrypy``: :func:`install` adds an import hook that
answers for that one module with fastbus's names. Everything else of CherryPy is untouched.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ("install", "installed")

TARGET = "cherrypy.process.wspbus"


class _WspbusLoader(importlib.abc.Loader):
    """Creates ``cherrypy.process.wspbus`` holding fastbus's public wspbus names."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        from . import wspbus

        module.__doc__ = wspbus.__doc__
        module.__all__ = wspbus.__all__  # type: ignore[attr-defined]
        module.__fastbus__ = True  # type: ignore[attr-defined]
        for name in wspbus.__all__:
            setattr(module, name, getattr(wspbus, name))


class _WspbusFinder(importlib.abc.MetaPathFinder):
    """Finds fastbus's stand-in for ``cherrypy.process.wspbus``, and nothing else."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        return importlib.machinery.ModuleSpec(fullname, _WspbusLoader(), origin="fastbus.wspbus")


def _finder_installed() -> bool:
    return any(isinstance(finder, _WspbusFinder) for finder in sys.meta_path)


def install() -> None:
    """Make CherryPy use fastbus: call before ``import cherrypy``.

    Afterwards ``cherrypy.engine`` is a :class:`fastbus.Bus` and ``cherrypy.process.wspbus``
    holds fastbus's ``Bus``, ``ChannelFailures``, ``states`` and ``bus``. Calling it again
    is harmless. Raises RuntimeError if CherryPy was already imported on its own bus, since
    its engine and plugins would then stay on wspbus.
    """
    if _finder_installed():
        return
    current = sys.modules.get(TARGET)
    if "cherrypy" in sys.modules or current is not None:
        raise RuntimeError(
            "fastbus.install() was called after cherrypy was imported, so cherrypy.engine "
            "is already a wspbus.Bus and stays one. Call fastbus.install() before the first "
            "'import cherrypy' (first thing in your main script), or start the program with "
            "'python -m fastbus.run script.py' to swap without changing code."
        )
    sys.meta_path.insert(0, _WspbusFinder())


def installed() -> bool:
    """Tell whether ``cherrypy.engine`` is a fastbus bus (False if cherrypy is not imported)."""
    cherrypy: Any = sys.modules.get("cherrypy")
    if cherrypy is None:
        return False
    from ._bus import Lifecycle

    return isinstance(getattr(cherrypy, "engine", None), Lifecycle)
