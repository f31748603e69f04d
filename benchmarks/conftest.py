"""Fixtures for the pytest-benchmark suite: the contenders of ``python -m fastbus.bench``.

The suite reuses the command's contenders, callbacks and statements, so the two never measure
different things under the same name. A contender that cannot run here (no build, library not
installed, wspbus served by fastbus itself) is skipped with the reason, as is a call shape a
contender cannot publish in. Each case sets ``benchmark.group`` to ``publish-SHAPE-N``,
``subscribe-unsubscribe-N`` or ``apublish-KIND-N`` so that the contenders of one case sit side
by side and ``--benchmark-compare`` lines runs up by name.
"""

from __future__ import annotations

import os
import shlex
from typing import Any, Callable

import pytest

from fastbus.bench import _async
from fastbus.bench._cli import DEFAULT_SIZES
from fastbus.bench._contenders import CONTENDERS, Built, Contender, Unavailable, make_callbacks

CALLBACKS = make_callbacks(max(DEFAULT_SIZES))  # the command's default sizes: 0 … 10,000
ASYNC_CALLBACKS = _async.make_async_callbacks(max(DEFAULT_SIZES))
(EXTRA,) = make_callbacks(1)

# pytest-benchmark's default of up to a second per case, over these hundreds, is minutes.
# These calls take nanoseconds to milliseconds, so a quarter of a second (at least five rounds)
# is thousands of rounds for all but the largest; an explicit --benchmark-max-time still rules.
MAX_TIME = 0.25


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


def _max_time_given(config: pytest.Config) -> bool:
    sources = [*config.invocation_params.args, *shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))]
    sources += config.getini("addopts")
    return any(arg.startswith("--benchmark-max-time") for arg in sources)


@pytest.fixture
def short_rounds(request: pytest.FixtureRequest) -> None:
    """Cap each case at MAX_TIME unless the command line sets --benchmark-max-time.

    Use it ahead of the ``benchmark`` fixture (``pytest.mark.usefixtures`` or autouse), so the
    benchmark fixture sees the marker it adds.
    """
    if not _max_time_given(request.config):
        request.node.add_marker(pytest.mark.benchmark(max_time=MAX_TIME))


@pytest.fixture
def build_async() -> Any:
    """``build_async(name, api, kind, n)``: the case of ``python -m fastbus.bench --async``
    where contender *name* publishes through *api* to the first *n* shared callbacks of
    *kind* (``sync`` or ``async``); skipped if the contender or that API cannot run here.
    """
    loaded: list[Contender] = []

    def build(name: str, api: str, kind: str, n: int) -> _async.Case:
        side = _async.SIDES[name]()
        if api not in side.apis.get(kind, ()):
            pytest.skip(f"{name} {api} does not take {_async.KINDS[kind]}")
        contender = load(name)
        loaded.append(contender)
        try:
            side.load(contender)
        except Unavailable as exc:
            pytest.skip(f"{name}: skipped: {exc}")
        callbacks = (CALLBACKS if kind == "sync" else ASYNC_CALLBACKS)[:n]
        (case,) = [case for case in side.cases(contender, kind, callbacks) if case.api == api]
        return case

    yield build
    for contender in loaded:
        contender.restore()
