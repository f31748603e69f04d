"""Codecs: how the arguments of a message become bytes on the wire, and back.

JSON is the default, because every language reads it and because decoding it can never run
code. The bridge never unpickles what comes off the network: anyone who can write to the Redis
server could otherwise run code in every bridged process. Another codec (msgpack, say) can be
plugged in explicitly, the same one on every bridge and sender of a prefix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ("Codec", "JSONCodec", "check_codec", "codec_name", "encode_message", "join", "largest_argument")


class Codec:
    """What a codec does, and a base class to make one.

    A codec turns values into bytes and back. A subclass defines :meth:`encode` and
    :meth:`decode`; :meth:`join` has a default that works for any codec. Any object with
    ``encode`` and ``decode`` methods will do: the bridge falls back to the default ``join``
    when it has none.

    The bridge calls :meth:`encode` on each message at the publish, so that an argument the
    codec cannot encode is refused there; it then joins the encoded messages of a batch into
    one envelope with :meth:`join`, and decodes the envelopes it receives with :meth:`decode`.
    Either of ``encode`` and ``decode`` signals a value it cannot handle by raising
    (``encode``: TypeError or ValueError, as :func:`json.dumps` does).

    A msgpack codec, for instance::

        import msgpack
        from fastbus.bridge import Codec

        class MsgpackCodec(Codec):
            name = "msgpack"

            def encode(self, value):
                return msgpack.packb(value)

            def decode(self, data):
                return msgpack.unpackb(data)
    """

    name = "custom"
    """The codec's name, for error messages and logs."""

    def encode(self, value: Any) -> bytes:
        """Return *value* encoded; raise TypeError or ValueError if it cannot be."""
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        """Return the value that *data* encodes; raise anything if it does not encode one."""
        raise NotImplementedError

    def join(self, head: Mapping[str, Any], parts: Sequence[bytes]) -> bytes:
        """Encode the envelope *head* plus ``"messages"``: the messages *parts* encode.

        The default decodes each part and encodes the whole again; a codec whose format allows
        it joins the encoded parts as they are (the JSON codec does), which costs nothing per
        message.
        """
        return self.encode({**head, "messages": [self.decode(part) for part in parts]})


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class JSONCodec(Codec):
    """JSON (UTF-8, compact), the default codec: what every language can read.

    It sends None, bool, int, float, str, lists (tuples arrive as lists) and dicts with str
    keys, nested in any way. It refuses what JSON cannot carry faithfully rather than change
    it on the way: other types, NaN and the infinities (not JSON), strings that are not valid
    Unicode (lone surrogates) and dict keys that are not str (JSON would make ``{1: x}``
    arrive as ``{"1": x}``). Integers of any size are sent; readers in other languages may
    hold only 53 or 64 bits of them.
    """

    name = "json"

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        self._decoder = json.JSONDecoder(parse_constant=_refuse_constant)

    def encode(self, value: Any) -> bytes:
        text = self._encoder.encode(value)
        # Only a dict can hide a key that JSON would quietly turn into a string, and a text
        # without "{" holds none: most messages skip the walk.
        if "{" in text:
            _check_keys(value)
        return text.encode("utf-8")

    def decode(self, data: bytes) -> Any:
        return self._decoder.decode(bytes(data).decode("utf-8"))

    def join(self, head: Mapping[str, Any], parts: Sequence[bytes]) -> bytes:
        opening = self._encoder.encode(dict(head, messages=[]))
        # The opening ends with the empty list's "[]}": the parts go between its brackets.
        return b"".join((opening[:-2].encode("utf-8"), b",".join(parts), b"]}"))


def _check_keys(value: Any) -> None:
    """Raise TypeError if a dict anywhere in *value* has a key that is not a str."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, member in item.items():
                if not isinstance(key, str):
                    raise TypeError(
                        f"dict key {key!r} ({type(key).__name__}) is not a str: "
                        "JSON would deliver it as a string"
                    )
                if isinstance(member, (dict, list, tuple)):
                    stack.append(member)
        elif isinstance(item, (list, tuple)):
            stack.extend(member for member in item if isinstance(member, (dict, list, tuple)))


def check_codec(codec: Any) -> Codec:
    """Return *codec*, or the JSON codec for None; TypeError if it cannot encode and decode."""
    if codec is None:
        return JSONCodec()
    for method in ("encode", "decode"):
        if not callable(getattr(codec, method, None)):
            raise TypeError(
                f"codec must have encode() and decode() methods; {type(codec).__name__!r} has no {method}()"
            )
    return codec  # type: ignore[no-any-return]


def codec_name(codec: Any) -> str:
    return str(getattr(codec, "name", type(codec).__name__))


def join(codec: Any, head: Mapping[str, Any], parts: Sequence[bytes]) -> bytes:
    """``codec.join(head, parts)``, or :meth:`Codec.join`'s default for a codec without one."""
    joiner = getattr(codec, "join", None)
    if joiner is None:
        return Codec.join(codec, head, parts)
    return joiner(head, parts)  # type: ignore[no-any-return]


def message_value(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """The value one message is on the wire: ``[args]``, or ``[args, kwargs]`` if there are any."""
    return [args, kwargs] if kwargs else [args]


def encode_message(codec: Any, channel: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """Encode one message of *channel*, or say which argument the codec refused.

    Raises TypeError or ValueError (as the codec did) naming the channel and the argument.
    """
    try:
        return bytes(codec.encode(message_value(args, kwargs)))
    except Exception as exc:
        raise _refusal(codec, channel, args, kwargs, exc) from exc


def _refusal(
    codec: Any, channel: str, args: tuple[Any, ...], kwargs: dict[str, Any], error: Exception
) -> Exception:
    """The error for a message *codec* failed to encode: the first argument it refuses alone."""
    suspects = [(f"argument {i}", value) for i, value in enumerate(args)]
    suspects += [(f"keyword argument {key!r}", value) for key, value in kwargs.items()]
    where, value = "the message", None
    for suspect, suspect_value in suspects:
        try:
            codec.encode(suspect_value)
        except Exception as exc:
            where, value, error = suspect, suspect_value, exc
            break
    kind = TypeError if isinstance(error, TypeError) else ValueError
    what = f" ({type(value).__name__})" if where != "the message" else ""
    return kind(
        f"cannot send channel {channel!r} through the bridge: {where}{what} cannot be encoded "
        f"by the {codec_name(codec)} codec: {error}"
    )


def largest_argument(codec: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, int]:
    """``(name, encoded size)`` of the argument that takes the most bytes (for an error)."""
    sizes = [(f"argument {i}", value) for i, value in enumerate(args)]
    sizes += [(f"keyword argument {key!r}", value) for key, value in kwargs.items()]
    best = ("the message", 0)
    for where, value in sizes:
        size = len(codec.encode(value))
        if size > best[1]:
            best = (where, size)
    return best
