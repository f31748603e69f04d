"""fastbus: a fast, thread-safe in-process publish/subscribe bus, a drop-in for CherryPy's.

The public API is that of ``cherrypy.process.wspbus`` (:class:`Bus`, :class:`ChannelFailures`,
:data:`states`) plus :class:`SimplePlugin`, :func:`install` to run CherryPy on fastbus, and
:data:`COMPILED`, which tells whether the compiled core is active (set
``FASTBUS_NO_EXTENSIONS=1`` to force the pure-Python one).
"""

from ._bus import Bus
from ._core import COMPILED
from ._errors import ChannelFailures
from ._install import install, installed
from ._states import states
from .plugins import SimplePlugin

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
    "__version__",
    "install",
    "installed",
    "states",
)
