"""DropPrivileges: give up root once the process holds what only root could get."""

from __future__ import annotations

import os
from typing import Any

from ._simple import SimplePlugin

try:
    import grp
    import pwd
except ImportError:  # Windows
    grp = pwd = None  # type: ignore[assignment]

__all__ = ("DropPrivileges",)


def _id_or_name(value: object, argument: str) -> int | str | None:
    """Check a uid/gid argument: None, a number, or a name (str or bytes)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return os.fsdecode(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be a number or a name, not {type(value).__name__!r}")
    if value < 0:
        raise ValueError(f"{argument} must not be negative, not {value!r}")
    return value


def _user_name(uid: int) -> str | int:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # an id with no entry in the user database
        return uid


def _group_name(gid: int) -> str | int:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return gid


class DropPrivileges(SimplePlugin):
    """Drop privileges on start: switch to *uid* and *gid* and set the *umask*.

    The usual use is a server started as root so that it can bind a port below 1024, which
    then runs as an unprivileged user: :meth:`start` has priority 77, just after the HTTP
    server's start listener (75). uid and gid may be numbers or names (looked up at once,
    so a typo fails at construction); they need the ``pwd``/``grp`` modules (Unix) and are
    ignored with a warning elsewhere. Privileges are dropped once: later starts (after a
    ``stop``) only log what is in effect, since a process that gave up root cannot get it
    back; ``finalized`` tells whether that happened.
    """

    def __init__(self, bus: Any, umask: int | None = None, uid: Any = None, gid: Any = None) -> None:
        SimplePlugin.__init__(self, bus)
        self.finalized = False
        self.uid = uid
        self.gid = gid
        self.umask = umask

    @property
    def uid(self) -> int | None:
        """The uid under which to run (set a number or a user name). Availability: Unix."""
        return self._uid

    @uid.setter
    def uid(self, val: Any) -> None:
        checked = _id_or_name(val, "uid")
        uid: int | None = None
        if checked is not None:
            if pwd is None:
                self.bus.log("pwd module not available; ignoring uid.", level=30)
            elif isinstance(checked, str):
                try:
                    uid = pwd.getpwnam(checked).pw_uid
                except KeyError:
                    raise ValueError(f"uid: no such user {checked!r}") from None
            else:
                uid = checked
        self._uid = uid

    @property
    def gid(self) -> int | None:
        """The gid under which to run (set a number or a group name). Availability: Unix."""
        return self._gid

    @gid.setter
    def gid(self, val: Any) -> None:
        checked = _id_or_name(val, "gid")
        gid: int | None = None
        if checked is not None:
            if grp is None:
                self.bus.log("grp module not available; ignoring gid.", level=30)
            elif isinstance(checked, str):
                try:
                    gid = grp.getgrnam(checked).gr_gid
                except KeyError:
                    raise ValueError(f"gid: no such group {checked!r}") from None
            else:
                gid = checked
        self._gid = gid

    @property
    def umask(self) -> int | None:
        """The permission bits masked off new files and directories, e.g. ``0o022``.

        Availability: Unix, Windows.
        """
        return self._umask

    @umask.setter
    def umask(self, val: Any) -> None:
        umask: int | None = None
        if val is not None:
            if isinstance(val, bool) or not isinstance(val, int):
                raise TypeError(f"umask must be an int such as 0o022, not {type(val).__name__!r}")
            if not 0 <= val <= 0o777:
                raise ValueError(f"umask must be between 0 and 0o777, not {oct(val)}")
            if hasattr(os, "umask"):
                umask = val
            else:
                self.bus.log("umask function not available; ignoring umask.", level=30)
        self._umask = umask

    def _current_ids(self) -> tuple[str | int | None, str | int | None]:
        """Return the current (user, group) names, where the platform has them."""
        name = _user_name(os.getuid()) if pwd else None
        group = _group_name(os.getgid()) if grp else None
        return name, group

    def start(self) -> None:
        """Switch to gid, then uid (the group first, while we may still), then set umask."""
        if self.finalized:
            if not (self.uid is None and self.gid is None):
                self.bus.log("Already running as uid: %r gid: %r" % self._current_ids())
        elif self.uid is None and self.gid is None:
            if pwd or grp:
                self.bus.log("uid/gid not set", level=30)
        else:
            self.bus.log("Started as uid: %r gid: %r" % self._current_ids())
            if self.gid is not None:
                os.setgid(self.gid)
                # Supplementary groups (root's, typically) would otherwise stay.
                os.setgroups([])
            if self.uid is not None:
                os.setuid(self.uid)
            self.bus.log("Running as uid: %r gid: %r" % self._current_ids())

        if self.finalized:
            if self.umask is not None:
                self.bus.log("umask already set to: %03o" % self.umask)
        elif self.umask is None:
            self.bus.log("umask not set", level=30)
        else:
            old_umask = os.umask(self.umask)
            self.bus.log("umask old: %03o, new: %03o" % (old_umask, self.umask))

        self.finalized = True

    # Just after the HTTP server (75), which may need root to bind a low port.
    start.priority = 77  # type: ignore[attr-defined]
