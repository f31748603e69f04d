"""The five states of the bus's process state machine.

They are plain singletons compared by identity, exactly as wspbus's are, so that code written
for ``cherrypy.engine.state == engine.states.STARTED`` keeps working unchanged::

                    O
                    |
                    V
   STOPPING --> STOPPED --> EXITING -> X
      A   A         |
      |    \\___     |
      |        \\    |
      |         V   V
    STARTED <-- STARTING
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ("State", "states")


class State:
    """One state of the bus; its ``repr`` is ``states.NAME``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"states.{self.name}"

    def __reduce__(self) -> str:
        # Pickle by reference, so the identity comparisons hold after a round trip.
        return f"states.{self.name}"


class _States:
    """The namespace of states, iterable in lifecycle order."""

    __slots__ = ("STOPPED", "STARTING", "STARTED", "STOPPING", "EXITING")

    STOPPED: State
    STARTING: State
    STARTED: State
    STOPPING: State
    EXITING: State

    def __init__(self) -> None:
        for name in self.__slots__:
            object.__setattr__(self, name, State(name))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("the bus states are fixed")

    def __iter__(self) -> Iterator[State]:
        return iter([getattr(self, name) for name in self.__slots__])

    def __repr__(self) -> str:
        return "states"


states = _States()
