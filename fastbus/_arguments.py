"""Argument checks shared by both cores, so that both reject bad input with the same words.

The compiled core tests the common cases inline and only calls in here to build the error, so
these run on the slow path only.
"""

from __future__ import annotations

import numbers
from functools import partial
from types import BuiltinMethodType, FunctionType, GeneratorType, MethodType, MethodWrapperType, ModuleType
from typing import Any, Callable, TypeVar

__all__ = (
    "awaitable",
    "check_callback",
    "check_channel",
    "check_flag",
    "check_priority",
    "check_weak",
    "check_real",
    "check_seconds",
    "is_async",
    "resolve_priority",
    "subscriber",
)

DEFAULT_PRIORITY = 50
# inspect's code flags, without importing inspect for two constants.
CO_COROUTINE = 0x80
CO_ITERABLE_COROUTINE = 0x100

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


def check_flag(value: object, argument: str) -> None:
    """Raise TypeError unless *value* is True or False (a typo'd truthy value is a mistake)."""
    if value is not True and value is not False:
        raise TypeError(f"{argument} must be True or False, not {_kind(value)!r}")


def check_weak(callback: object) -> None:
    """Raise TypeError unless a weak reference to *callback* lives as long as its owner.

    A built-in method bound to an object (``some_list.append``) is made anew on each attribute
    access, so a weak reference to it would die at once and the subscription with it: it is
    refused here rather than silently dropped. (A bound Python method is held through its
    object and function instead, so it is fine.)
    """
    if isinstance(callback, (BuiltinMethodType, MethodWrapperType)):
        owner = getattr(callback, "__self__", None)
        if owner is not None and not isinstance(owner, ModuleType):
            raise TypeError(
                f"callback {callback!r} cannot be held weakly: a built-in method is made anew on "
                "each access, so a weak reference to it would die at once; subscribe it with weak=False"
            )


def subscriber(
    subscribe: Callable[..., object], channel: object, priority: object, weak: object = False, once: object = False
) -> Callable[[_F], _F]:
    """Return the decorator form of ``subscribe(channel, priority=priority, weak=weak, once=once)``.

    The arguments are checked now, where the mistake was made, not when the decorator is
    applied. The decorator returns the function itself, so the decorated name stays usable
    (wspbus returns None there).
    """
    check_channel(channel)
    if priority is not None:
        check_priority(priority)
    check_flag(weak, "weak")
    check_flag(once, "once")

    def decorate(callback: _F) -> _F:
        if weak or once:
            subscribe(channel, callback, priority, weak=weak, once=once)
        else:
            subscribe(channel, callback, priority)
        return callback

    return decorate


def is_async(callback: object) -> bool:
    """Whether calling *callback* gives a coroutine to await, as far as can be told beforehand.

    True for ``async def`` functions, bound methods and ``functools.partial`` objects of them,
    functions marked with ``inspect.markcoroutinefunction``, and objects whose ``__call__`` is
    an ``async def`` method. A plain function that merely returns an awaitable cannot be told
    apart from any other function: this says False for it.
    """
    while isinstance(callback, partial):
        callback = callback.func
    if isinstance(callback, MethodType):
        callback = callback.__func__
    if type(callback) is FunctionType:
        if callback.__code__.co_flags & CO_COROUTINE:
            return True
        if not callback.__dict__:  # no room for a marker: settled without importing inspect
            return False
    elif not callable(callback):
        return False
    import inspect

    if inspect.iscoroutinefunction(callback):
        return True
    return inspect.iscoroutinefunction(type(callback).__call__)


def awaitable(value: object) -> bool:
    """Whether ``await value`` works: a coroutine, any object with ``__await__``, or a
    generator-based coroutine (``types.coroutine``)."""
    if hasattr(type(value), "__await__"):
        return True
    return type(value) is GeneratorType and bool(value.gi_code.co_flags & CO_ITERABLE_COROUTINE)
