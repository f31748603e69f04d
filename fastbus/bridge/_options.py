"""Checks of the options that bridges and senders share: bad input fails where it is given."""

from __future__ import annotations

from collections.abc import Iterable

from .._arguments import check_seconds

__all__ = ("RESERVED", "check_channels", "check_count", "check_name", "check_timeout")

RESERVED = {
    "start": "the bus's own start",
    "stop": "the bus's own stop",
    "exit": "the bus's own exit",
    "main": "the bus's block() loop, every interval",
    "log": "every log line, the bridge's own among them",
}
"""Lifecycle channels a bridge refuses, and why: a publish is not a state change, and these
would run another bus's lifecycle listeners without moving its state (``graceful`` is fine:
it is only a publish). Bridge an application channel whose listener calls ``bus.exit()``."""


def check_count(value: object, argument: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be an int, not {type(value).__name__!r}")
    if value < 1:
        raise ValueError(f"{argument} must be 1 or more, not {value!r}")


def check_timeout(value: object, argument: str) -> None:
    check_seconds(value, argument)
    if not value:
        raise ValueError(f"{argument} must be more than 0 seconds")


def check_name(value: object, argument: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, str):
        raise TypeError(f"{argument} must be a str, not {type(value).__name__!r}")
    if not value:
        raise ValueError(f"{argument} must not be empty")


def check_channels(channels: object) -> tuple[str, ...]:
    """The bridged channels, checked, duplicates dropped, in the order given."""
    if isinstance(channels, (str, bytes)) or not isinstance(channels, Iterable):
        raise TypeError(f"channels must be an iterable of channel names (str), not {type(channels).__name__!r}")
    found: dict[str, None] = {}
    for channel in channels:
        if not isinstance(channel, str):
            raise TypeError(
                f"channels: a bridged channel must be a str (its Redis name is made from it), not {channel!r}"
            )
        if not channel:
            raise ValueError("channels: a channel name must not be empty")
        if channel in RESERVED:
            raise ValueError(
                f"channels: {channel!r} cannot be bridged: it carries {RESERVED[channel]}, and a delivery "
                "is only a publish; bridge an application channel whose listener acts instead"
            )
        found[channel] = None
    if not found:
        raise ValueError("channels: name at least one channel to bridge")
    return tuple(found)
