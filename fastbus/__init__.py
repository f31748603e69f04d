"""fastbus: a fast, thread-safe in-process publish/subscribe bus, a drop-in for CherryPy's.

The public API is that of ``cherrypy.process.wspbus`` (:class:`Bus`, :class:`ChannelFailures`,
:data:`states`) plus :class:`SimplePlugin`, :func:`install` to run CherryPy on fastbus, and
:data:`COMPILED`, which tells whether the compiled core is active (set
``FASTBUS_NO_EXTENSIONS=1`` to force the pure-Python one).

``import fastbus`` loads only the bus: :func:`install`, :func:`installed`,
:class:`SimplePlugin` and :mod:`fastbus.plugins` are imported on first use, so a program that
only publishes pays for no import hook machinery, plugin or process helper.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._bus import Bus
from ._core import COMPILED
from ._errors import ChannelFailures
from ._states import states
from ._subscriptions import Subscription

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers
    from . import plugins as plugins
    from ._install import install, installed
    from .plugins._simple import SimplePlugin

try:
    from ._version import __version__
except ImportError:  # a source tree that was never built or installed
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("fastbus")
    except PackageNotFoundError:
        __version__ = "0+unknown"

__all__ = (
    "COMPILED",
    "Bus",
    "ChannelFailures",
    "SimplePlugin",
    "Subscription",
    "__version__",
    "install",
    "installed",
    "states",
)

# Imported on first use: name -> (module relative to this package, attribute; None for the
# module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    "SimplePlugin": (".plugins._simple", "SimplePlugin"),
    "install": ("._install", "install"),
    "installed": ("._install", "installed"),
    "plugins": (".plugins", None),
}


if not TYPE_CHECKING:  # hidden from type checkers, which then flag any other name

    def __getattr__(name: str) -> Any:
        """Import a lazy name on first use (only lookups that find nothing else come here)."""
        try:
            module_name, attribute = _LAZY[name]
        except KeyError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        module = import_module(module_name, __name__)
        value = module if attribute is None else getattr(module, attribute)
        globals()[name] = value  # later lookups find it without calling this again
        return value

    def __dir__() -> list[str]:
        """The public names, lazy ones included, and the private ones; not the helpers imported here."""
        return sorted({*__all__, *_LAZY, *(name for name in globals() if name.startswith("_"))})
