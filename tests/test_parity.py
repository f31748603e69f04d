"""The twins stay twins: the same public names and signatures on both cores."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import pytest

from fastbus import _core_py

_core_c = pytest.importorskip("fastbus._core_c", reason="the compiled core is not built")

pytestmark = pytest.mark.c_extension


# The registry protocol the lifecycle and the listeners view use, beside the public methods.
REGISTRY = {"_channel_names", "_has_channel", "_listeners_of", "_entries", "_set_listeners", "_remove_channel"}


def names(cls):
    """The public names, and the registry protocol's (helpers of each core may differ)."""
    return {n for n in dir(cls) if not n.startswith("_") or n in REGISTRY}


def test_same_names():
    assert set(_core_c.__all__) == set(_core_py.__all__) == {"CoreBus"}
    assert names(_core_c.CoreBus) == names(_core_py.CoreBus)
    assert names(_core_py.CoreBus) >= REGISTRY
    assert {"subscribe", "unsubscribe", "publish"} <= names(_core_py.CoreBus)


def test_same_signatures():
    for name in names(_core_py.CoreBus):
        py = getattr(_core_py.CoreBus, name)
        if not callable(py):
            continue
        c = getattr(_core_c.CoreBus, name)
        assert str(inspect.signature(c)) == str(inspect.signature(py)).replace(": ", ":").split(" ->")[0] or \
            [p.name for p in inspect.signature(c).parameters.values()] == \
            [p.name for p in inspect.signature(py).parameters.values()], name
        kinds_c = [(p.name, p.kind) for p in inspect.signature(c).parameters.values()]
        kinds_py = [(p.name, p.kind) for p in inspect.signature(py).parameters.values()]
        assert kinds_c == kinds_py, name


def test_both_cores_carry_the_same_docstrings():
    """help() on the compiled core (the default) shows the contract, not a pointer to it."""
    assert inspect.getdoc(_core_c.CoreBus) == inspect.getdoc(_core_py.CoreBus)
    for name in sorted(names(_core_py.CoreBus)):
        py = inspect.getdoc(getattr(_core_py.CoreBus, name))
        if name in {"subscribe", "unsubscribe", "publish"}:
            assert py and len(py.splitlines()) > 2, name
        assert inspect.getdoc(getattr(_core_c.CoreBus, name)) == py, name


def test_help_shows_the_signature_and_the_contract():
    import pydoc

    text = pydoc.render_doc(_core_c.CoreBus.publish, renderer=pydoc.plaintext)
    assert "publish(self, channel, /, *args, **kwargs)" in text
    assert "ChannelFailures" in text and "_core_py" not in text


def test_selector_follows_the_environment():
    def active(value):
        env = dict(os.environ)
        env.pop("FASTBUS_NO_EXTENSIONS", None)
        if value is not None:
            env["FASTBUS_NO_EXTENSIONS"] = value
        out = subprocess.run(
            [sys.executable, "-c", "import fastbus, fastbus._core as c; print(fastbus.COMPILED, c.CoreBus.__module__)"],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        )
        return out.stdout.split()

    assert active(None) == ["True", "fastbus._core_c"]
    assert active("0") == ["True", "fastbus._core_c"]  # "0" does not mean "on"
    assert active("1") == ["False", "fastbus._core_py"]
    assert active("yes") == ["False", "fastbus._core_py"]


def test_python_m_fastbus_says_which_core_and_why():
    env = dict(os.environ, FASTBUS_NO_EXTENSIONS="1")
    out = subprocess.run([sys.executable, "-m", "fastbus"], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert "core: pure Python (fastbus._core_py), because FASTBUS_NO_EXTENSIONS is set" in out.stdout
    env.pop("FASTBUS_NO_EXTENSIONS")
    out = subprocess.run([sys.executable, "-m", "fastbus"], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert "core: compiled (fastbus._core_c)" in out.stdout
    assert out.stdout.startswith("fastbus ")
