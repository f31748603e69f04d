"""The cases of ``python -m fastbus.bench --async`` under pytest-benchmark: publishing from a
coroutine to 0 … 10,000 plain and ``async def`` no-op listeners, on each core, beside fastbus's
``publish``, the floor and blinker's ``send_async``.

Groups are ``apublish-sync-N`` and ``apublish-async-N`` (the listeners' kind and their count),
so the rows of one case sit side by side; the parameters ``contender`` and ``api`` name a row
(``fastbus-c`` ``apublish``), which ``benchmarks/ratios.py`` reads for the two targets.

Driving: each case gets one long-lived coroutine running its statement (the command's own,
``await apublish('ch', 1)`` or ``publish('ch', 1)``), and the benchmark calls that coroutine's
``send(None)``: each call runs one publish, awaiting as a coroutine does, and suspends; see
:func:`fastbus.bench._async.compile_pump`. That costs every row the same. No event loop runs,
so pyee, which schedules tasks that only a loop runs, is skipped here: the command measures
it. Listeners that are no-ops never suspend, so nothing else needs a loop.
"""

from __future__ import annotations

from typing import Any

import pytest

from fastbus.bench._async import KINDS, SIDES, compile_pump
from fastbus.bench._cli import DEFAULT_SIZES as SIZES  # 0, 1, 10, 100, 1,000, 10,000

pytestmark = pytest.mark.usefixtures("short_rounds")

# Every (contender, api) row of the command, in its order.
ROWS = list(dict.fromkeys((name, api) for name, make in SIDES.items() for apis in make().apis.values() for api in apis))


def _first_result(stmt: str, env: dict[str, Any]) -> Any:
    """What the statement's one call returns (awaited), for a check before timing."""
    namespace = dict(env)
    params = ", ".join(f"{name}={name}" for name in env)
    exec(f"async def first({params}):\n    return {stmt}\n", namespace)  # one line: an expression
    coroutine = namespace["first"]()
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise AssertionError(f"{stmt!r} suspended: its listeners are no-ops and must not")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("listeners", list(KINDS))
@pytest.mark.parametrize(("contender", "api"), ROWS, ids=[f"{name}-{api}" for name, api in ROWS])
def test_apublish(benchmark: Any, build_async: Any, contender: str, api: str, listeners: str, size: int) -> None:
    """One publish from a coroutine to *size* no-op listeners of kind *listeners*."""
    benchmark.group = f"apublish-{listeners}-{size}"
    case = build_async(contender, api, listeners, size)
    if case.needs_loop:
        pytest.skip(f"{contender} {api} schedules tasks that only an event loop runs: "
                    "python -m fastbus.bench --async measures it")
    result = _first_result(case.stmt, case.env)
    if isinstance(result, list):  # those that return results return one per listener
        assert len(result) == size
    send = compile_pump(case.stmt, case.env)
    try:
        benchmark(send, None)
    finally:
        send.__self__.close()  # type: ignore[attr-defined]
