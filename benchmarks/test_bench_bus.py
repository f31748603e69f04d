"""The cases of ``python -m fastbus.bench`` under pytest-benchmark: every contender publishing
in each call shape to 0 … 10,000 subscribers, and subscribe+unsubscribe at each size.

``pytest benchmarks`` runs it; ``python benchmarks/ratios.py FILE`` turns a
``--benchmark-json FILE`` into the ratios we track (see docs/performance.md). Groups are named
``publish-SHAPE-N`` and ``subscribe-unsubscribe-N`` so ``--benchmark-compare`` lines runs up
across commits. The command interleaves its rounds and is the better instrument on a shared
machine; this suite is for comparing commits.
"""

from __future__ import annotations

from typing import Any

import pytest

from fastbus.bench._cli import DEFAULT_SIZES as SIZES  # 0, 1, 10, 100, 1,000, 10,000
from fastbus.bench._contenders import CONTENDERS, SHAPES
from fastbus.bench._measure import compile_function

# At most a quarter of a second per case (see conftest.py): these 168 would take 3½ minutes
# at pytest-benchmark's default of up to a second.
pytestmark = pytest.mark.usefixtures("short_rounds")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("contender", list(CONTENDERS))
def test_publish(benchmark: Any, build: Any, contender: str, shape: str, size: int) -> None:
    """Publish to *size* no-op subscribers with *shape* (10,000: the per-subscriber cost).

    The benchmark calls the contender's publish bare, with the arguments the command uses.
    """
    benchmark.group = f"publish-{shape}-{size}"
    built = build(contender, size)
    if shape not in built.publish:
        why = CONTENDERS[contender].gaps[0]  # the first gap names the shapes it lacks
        pytest.skip(f"{contender} does not publish with {SHAPES[shape][1]}: {why}")
    function, args, kwargs = built.call(shape)
    result = function(*args, **kwargs)
    if isinstance(result, list):  # those that return results return one per subscriber
        assert len(result) == size
    benchmark(function, *args, **kwargs)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("contender", list(CONTENDERS))
def test_subscribe_unsubscribe(
    benchmark: Any, build: Any, extra: Any, contender: str, size: int
) -> None:
    """Subscribe one more callback to a channel holding *size*, then unsubscribe it.

    The two calls run inside one small function (compiled from the same statement that
    ``python -m fastbus.bench`` times), whose call is part of the figure, alike for all.
    """
    benchmark.group = f"subscribe-unsubscribe-{size}"
    built = build(contender, size)
    if built.churn is None:
        pytest.skip(f"{contender} has no registry to subscribe to")
    before = _count(built)
    benchmark(compile_function(built.churn, dict(built.env, extra=extra)))
    assert _count(built) == before  # the registry is as it was


def _count(built: Any) -> Any:
    # What a publish reaches, where the contender says (it returns one result per subscriber).
    if "publish" in built.env:
        return len(built.env["publish"]("ch", 1))
    return None
