"""Fixtures for the pytest-benchmark suite: the contenders of ``python -m fastbus.bench``.

The suite reuses the command's contenders and callbacks, so the two never measure different
things under the same name. A contender that cannot run here (no build, no floor) is skipped.
Each case sets ``benchmark.group`` to ``publish-N`` or ``subscribe-unsubscribe-N`` so that the
contenders of one case sit side by side and ``--benchmark-compare`` lines runs up by name.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from fastbus.bench._contenders import (
    CHANNEL,
    CONTENDERS,
    Built,
    Contender,
    Unavailable,
    make_callbacks,
)

LARGEST = 10_000
CALLBACKS = make_callbacks(LARGEST)
(EXTRA,) = make_callbacks(1)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # A collection in the middle of a round would be charged to whoever ran then.
    if hasattr(config.option, "benchmark_disable_gc"):
        config.option.benchmark_disable_gc = True


def load(name: str) -> Contender:
    contender = CONTENDERS[name]()
    try:
        contender.load()
    except Unavailable as exc:
        pytest.skip(f"{name}: {exc}")
    return contender


@pytest.fixture
def build() -> Any:
    """``build(name, n)``: the named contender holding the first *n* shared callbacks."""
    loaded: list[Contender] = []

    def build(name: str, n: int) -> Built:
        contender = load(name)
        loaded.append(contender)
        return contender.build(CALLBACKS[:n])

    yield build
    for contender in loaded:
        contender.restore()


@pytest.fixture
def extra() -> Callable[..., None]:
    """The callback that subscribe+unsubscribe cases add and take away."""
    return EXTRA


@pytest.fixture
def publish_call() -> Any:
    """``publish_call(name, built)``: the publish callable and its one positional argument.

    The benchmark calls it bare, with no wrapper of ours in between.
    """

    def publish_call(name: str, built: Built) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        if name == "floor":
            return built.env["call"], (1,)
        return built.env["publish"], (CHANNEL, 1)

    return publish_call
