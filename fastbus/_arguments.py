"""Argument checks shared by both cores, so that both reject bad input with the same words.

The compiled core tests the common cases inline and only calls in here to build the error, so
these run on the slow path only.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, TypeVar

__all__ = (
    "check_callback",
    "check_channel",
    "check_priority",
    "check_real",
    "check_seconds",
    "resolve_priority",
    "subscriber",
)

DEFAULT_PRIORITY = 50

_F = TypeVar("_F", bound=Callable[..., Any])


def _kind(value: object) -> str:
    return type(value).__name__


def check_channel(channel: object) -> None:
    """Raise TypeError unless *channel* can name a channel (it must be hashable)."""
    try:
        hash(channel)
    except TypeError:
        raise TypeError(f"channel must be hashable, not {_kind(channel)!r}") from None


def check_callback(callback: object) -> None:
    """Raise TypeError unless *callback* is callable and hashable."""
    if not callable(callback):
        raise TypeError(f"callback must be callable, not {_kind(callback)!r}")
    try:
        hash(callback)
    except TypeError:
        raise TypeError(
            f"callback must be hashable, not {_kind(callback)!r}: "
            "the bus keeps a set of callbacks per channel"
        ) from None


def check_real(value: object, argument: str) -> None:
    """Raise TypeError unless *value* is a real number (a bool is not), ValueError if NaN.

    The one check behind priorities, intervals and frequencies, so that they all accept the
    same numbers (int, float, Fraction, any ``numbers.Real``) and say so in the same words.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a real number, not {_kind(value)!r}")
    if value != value:
        raise ValueError(f"{argument} must not be NaN")


def check_seconds(value: object, argument: str) -> None:
    """Raise unless *value* is a real number of seconds, zero or more."""
    check_real(value, argument)
    # numbers.Real promises < but not >=.
    if value < 0:  # type: ignore[operator]
        raise ValueError(f"{argument} must be zero or more seconds, not {value!r}")


def check_priority(priority: object, source: str = "priority") -> None:
    """Raise unless *priority* is a real number other than a bool, and not NaN."""
    try:
        check_real(priority, source)
    except ValueError:
        raise ValueError(f"{source} must not be NaN: listeners could not be ordered") from None


def resolve_priority(callback: object, priority: object) -> Any:
    """Return the priority to subscribe *callback* with, checked.

    An explicit *priority* wins; otherwise the callback's ``priority`` attribute (the way
    CherryPy's plugins declare theirs), else 50. A callable ``priority`` attribute is a method
    of the callback's, not a priority (a mock has every attribute), and is passed over.
    """
    if priority is None:
        priority = getattr(callback, "priority", DEFAULT_PRIORITY)
        if callable(priority):
            return DEFAULT_PRIORITY
        check_priority(priority, "callback.priority")
    else:
        check_priority(priority)
    return priority


def subscriber(subscribe: Callable[..., object], channel: object, priority: object) -> Callable[[_F], _F]:
    """Return the decorator form of ``subscribe(channel, priority=priority)``.

    The channel and an explicit priority are checked now, where the mistake was made, not
    when the decorator is applied. The decorator returns the function itself, so the decorated
    name stays usable (wspbus returns None there).
    """
    check_channel(channel)
    if priority is not None:
        check_priority(priority)

    def decorate(callback: _F) -> _F:
        subscribe(channel, callback, priority=priority)
        return callback

    return decorate
