"""Autoreloader: restart the process when one of its source files changes."""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from .._reexec import STARTUP_CWD
from .monitor import Monitor

__all__ = ("Autoreloader",)


class Autoreloader(Monitor):
    """Monitor which re-executes the process when files change.

    It restarts the process (``bus.restart()``, which re-executes it) if any file it
    watches is modified or deleted. It watches the files of all imported modules whose
    names match :attr:`match`, plus those of :attr:`files`::

        autoreload.files.add(my_config_file)

    To leave out modules, narrow ``match``, a regular expression matched against module
    names; for instance, not to watch CherryPy itself::

        autoreload.match = r'^(?!cherrypy).+'

    Files are examined every *frequency* seconds (default 1). Modules may be imported by
    other threads while a check runs: the check works on a copy of ``sys.modules``, so it
    never fails with "dictionary changed size during iteration" (cherrypy issues 1280,
    1373, 1744), and a module whose attributes cannot be read is skipped.
    """

    files: Any = None
    """The set of files to poll for modifications, besides those of imported modules."""

    frequency: float = 1
    """The interval in seconds at which to poll for modified files."""

    match = ".*"
    """A regular expression by which to match module names."""

    def __init__(self, bus: Any, frequency: float = 1, match: str = ".*") -> None:
        if not isinstance(match, str):
            raise TypeError(f"match must be a regular expression string, not {type(match).__name__!r}")
        try:
            re.compile(match)
        except re.error as exc:
            raise ValueError(f"match is not a valid regular expression: {exc}") from None
        self.mtimes: dict[str, float | None] = {}
        self.files = set()
        self.match = match
        Monitor.__init__(self, bus, self.run, frequency)

    def start(self) -> None:
        """Start our own background thread for :meth:`run`, forgetting old mtimes."""
        if self.thread is None:
            self.mtimes = {}
        Monitor.start(self)

    start.priority = 70  # type: ignore[attr-defined]

    def sysfiles(self) -> set[str]:
        """Return the set of files of the imported modules that :attr:`match` selects."""
        matches = re.compile(self.match).match
        # dict.copy() is one C call: other threads cannot import in the middle of it.
        modules = sys.modules.copy()
        found = set()
        for name, module in modules.items():
            if module is None or not isinstance(name, str) or not matches(name):
                continue
            filename = self._file_for_module(module)
            if filename:
                found.add(filename)
        return found

    @classmethod
    def _file_for_module(cls, module: Any) -> str | None:
        """Return the file to watch for *module*: its zip archive, or its ``__file__``."""
        return cls._archive_for_zip_module(module) or cls._file_for_file_module(module)

    @staticmethod
    def _archive_for_zip_module(module: Any) -> str | None:
        try:
            archive = module.__loader__.archive
        except Exception:
            # Lazy or proxy modules may raise anything from attribute access.
            return None
        return archive if isinstance(archive, str) else None

    @classmethod
    def _file_for_file_module(cls, module: Any) -> str | None:
        try:
            filename = module.__file__
        except Exception:
            return None
        if not isinstance(filename, str) or not filename:
            return None
        return cls._make_absolute(filename)

    @staticmethod
    def _make_absolute(filename: str) -> str:
        """Make *filename* absolute against the startup directory, immune to os.chdir()."""
        if os.path.isabs(filename):
            return filename
        return os.path.normpath(os.path.join(STARTUP_CWD, filename))

    def run(self) -> None:
        """Restart the process if a watched file was modified or deleted since last seen."""
        for filename in self.sysfiles() | set(self.files):
            if not filename:
                continue
            if filename.endswith(".pyc"):
                filename = filename[:-1]

            oldtime = self.mtimes.get(filename, 0)
            if oldtime is None:
                # A module with no source file: nothing to watch.
                continue
            try:
                mtime: float | None = os.stat(filename).st_mtime
            except OSError:
                # A module with no source file, or a deleted file.
                mtime = None

            if filename not in self.mtimes:
                self.mtimes[filename] = mtime
            elif mtime is None or mtime > oldtime:
                self.bus.log("Restarting because %s changed." % filename)
                thread = self.thread
                if thread is not None:
                    thread.cancel()
                    self.bus.log("Stopped thread %r." % thread.name)
                self.bus.restart()
                return
