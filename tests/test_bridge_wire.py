"""fastbus.bridge without a server: the codec, the envelope, the names, the argument checks.

Also what importing it costs: ``import fastbus`` never imports redis-py, and importing the
bridge without redis-py says what to install.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from _redis import require_redis_py

require_redis_py()

from fastbus.bridge import Codec, JSONCodec, RedisBridge, Sender, current_message, send  # noqa: E402
from fastbus.bridge._codec import encode_message, join  # noqa: E402
from fastbus.bridge._connection import Backoff, Throttle, redact  # noqa: E402
from fastbus.bridge._wire import Malformed, cursor_key, head, parse, pubsub_channel, stream_key  # noqa: E402

# -- the JSON codec ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -1, 2**70, 1.5, "", "é ✓ 日本 \x00", [], {}, [1, [2, [3, {"a": {"b": None}}]]], {"{": "}"}],
)
def test_json_codec_round_trips_what_json_carries(value: Any) -> None:
    codec = JSONCodec()
    assert codec.decode(codec.encode(value)) == value


def test_json_codec_sends_a_tuple_as_a_list() -> None:
    codec = JSONCodec()
    assert codec.decode(codec.encode((1, (2, 3)))) == [1, [2, 3]]


@pytest.mark.parametrize(
    "value, kind, words",
    [
        ({1, 2}, TypeError, "set"),
        (b"bytes", TypeError, "bytes"),
        (object(), TypeError, "object"),
        (float("nan"), ValueError, "JSON"),
        (float("inf"), ValueError, "JSON"),
        ("\ud800", ValueError, "surrogate"),
        ({1: "int key"}, TypeError, "dict key 1 (int) is not a str"),
        ({True: "bool key"}, TypeError, "dict key True (bool)"),
        ({None: 1}, TypeError, "dict key None"),
        ([{"fine": [{"deep": {2.5: 1}}]}], TypeError, "dict key 2.5 (float)"),
        ((1, {"a": {(1, 2): 3}}), TypeError, "keys must be"),
    ],
)
def test_json_codec_refuses_what_json_would_change_or_cannot_carry(value: Any, kind: type, words: str) -> None:
    with pytest.raises(kind, match=words.replace("(", r"\(").replace(")", r"\)")):
        JSONCodec().encode(value)


def test_json_join_splices_the_encoded_messages_as_the_generic_join_would_build_them() -> None:
    codec = JSONCodec()
    parts = [codec.encode([(1, "a")]), codec.encode([(), {"k": [None]}])]
    envelope = codec.join(head("origin", "ch", 7), parts)
    assert envelope == Codec.join(codec, head("origin", "ch", 7), parts)
    assert json.loads(envelope) == {
        "fastbus": 1, "origin": "origin", "channel": "ch", "seq": 7, "messages": [[[1, "a"]], [[], {"k": [None]}]],
    }


class ReversedJSON(Codec):
    """A codec of its own (no join): JSON written backwards, to be sure nothing assumes JSON."""

    name = "reversed"

    def encode(self, value: Any) -> bytes:
        return json.dumps(value).encode()[::-1]

    def decode(self, data: bytes) -> Any:
        return json.loads(bytes(data)[::-1])


def test_a_codec_without_join_gets_the_default() -> None:
    codec = ReversedJSON()
    parts = [codec.encode([[1]]), codec.encode([[2], {"x": 3}])]
    envelope = parse(codec, join(codec, head("o", "ch", 1), parts), "ch", 1 << 20)
    assert envelope.messages == [((1,), {}), ((2,), {"x": 3})]


def test_encode_message_names_the_channel_and_the_argument() -> None:
    codec = JSONCodec()
    with pytest.raises(TypeError, match=r"channel 'ch'.*argument 2 \(set\).*json codec.*set"):
        encode_message(codec, "ch", (1, "two", {3}), {})
    with pytest.raises(TypeError, match=r"channel 'ch'.*keyword argument 'opts' \(dict\).*not a str"):
        encode_message(codec, "ch", (1,), {"fine": 2, "opts": {0: "zero"}})
    with pytest.raises(ValueError, match=r"channel 'ch'.*keyword argument 'x' \(float\)"):
        encode_message(codec, "ch", (), {"x": float("nan")})
    assert json.loads(encode_message(codec, "ch", (1,), {})) == [[1]]
    assert json.loads(encode_message(codec, "ch", (), {"k": 1})) == [[], {"k": 1}]


# -- the envelope ----------------------------------------------------------------------------------


def valid(**changes: Any) -> dict[str, Any]:
    envelope: dict[str, Any] = {"fastbus": 1, "origin": "o", "channel": "ch", "seq": 3, "messages": [[["a"]]]}
    envelope.update(changes)
    return envelope


def test_parse_reads_both_message_forms_and_ignores_unknown_fields() -> None:
    data = json.dumps(valid(messages=[[[1, 2]], [[], {"k": "v"}]], later_field="ignored")).encode()
    assert parse(JSONCodec(), data, "ch", 1000) == ("o", "ch", 3, [((1, 2), {}), ((), {"k": "v"})])


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"{", "cannot decode"),
        (b"\xff", "cannot decode"),
        (b'"text"', "not an envelope"),
        (json.dumps({"origin": "o"}).encode(), "no 'fastbus' version field"),
        (json.dumps(valid(fastbus=2)).encode(), "unknown version 2"),
        (json.dumps(valid(fastbus="1")).encode(), "unknown version '1'"),
        (json.dumps(valid(fastbus=True)).encode(), "unknown version True"),
        (json.dumps(valid(origin=7)).encode(), "origin"),
        (json.dumps(valid(channel="other")).encode(), "channel 'other'"),
        (json.dumps(valid(seq=-1)).encode(), "seq"),
        (json.dumps(valid(seq=1.0)).encode(), "seq"),
        (json.dumps(valid(messages={})).encode(), "messages"),
        (json.dumps(valid(messages=[[["a"], {}, {}]])).encode(), r"\[args\] or \[args, kwargs\]"),
        (json.dumps(valid(messages=[["a"]])).encode(), "args are not a list"),
        (json.dumps(valid(messages=[[[], []]])).encode(), "kwargs"),
        (b"x" * 101, "over max_message_bytes=100"),
    ],
)
def test_parse_refuses_what_is_not_an_envelope_and_says_why(payload: bytes, reason: str) -> None:
    with pytest.raises(Malformed, match=reason):
        parse(JSONCodec(), payload, "ch", 100 if len(payload) > 100 else 1000)


def test_redis_names_are_under_the_prefix() -> None:
    assert pubsub_channel("app", "cache") == "app:pubsub:cache"
    assert stream_key("app", "cache") == "app:stream:cache"
    assert cursor_key("app", "worker-1") == "app:cursor:worker-1"


# -- connections ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("rediss://user:s3cret@host/1", "rediss://user:***@host/1"),
        ("redis://[::1]:7000", "redis://[::1]:7000"),
        ("redis://:s3cret@[::1]:7000", "redis://:***@[::1]:7000"),
        ("redis://127.0.0.1", "redis://127.0.0.1"),
    ],
)
def test_urls_in_messages_never_show_the_password(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://127.0.0.1:6379", "malformed Redis URL 'http://127.0.0.1:6379'"),
        ("redis://127.0.0.1:port", "malformed Redis URL"),
        ("redis://:s3cret@127.0.0.1:99999999", r"malformed Redis URL 'redis://:\*\*\*@"),
        ("redis://127.0.0.1?socket_timeout=soon", "malformed Redis URL"),
        ("redis://127.0.0.1?no_such_option=1", "option redis-py does not take"),
    ],
)
def test_a_malformed_url_is_refused_where_it_is_given(url: str, words: str, bus: Any) -> None:
    with pytest.raises(ValueError, match=words) as caught:
        RedisBridge(bus, url, ["ch"])
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ValueError, match=words):
        Sender(url)


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    backoff = Backoff(0.1, 1.0)
    for ceiling in [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]:
        assert ceiling / 2 <= backoff.next() <= ceiling
    backoff.reset()
    assert backoff.next() <= 0.1


def test_throttle_logs_one_line_per_interval_and_then_counts_the_rest() -> None:
    lines: list[tuple[str, int]] = []
    throttle = Throttle(lambda message, level: lines.append((message, level)), 3600)
    for i in range(5):
        throttle("bad", f"bad {i}", 30)
    throttle("other", "other kind", 40)
    assert lines == [("bad 0", 30), ("other kind", 40)]
    throttle.interval = 0
    throttle("bad", "bad again", 30)
    assert lines[-1] == ("bad again (4 more like this in the last 0 s were not logged)", 30)


# -- arguments --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "channels, options, kind, words",
    [
        ((), {}, ValueError, "name at least one channel"),
        ("ch", {}, TypeError, "channels must be an iterable"),
        ([1], {}, TypeError, "must be a str"),
        ([""], {}, ValueError, "must not be empty"),
        (["log"], {}, ValueError, "'log' cannot be bridged"),
        (["start"], {}, ValueError, "'start' cannot be bridged"),
        (["ch"], {"prefix": ""}, ValueError, "prefix must not be empty"),
        (["ch"], {"name": 5}, TypeError, "name must be a str"),
        (["ch"], {"max_pending": 0}, ValueError, "max_pending must be 1 or more"),
        (["ch"], {"max_pending": True}, TypeError, "max_pending must be an int"),
        (["ch"], {"maxlen": 2.5}, TypeError, "maxlen must be an int"),
        (["ch"], {"max_message_bytes": -1}, ValueError, "max_message_bytes"),
        (["ch"], {"priority": float("nan")}, ValueError, "priority must not be NaN"),
        (["ch"], {"stop_timeout": -1}, ValueError, "stop_timeout"),
        (["ch"], {"retry_min": 0}, ValueError, "retry_min must be more than 0"),
        (["ch"], {"retry_min": 2, "retry_max": 1}, ValueError, "retry_max"),
        (["ch"], {"health_check_interval": "30"}, TypeError, "health_check_interval must be a real number"),
        (["ch"], {"codec": json}, TypeError, "codec must have encode"),
        (["ch"], {"url": 6379}, TypeError, "url must be a str"),
    ],
)
def test_bad_bridge_arguments_are_refused_naming_them(
    bus: Any, channels: Any, options: dict[str, Any], kind: type, words: str
) -> None:
    options = dict(options)
    url = options.pop("url", "redis://127.0.0.1:1/0")
    with pytest.raises(kind, match=words):
        RedisBridge(bus, url, channels, **options)


def test_a_bridge_takes_channels_in_order_without_repeats(bus: Any) -> None:
    bridge = RedisBridge(bus, "redis://127.0.0.1:1/0", iter(["b", "a", "b", "graceful"]), maxlen=None)
    assert bridge.channels == ("b", "a", "graceful")
    assert bridge.stats() == {
        "sent": 0, "received": 0, "pending": 0, "missed": 0, "duplicates": 0, "malformed": 0,
        "reconnects": 0, "last_error": None, "connected": False,
    }


def test_send_options_are_keyword_only_and_url_and_channel_positional_only() -> None:
    with pytest.raises(TypeError):
        send(url="redis://127.0.0.1:1/0", channel="ch")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="channel must not be empty"):
        Sender("redis://127.0.0.1:1/0").send("")
    with pytest.raises(TypeError, match="prefix must be a str"):
        Sender(prefix=None)  # type: ignore[arg-type]


def test_there_is_no_current_message_outside_a_delivery() -> None:
    assert current_message() is None


# -- imports ----------------------------------------------------------------------------------------


def child(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=60
    )


def test_import_fastbus_imports_neither_the_bridge_nor_redis(core_env: dict[str, str]) -> None:
    done = child(core_env, """
        import sys
        before = {"redis", "fastbus.bridge"} & set(sys.modules)
        import fastbus, fastbus.plugins
        print(sorted(before), sorted({"redis", "fastbus.bridge"} & set(sys.modules)))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "[]"]


def test_importing_the_bridge_without_redis_says_what_to_install(core_env: dict[str, str]) -> None:
    done = child(core_env, """
        import sys
        sys.modules["redis"] = None  # as if redis-py were not installed
        import fastbus.bridge
    """)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: fastbus.bridge needs redis-py"), last
    assert "fastbus[redis]" in last and "python -m pip install -e '.[redis]'" in last
