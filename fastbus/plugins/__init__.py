"""Plugins: objects that follow the bus's lifecycle by subscribing to its channels.

They work on a :class:`fastbus.Bus` and equally on a stock ``cherrypy.process.wspbus.Bus``.
"""

from ._simple import SimplePlugin

__all__ = ("SimplePlugin",)
