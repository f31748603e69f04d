"""One fixture, two cores: every behavioural test runs on the compiled and the pure core.

The compiled parameter imports ``fastbus._core_c`` itself, so a broken build fails loudly
instead of quietly testing the pure core twice. Whether the compiled core is tested at all is
one switch, as in propcache:

* by default, it is tested if it is built; where it is not (no compiler at install time), the
  tests marked ``c_extension`` (the compiled parameter of the fixtures below among them) are
  skipped with one reason and everything else runs on the pure core;
* ``--c-extensions`` requires it: a missing build is a usage error, so CI cannot pass on the
  pure core alone;
* ``--no-c-extensions`` skips it even where it is built.

The run's header says which cores are tested, why one is not, and where fastbus was imported
from (so a run against an installed package can be told from one against the source tree).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

import pytest

import fastbus
from fastbus._bus import bus_class_on

COMPILED_MODULE = "fastbus._core_c"
NOT_BUILT = "the compiled core is not built"
NOT_WANTED = "compiled core not tested (--no-c-extensions)"

_compiled_key = pytest.StashKey["tuple[ModuleType | None, str | None]"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fastbus")
    group.addoption(
        "--c-extensions", dest="c_extensions", action="store_true", default=None,
        help="test the compiled core and make it an error if it is not built (CI uses this)",
    )
    group.addoption(
        "--no-c-extensions", dest="c_extensions", action="store_false",
        help="test the pure core only; the compiled-core tests are skipped",
    )


def _compiled_core(wanted: bool | None) -> tuple[ModuleType | None, str | None]:
    """The compiled module if it is to be tested, else None and the skip reason.

    Only a build that is absent is skipped by default; one that is there but fails to import
    is an error whatever the switch says (short of ``--no-c-extensions``), since that is a
    broken build rather than a machine without a compiler.
    """
    if wanted is False:
        return None, NOT_WANTED
    if wanted is None and importlib.util.find_spec(COMPILED_MODULE) is None:
        return None, NOT_BUILT
    try:
        return importlib.import_module(COMPILED_MODULE), None
    except ImportError as exc:
        hint = "" if wanted else "; --no-c-extensions tests the pure core alone"
        raise pytest.UsageError(f"the compiled core cannot be imported: {exc!r}{hint}") from exc


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_compiled_key] = _compiled_core(config.getoption("c_extensions"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    compiled, why_not = config.stash[_compiled_key]
    from fastbus._core import WHY_NOT_COMPILED

    where = os.path.dirname(fastbus.__file__)
    active = "compiled" if fastbus.COMPILED else f"pure, because {WHY_NOT_COMPILED}"
    lines = [f"fastbus {fastbus.__version__} from {where} (default core: {active})"]
    if compiled is not None:
        built = os.path.basename(compiled.__file__ or "?")
        lines.append(f"fastbus cores tested: compiled ({built}) and pure")
    elif why_not == NOT_BUILT:
        lines.append(f"fastbus cores tested: pure only; {why_not} (no {COMPILED_MODULE} in {where}); "
                     "the compiled-core tests are skipped, and --c-extensions makes that an error")
    else:
        lines.append(f"fastbus cores tested: pure only; {why_not}")
    return lines


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    compiled, why_not = item.config.stash[_compiled_key]
    if compiled is None and item.get_closest_marker("c_extension") is not None:
        pytest.skip(why_not or NOT_BUILT)


@pytest.fixture(
    params=[pytest.param("compiled", marks=pytest.mark.c_extension), "pure"],
)
def core_name(request: pytest.FixtureRequest) -> str:
    """``"compiled"`` or ``"pure"``: the core this test runs on."""
    return str(request.param)


@pytest.fixture
def core(core_name: str) -> ModuleType:
    """The core module under test: ``fastbus._core_c`` or ``fastbus._core_py``."""
    return importlib.import_module(COMPILED_MODULE if core_name == "compiled" else "fastbus._core_py")


@pytest.fixture
def Bus(core: ModuleType) -> type:
    """The lifecycle Bus class built on the core under test."""
    return bus_class_on(core.CoreBus)


@pytest.fixture
def bus(Bus: type) -> Any:
    """A fresh Bus on the core under test."""
    return Bus()


@pytest.fixture
def core_env(core_name: str) -> dict[str, str]:
    """Environment for a child Python that must run on the core under test.

    The child checks ``fastbus.COMPILED`` itself when it matters; the compiled core is
    selected simply by not disabling it.
    """
    env = dict(os.environ)
    env.pop("FASTBUS_NO_EXTENSIONS", None)
    if core_name == "pure":
        env["FASTBUS_NO_EXTENSIONS"] = "1"
    # Children import fastbus from where this process did: the source tree, or site-packages
    # when the tests run against an installed package.
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastbus.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return env


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture
def redis_servers(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Start real redis-servers (see tests/_redis.py): ``redis_servers(password=..., appendonly=...)``.

    Each is on a free loopback port in a temporary directory and is killed after the test.
    Without redis-server or redis-py the test is skipped, or fails under FASTBUS_REQUIRE_REDIS=1.
    """
    from _redis import RedisServers

    servers = RedisServers(tmp_path_factory.mktemp("redis"))
    yield servers
    servers.stop_all()


@pytest.fixture
def redis_server(redis_servers: Any) -> Any:
    """One real redis-server, without a password or persistence; killed after the test."""
    return redis_servers()
