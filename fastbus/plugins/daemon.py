"""Daemonizer: detach the process from its terminal and parent, the classic Unix way."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, Callable

from ._simple import SimplePlugin

__all__ = ("Daemonizer",)


def _check_path(value: Any, argument: str) -> Any:
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"{argument} must be a path, not {type(value).__name__!r}")
    return value


class Daemonizer(SimplePlugin):
    """Daemonize the running script on start.

    Use it with a bus via::

        Daemonizer(bus).subscribe()

    When :meth:`start` is done, the process is completely decoupled from its parent's
    environment: forked twice, leader of no session, with the standard streams redirected
    (to ``/dev/null`` unless *stdin*, *stdout* and *stderr* name other files). Its start
    priority is 65, before the PID file (70) is written and servers start (75).

    Note that the command that started the process returns 0 as soon as the first fork
    succeeds, even if the daemon fails to start later; that exit code only tells that the
    daemonizing began, not that the server runs.

    fork() copies only the calling thread, so a process that already runs other threads
    would lose them (and any lock they held would stay locked forever in the daemon):
    :meth:`start` refuses to daemonize then, with a warning, as it refuses to daemonize a
    second time. Availability: Unix.
    """

    def __init__(
        self,
        bus: Any,
        stdin: Any = "/dev/null",
        stdout: Any = "/dev/null",
        stderr: Any = "/dev/null",
    ) -> None:
        SimplePlugin.__init__(self, bus)
        self.stdin = _check_path(stdin, "stdin")
        self.stdout = _check_path(stdout, "stdout")
        self.stderr = _check_path(stderr, "stderr")
        self.finalized = False

    def start(self) -> None:
        """Daemonize, unless done already or other threads run (then log and carry on)."""
        if self.finalized:
            # Spelled as CherryPy spells it, so that log filters written for it still match.
            self.bus.log("Already deamonized.")
            return
        # "The general problem with making fork() work in a multi-threaded world is what
        # to do with all of the threads" (POSIX fork() rationale).
        if threading.active_count() != 1:
            self.bus.log(
                "There are %r active threads. Daemonizing now may cause strange failures."
                % threading.enumerate(),
                level=30,
            )
            self.bus.log("Not daemonizing: fork() would keep only the current thread.", level=30)
            return
        self.daemonize(self.stdin, self.stdout, self.stderr, self.bus.log)
        self.finalized = True

    start.priority = 65  # type: ignore[attr-defined]

    @staticmethod
    def daemonize(
        stdin: Any = "/dev/null",
        stdout: Any = "/dev/null",
        stderr: Any = "/dev/null",
        logger: Callable[[str], Any] = lambda msg: None,
    ) -> None:
        """Fork twice, start a new session, set umask 0 and redirect the standard streams.

        The first fork returns control to the shell and lets the child start a new session
        (it is not a process group leader); the second makes sure the daemon, not being a
        session leader, can never acquire a controlling terminal again. Each parent leaves
        with ``os._exit(0)``, so that it runs no atexit hooks or buffered writes twice. A
        failed fork ends the process with a message naming the fork.
        """
        # Whatever is buffered must come out once, not once per process.
        sys.stdout.flush()
        sys.stderr.flush()

        for fork, msg in enumerate(("Forking once.", "Forking twice."), 1):
            try:
                pid = os.fork()
            except OSError as exc:
                sys.exit("%s: fork #%d failed: (%s) %s\n" % (sys.argv[0], fork, exc.errno, exc.strerror))
            if pid > 0:
                logger(msg)
                os._exit(0)
            if fork == 1:
                os.setsid()

        os.umask(0)

        # dup2 closes the old descriptor 0, 1 or 2 first, so nothing of the terminal stays.
        with open(stdin) as si, open(stdout, "a+") as so, open(stderr, "a+") as se:
            os.dup2(si.fileno(), 0)
            os.dup2(so.fileno(), 1)
            os.dup2(se.fileno(), 2)

        logger("Daemonized to PID: %s" % os.getpid())
