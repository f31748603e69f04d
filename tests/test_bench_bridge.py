"""``python -m fastbus.bench --bridge``: a tiny real run (its own redis-server, a real child
process, real messages) and its options; never its timings.

The bench starts its own redis-server, so these tests need only the executable: without it
they skip, as the bridge tests do, and FASTBUS_REQUIRE_REDIS=1 (CI) makes that a failure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from _commands import install_commands, install_problems
from _redis import server_binary

from fastbus.bench import _bridge, _server, main

CASES = list(_bridge.CASES)


@pytest.fixture
def redis_server_executable() -> str:
    """The redis-server the bench will find; skips as the bridge tests do where there is none."""
    return server_binary()


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> _bridge.Settings:
    settings = _bridge.Settings("quick", rounds=2, messages=300, paced=20, rate=2_000)
    monkeypatch.setattr(_bridge, "QUICK", settings)
    return settings


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> list[_server.RedisServer]:
    """Every RedisServer the run makes, to check that each is gone afterwards."""
    made: list[_server.RedisServer] = []

    class Recorded(_server.RedisServer):
        def start(self) -> None:
            made.append(self)
            super().start()

    monkeypatch.setattr(_server, "RedisServer", Recorded)
    return made


def test_a_tiny_run_measures_every_case(
    redis_server_executable: str, tiny: _bridge.Settings, servers: list[Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "bridge.json"
    assert main(["--bridge", "--quick", "--json", str(path)]) == 0
    out, err = capsys.readouterr()
    result = json.loads(path.read_text())

    assert result["schema"] == 1 and result["benchmark"] == "bridge"
    assert result["active_core"] in {"compiled", "pure"} and result["sender_core"] == result["active_core"]
    assert result["settings"]["messages"] == tiny.messages and result["settings"]["rounds"] == tiny.rounds
    assert set(result["redis"]) == {"server", "redis_py", "hiredis"} and result["redis"]["server"]
    assert [c["case"] for c in result["cases"]] == CASES
    ran = [c["case"] for c in result["cases"] if c["status"] == "ran"]
    assert [r["case"] for r in result["results"]] == ran
    assert {"redis-py PUBLISH", "redis-py PUBLISH ×100", "redis-py XADD", "redis-py XADD ×100"} <= set(ran)
    try:
        import fastbus.bridge  # noqa: F401
    except ImportError:
        skipped = {c["case"]: c["reason"] for c in result["cases"] if c["status"] == "skipped"}
        assert set(skipped) == {"bridge pub/sub", "bridge durable"}
    else:
        assert ran == CASES  # nothing skipped where the bridge is importable

    for r in result["results"]:
        # Every message arrived, in every round: a rate for each, a latency for each message.
        assert r["lost"] == 0, r
        assert len(r["rates"]) == tiny.rounds and all(rate > 0 for rate in r["rates"])
        assert r["rate"] == max(r["rates"]) and r["send_rate"] > 0
        burst = r["burst_latency"]
        assert burst["count"] == tiny.messages * tiny.rounds
        assert 0 < burst["p50_ns"] <= burst["p99_ns"] <= burst["max_ns"]
        if _bridge.CASES[r["case"]].paced:
            assert r["paced_latency"]["count"] == tiny.paced * tiny.rounds
        else:
            assert r["paced_latency"] is None
        if r["via"] == "bridge":  # the receiving bridge's stats() after each round
            assert len(r["bridge_stats"]) == tiny.rounds
            for stats in r["bridge_stats"]:
                assert stats["received"] >= tiny.messages + tiny.paced
                assert stats["missed"] == 0 and stats["malformed"] == 0
        else:
            assert r["bridge_stats"] is None
    assert [t["target"] for t in result["targets"]] == [t[0] for t in _bridge.TARGETS]

    assert "msgs/s" in out and "sent/s" in out and "paced p50" in out and "Targets (reported, never asserted" in out
    for case in ran:
        assert case in out
    assert "[  1/" in err  # progress went to stderr

    # The server is gone, and so is its directory.
    (server,) = servers
    assert server._proc is None and server._dir is None


def test_the_plot_is_written(redis_server_executable: str, tiny: _bridge.Settings, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    tiny.rounds = 1
    path = tmp_path / "bridge.png"
    assert main(["--bridge", "--quick", "--plot", str(path)]) == 0
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--bridge", "--sizes", "1"], "--sizes is for the in-process benchmark, not --bridge"),
        (["--bridge", "--contenders", "floor"], "--contenders is for the in-process benchmark, not --bridge"),
        (["--redis-server", "/usr/bin/redis-server"], "--redis-server goes with --bridge"),
        (["--bridge", "--json", "{tmp}/missing/out.json"], "does not exist"),
    ],
)
def test_bad_options_are_clear_errors(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    assert main(["--quick", *argv]) == 2
    out, err = capsys.readouterr()
    assert message in err and "Traceback" not in err and out == ""


def test_a_missing_redis_server_says_how_to_get_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("redis")
    missing = tmp_path / "no-such-redis-server"
    assert main(["--bridge", "--quick", "--redis-server", str(missing)]) == 1
    out, err = capsys.readouterr()
    assert f"{missing} not found; install it with: apt-get install redis-server" in err
    assert out == ""


def test_without_redis_py_every_case_is_skipped_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # import raises ImportError
    assert main(["--bridge", "--quick"]) == 1
    err = capsys.readouterr().err
    assert "none of the bridge cases can run here" in err
    lines = [line for line in err.splitlines() if line.startswith("redis-py PUBLISH: skipped: ")]
    (command,) = install_commands(lines[0])
    assert command == "python -m pip install redis" and install_problems(command) == []


def test_help_documents_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--bridge" in out and "--redis-server" in out and "raw redis-py" in out
