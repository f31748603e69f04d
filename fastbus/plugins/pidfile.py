"""PIDFile: write the process ID to a file while the process runs."""

from __future__ import annotations

import os
from typing import Any

from ._simple import SimplePlugin

__all__ = ("PIDFile",)


class PIDFile(SimplePlugin):
    """Maintain a PID file: written on start (priority 70), removed on exit.

    Priority 70 comes after :class:`Daemonizer` (65), so the file holds the daemon's PID,
    not that of the process that forked it. The file is written whole under a temporary
    name and then renamed, so a reader never sees it empty or half-written; its mode is
    0644 (less the umask). On exit it is removed only if this plugin wrote it.
    """

    def __init__(self, bus: Any, pidfile: Any) -> None:
        SimplePlugin.__init__(self, bus)
        if not isinstance(pidfile, (str, bytes, os.PathLike)):
            raise TypeError(f"pidfile must be a path, not {type(pidfile).__name__!r}")
        self.pidfile = pidfile
        self.finalized = False

    def start(self) -> None:
        """Write this process's PID, followed by a newline, unless done already."""
        pid = os.getpid()
        if self.finalized:
            self.bus.log("PID %r already written to %r." % (pid, self.pidfile))
            return
        path = os.fspath(self.pidfile)
        temp: str | bytes
        if isinstance(path, bytes):
            temp = path + b".%d.tmp" % pid
        else:
            temp = path + ".%d.tmp" % pid
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(b"%d\n" % pid)
            os.replace(temp, path)
        except BaseException:
            try:
                os.remove(temp)
            except OSError:
                pass
            raise
        self.bus.log("PID %r written to %r." % (pid, self.pidfile))
        self.finalized = True

    start.priority = 70  # type: ignore[attr-defined]

    def exit(self) -> None:
        """Remove the PID file, if this plugin wrote it; a missing file is no error."""
        if not self.finalized:
            return
        self.finalized = False
        try:
            os.remove(self.pidfile)
        except OSError:
            return
        self.bus.log("PID file removed: %r." % self.pidfile)
