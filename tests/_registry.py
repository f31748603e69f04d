"""Reading a channel's registry through the public API, in the shape the tests compare."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Callable


def entries(bus: Any, channel: Hashable) -> list[tuple[Any, Callable[..., Any]]]:
    """``(priority, callback)`` for each listener of *channel*, in call order."""
    return [(s.priority, s.callback) for s in bus.subscriptions(channel)]
