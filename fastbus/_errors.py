"""The exception a publish raises when listeners failed."""

from __future__ import annotations

import sys
from collections.abc import Hashable
from typing import Any

__all__ = ("ChannelFailures", "listener_failed")


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


def listener_failed(bus: Any, channel: Hashable, listener: object, failures: ChannelFailures | None) -> ChannelFailures:
    """Deal with the failure of *listener*, the exception being handled; both cores call this.

    KeyboardInterrupt and SystemExit are re-raised, to stop the publish at once (SystemExit's
    code 0 becomes 1 if a listener already failed). Any other exception is added to
    *failures* (created on the first) and logged through ``bus.log`` at level 40, except on
    the ``log`` channel itself; a failing log is recorded too rather than stopping the
    publish. Returns the failures so far.
    """
    error = sys.exc_info()[1]
    if isinstance(error, SystemExit):
        if failures is not None and error.code == 0:
            error.code = 1
        raise
    if not isinstance(error, Exception):
        raise
    if failures is None:
        failures = ChannelFailures()
    failures.handle_exception()
    if channel != "log":
        try:
            bus.log("Error in %r listener %r" % (channel, listener), level=40, traceback=True)
        except Exception:
            failures.handle_exception()
    return failures
