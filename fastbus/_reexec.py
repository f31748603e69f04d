"""Re-executing the current process, for :meth:`Bus.restart`.

``os.execv`` must get back the command line that started this interpreter, with the same
working directory, import path and no leaked file descriptors; each helper below covers one
of those.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ("MAX_FILES", "STARTUP_CWD", "interpreter_argv", "true_argv", "extend_pythonpath", "set_cloexec")

# Where the process was started: if fastbus is imported early, this is the directory the
# startup script ran from, which re-exec must go back to in case the application chdir'ed
# since (a relative sys.executable or script path would not be found otherwise).
STARTUP_CWD = os.getcwd()

if fcntl is None:
    MAX_FILES = 0
else:
    try:
        MAX_FILES = os.sysconf("SC_OPEN_MAX")
    except (AttributeError, ValueError, OSError):
        MAX_FILES = 1024


def interpreter_argv() -> list[str]:
    """Return the interpreter's own options (``-X``, ``-W``, ...); none when frozen."""
    if getattr(sys, "frozen", False):
        return []
    import subprocess  # only a restart needs it; importing fastbus should not pay for it

    flags: list[str] = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    return flags


def true_argv() -> list[str]:
    """Return the command line this interpreter was started with, executable first.

    ``sys.orig_argv`` (Python 3.10+) is exact, ``-m module`` and ``-c code`` included; older
    interpreters get ``sys.executable``, the interpreter options and ``sys.argv``, which is
    right for scripts.
    """
    orig = getattr(sys, "orig_argv", None)
    if orig:
        return list(orig)
    return [sys.executable, *interpreter_argv(), *sys.argv]


def extend_pythonpath(env: MutableMapping[str, str]) -> None:
    """Put the current directory first on ``PYTHONPATH`` if the process relies on it.

    ``sys.path[0] == ''`` means the interpreter was started with ``-m`` or ``-c`` and imports
    from the current directory; the re-executed process must see the same path.
    """
    prefix = "." + os.pathsep
    existing = env.get("PYTHONPATH", "")
    if sys.path and sys.path[0] == "" and not existing.startswith(prefix):
        env["PYTHONPATH"] = prefix + existing


def _open_descriptors(max_files: int) -> list[int] | range:
    # Asking the kernel which descriptors are open beats trying each of up to a million.
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            return sorted(fd for fd in map(int, os.listdir(listing)) if 3 <= fd < max_files)
        except (OSError, ValueError):
            continue
    return range(3, max_files)


def set_cloexec(max_files: int) -> None:
    """Mark every open descriptor above stderr, below *max_files*, close-on-exec."""
    if fcntl is None:
        return
    for fd in _open_descriptors(max_files):
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            continue
        fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
