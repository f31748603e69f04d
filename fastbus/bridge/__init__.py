"""fastbus.bridge: one bus across processes and hosts, through a Redis server.

:class:`RedisBridge` is a plugin that carries chosen channels of a bus to every other bus
bridged to the same Redis server: a publish there runs the local listeners and, through Redis,
those of every other bridged bus. :class:`Sender` and :func:`send` write to bridged buses
from a process without one. The guarantees (what may be lost or repeated, and when), the wire
format and the operations are in docs/bridge.md.

It needs redis-py (``fastbus[redis]``; hiredis makes it faster). ``import fastbus`` never
imports this package: only a program that uses the bridge pays for redis-py.
"""

from __future__ import annotations

try:
    import redis as _redis  # noqa: F401  (checked here, so the error names what to install)
except ImportError as exc:  # pragma: no cover - the message is tested in a child without redis
    raise ImportError(
        "fastbus.bridge needs redis-py (redis 5 or later): install the fastbus[redis] extra "
        "(from fastbus's checkout: python -m pip install -e '.[redis]') or python -m pip install 'redis>=5'",
        name=exc.name,
    ) from exc

from ._codec import Codec, JSONCodec
from ._link import BridgeError
from ._plugin import OutboxFull, RedisBridge
from ._receiving import MessageInfo, current_message
from ._sender import Sender, send

__all__ = (
    "RedisBridge",
    "BridgeError",
    "Codec",
    "JSONCodec",
    "MessageInfo",
    "OutboxFull",
    "Sender",
    "current_message",
    "send",
)
