"""The wire format: the Redis names under a prefix, and the versioned envelope.

Everything a program in another language needs to publish to bridged buses or listen to them
is here, and docs/bridge.md says it in prose:

* pub/sub mode publishes to the Redis channel ``{prefix}:pubsub:{channel}``;
* durable mode adds entries to the stream ``{prefix}:stream:{channel}``, each with one field,
  ``data``; a named bridge keeps its cursor in the hash ``{prefix}:cursor:{name}`` (field: the
  channel, value: the id of the last entry it delivered);
* a payload (a PUBLISH message or a stream entry's ``data``) is one envelope, by default the
  JSON object ``{"fastbus": 1, "origin": ..., "channel": ..., "seq": ..., "messages": [...]}``
  whose messages are ``[args]`` or ``[args, kwargs]``, numbered ``seq``, ``seq + 1``, ... per
  origin and channel.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ._codec import codec_name

__all__ = (
    "DATA_FIELD",
    "VERSION",
    "Envelope",
    "Malformed",
    "cursor_key",
    "head",
    "parse",
    "pubsub_channel",
    "stream_key",
)

VERSION = 1
"""The envelope version this code writes and reads."""

DATA_FIELD = b"data"
"""The field of a stream entry that holds the envelope."""


def pubsub_channel(prefix: str, channel: str) -> str:
    """The Redis pub/sub channel that carries bus channel *channel*."""
    return f"{prefix}:pubsub:{channel}"


def stream_key(prefix: str, channel: str) -> str:
    """The Redis stream that carries bus channel *channel* in durable mode."""
    return f"{prefix}:stream:{channel}"


def cursor_key(prefix: str, name: str) -> str:
    """The Redis hash where the durable bridge named *name* keeps its cursor, per channel."""
    return f"{prefix}:cursor:{name}"


def head(origin: str, channel: str, seq: int) -> dict[str, Any]:
    """The envelope without its messages (the codec's ``join`` adds them)."""
    return {"fastbus": VERSION, "origin": origin, "channel": channel, "seq": seq}


class Envelope(NamedTuple):
    """One received envelope, checked: its messages are ``(args, kwargs)`` pairs."""

    origin: str
    channel: str
    seq: int
    messages: list[tuple[tuple[Any, ...], dict[str, Any]]]


class Malformed(Exception):
    """A payload on the bridge's Redis names that the bridge cannot deliver; says why."""


def _kind(value: object) -> str:
    return type(value).__name__


def parse(codec: Any, data: bytes, channel: str, limit: int) -> Envelope:
    """Decode and check the envelope *data* that arrived for *channel*; Malformed if it is not one.

    Everything is checked before anything is delivered, so a payload is delivered whole or
    not at all. Fields this version does not know are ignored, so that later versions of
    version 1 can add some.
    """
    if len(data) > limit:
        raise Malformed(f"a payload of {len(data)} bytes, over max_message_bytes={limit}")
    try:
        value = codec.decode(data)
    except Exception as exc:
        raise Malformed(f"a payload the {codec_name(codec)} codec cannot decode ({_kind(exc)}: {exc})") from None
    if not isinstance(value, dict):
        raise Malformed(f"a payload that is not an envelope (a {_kind(value)}, not a map)")
    version = value.get("fastbus")
    if version is None:
        raise Malformed("a payload that is not a fastbus envelope (no 'fastbus' version field)")
    if type(version) is not int or version != VERSION:
        raise Malformed(f"an envelope of unknown version {version!r} (this bridge reads version {VERSION})")
    origin = value.get("origin")
    if not isinstance(origin, str) or not origin:
        raise Malformed(f"an envelope whose origin is not a non-empty string: {origin!r}")
    if value.get("channel") != channel:
        raise Malformed(f"an envelope for channel {value.get('channel')!r} on the Redis name of {channel!r}")
    seq = value.get("seq")
    if type(seq) is not int or seq < 1:
        raise Malformed(f"an envelope whose seq is not a positive integer: {seq!r}")
    raw = value.get("messages")
    if not isinstance(raw, (list, tuple)) or not raw:
        raise Malformed(f"an envelope whose messages are not a non-empty list: {_kind(raw)}")
    messages = []
    for message in raw:
        if not isinstance(message, (list, tuple)) or not 1 <= len(message) <= 2:
            raise Malformed(f"a message that is not [args] or [args, kwargs]: {message!r:.80}")
        args = message[0]
        kwargs = message[1] if len(message) == 2 else {}
        if not isinstance(args, (list, tuple)):
            raise Malformed(f"a message whose args are not a list: {_kind(args)}")
        if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
            raise Malformed(f"a message whose kwargs are not a map with string keys: {kwargs!r:.80}")
        messages.append((tuple(args), kwargs))
    return Envelope(origin, channel, seq, messages)
