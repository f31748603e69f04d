"""The exception a publish raises when listeners failed."""

from __future__ import annotations

import sys

__all__ = ("ChannelFailures",)


class ChannelFailures(Exception):
    """Raised by :meth:`Bus.publish` after every listener ran, when some of them failed.

    It carries every failure of that publish, in call order, so that none is lost because
    another came first. Same interface as ``cherrypy.process.wspbus.ChannelFailures``.
    """

    delimiter = "\n"

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self._exceptions: list[BaseException] = []

    def handle_exception(self) -> None:
        """Record the exception being handled (``sys.exc_info()``)."""
        self._exceptions.append(sys.exc_info()[1])  # type: ignore[arg-type]

    def get_instances(self) -> list[BaseException]:
        """Return a copy of the recorded exceptions, in the order they happened."""
        return self._exceptions[:]

    def __str__(self) -> str:
        return self.delimiter.join(map(repr, self._exceptions))

    __repr__ = __str__

    def __bool__(self) -> bool:
        return bool(self._exceptions)

    __nonzero__ = __bool__  # wspbus's name for it, kept for code that calls it
