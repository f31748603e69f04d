from collections.abc import Iterable
from typing import Any, Callable

__all__ = ("Floor",)

class Floor:
    """``Floor(callbacks).call(*args, **kwargs)``: call each callback, return the results."""

    def __init__(self, callbacks: Iterable[Callable[..., Any]]) -> None: ...
    def __len__(self) -> int: ...
    def call(self, /, *args: Any, **kwargs: Any) -> list[Any]: ...
