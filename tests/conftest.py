"""One fixture, two cores: every behavioural test runs on the compiled and the pure core.

The compiled parameter imports ``fastbus._core_c`` itself, so a missing build fails loudly
instead of quietly testing the pure core twice; it is marked ``c_extension`` so that it can be
deselected (``-m "not c_extension"``) where no compiler exists.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any

import pytest

from fastbus._bus import bus_class_on


@pytest.fixture(
    params=[pytest.param("compiled", marks=pytest.mark.c_extension), "pure"],
)
def core_name(request: pytest.FixtureRequest) -> str:
    """``"compiled"`` or ``"pure"``: the core this test runs on."""
    return request.param


@pytest.fixture
def core(core_name: str) -> ModuleType:
    """The core module under test: ``fastbus._core_c`` or ``fastbus._core_py``."""
    return importlib.import_module("fastbus._core_c" if core_name == "compiled" else "fastbus._core_py")


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
    # Children import fastbus from the same place as this process.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return env


@pytest.fixture
def python() -> str:
    return sys.executable
