"""Fixtures for the pytest-benchmark suite: the contenders of ``python -m fastbus.bench``.

The suite reuses the command's contenders, callbacks and statements, so the two never measure
different things under the same name. A contender that cannot run here (no build, library not
installed, wspbus served by fastbus itself) is skipped with the reason, as is a call shape a
contender cannot publish in. Each case sets ``benchmark.group`` to ``publish-SHAPE-N`` or
``subscribe-unsubscribe-N`` so that the contenders of one case sit side by side and
``--benchmark-compare`` lines runs up by name.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from fastbus.bench._cli import DEFAULT_SIZES
from fastbus.bench._contenders import CONTENDERS, Built, Contender, Unavailable, make_callbacks

CALLBACKS = make_callbacks(max(DEFAULT_SIZES))  # the command's default sizes: 0 … 10,000
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
        pytest.skip(f"{name}: skipped: {exc}")
    return contender


@pytest.fixture
def build() -> Any:
    """``build(name, n)``: the named contender holding the first *n* shared callbacks."""
    loaded: list[Contender] = []

    def build(name: str, n: int) -> Built:
        contender = load(name)
        loaded.append(contender)
        built = contender.build(CALLBACKS[:n])
        if built.activate is not None:  # zope.event: make this build's list the live one
            built.activate()
        return built

    yield build
    for contender in loaded:
        contender.restore()


@pytest.fixture
def extra() -> Callable[..., None]:
    """The callback that subscribe+unsubscribe cases add and take away."""
    return EXTRA
