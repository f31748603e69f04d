"""fastbus on each core against wspbus and the floor: publish, and subscribe+unsubscribe.

``pytest benchmarks`` runs it; ``python benchmarks/ratios.py FILE`` turns a
``--benchmark-json FILE`` into the ratios we track (see docs/performance.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from fastbus.bench._measure import compile_function

PUBLISHERS = ["floor", "fastbus-c", "fastbus-py", "wspbus"]
REGISTRIES = ["fastbus-c", "fastbus-py", "wspbus"]


@pytest.mark.parametrize("size", [0, 1, 10, 100, 10_000])
@pytest.mark.parametrize("contender", PUBLISHERS)
def test_publish(benchmark: Any, build: Any, publish_call: Any, contender: str, size: int) -> None:
    """Publish one positional argument to *size* no-op subscribers (10,000: per-subscriber cost)."""
    benchmark.group = f"publish-{size}"
    function, args = publish_call(contender, build(contender, size))
    assert len(function(*args)) == size
    benchmark(function, *args)


@pytest.mark.parametrize("size", [100, 10_000])
@pytest.mark.parametrize("contender", REGISTRIES)
def test_subscribe_unsubscribe(
    benchmark: Any, build: Any, extra: Any, contender: str, size: int
) -> None:
    """Subscribe one more callback to a channel holding *size*, then unsubscribe it.

    The two calls run inside one small function (compiled from the same statement that
    ``python -m fastbus.bench`` times), whose call is part of the figure, alike for all.
    """
    benchmark.group = f"subscribe-unsubscribe-{size}"
    built = build(contender, size)
    benchmark(compile_function(built.churn, dict(built.env, extra=extra)))
    assert len(built.env["publish"]("ch", 1)) == size  # the bus is as it was
