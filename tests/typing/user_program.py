"""A typed program that uses fastbus as its README shows; it must pass ``mypy --strict``.

CI checks it against the installed package, from outside the source tree, as a user's
program would be (pytest does not collect it: it tests the types, not the behaviour). It
also runs, so what it type-checks is the API that really exists.

Each ``# type: ignore[code]`` below sits on a line that must be an error. ``--strict``
includes ``warn_unused_ignores``, so a comment that is no longer needed is an error too:
if ``subscribe`` lost its types (became ``Any``), these lines would stop being errors and
the check would fail, exactly as it fails on a false error.
"""

from __future__ import annotations

from typing import Any, Callable

import fastbus

bus = fastbus.Bus()


@bus.subscribe("db-save", priority=10)
def save(cart: str) -> str:
    return f"saved {cart}"


# The decorator hands the function back unchanged, type included.
saved: Callable[[str], str] = save

bus.subscribe("db-save", lambda cart: "audited", priority=20)
bus.subscribe("db-save", save, 5)  # a new priority for the same listener
results: list[Any] = bus.publish("db-save", "cart-1")
assert results == ["saved cart-1", "audited"], results

bus.unsubscribe("db-save", save)
bus.start()
bus.exit()


def misuses() -> int:
    """Never called: each line is a mistake mypy must flag."""
    save(1)  # type: ignore[arg-type]
    bus.subscribe("x", 5)  # type: ignore[call-overload]
    bus.subscribe("x", save, priority="high")  # type: ignore[call-overload]
    bus.subscribe("x", priority="high")  # type: ignore[call-overload]
    bus.unsubscribe("x", 5)  # type: ignore[arg-type]
    return save("cart")  # type: ignore[return-value]
