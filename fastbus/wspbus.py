"""Drop-in for ``cherrypy.process.wspbus``: the same public names, backed by fastbus.

``fastbus.install()`` puts this module in place of CherryPy's, so ``cherrypy.engine``
(which CherryPy takes from ``cherrypy.process.wspbus.bus``) is a :class:`fastbus.Bus`.
"""

from ._bus import Bus
from ._errors import ChannelFailures
from ._states import states

__all__ = ("Bus", "ChannelFailures", "states", "bus")

bus = Bus()
"""The process-wide bus; CherryPy's ``engine``."""
