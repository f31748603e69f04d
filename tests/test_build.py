"""The build: the compiled core is optional unless required, and says why it is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("Cython", reason="the build tests need Cython (the test extra installs it)")


@pytest.fixture
def source(tmp_path):
    tree = tmp_path / "src"
    tree.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "fastbus", tree / "fastbus",
                    ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__", "_version.py"))
    return tree


def build(tree, **env_overrides):
    env = dict(os.environ, SETUPTOOLS_SCM_PRETEND_VERSION="0.0.0")
    for key in ("FASTBUS_NO_EXTENSIONS", "FASTBUS_REQUIRE_EXTENSIONS", "CC"):
        env.pop(key, None)
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=600,
    )


def built(tree):
    return sorted(p.name.split(".")[0] for p in (tree / "fastbus").glob("*.so"))


def test_no_extensions_at_build_time_skips_the_build_and_says_so(source):
    result = build(source, FASTBUS_NO_EXTENSIONS="1")
    assert result.returncode == 0, result.stderr
    assert "FASTBUS_NO_EXTENSIONS is set; installing the pure-Python core only" in result.stdout
    assert built(source) == []


def test_without_a_compiler_the_build_falls_back_and_says_so(source):
    result = build(source, CC="/bin/false")
    assert result.returncode == 0, result.stderr
    assert "could not build fastbus._core_c" in result.stderr
    assert "installing the pure-Python core only" in result.stderr
    assert built(source) == []
    # and what is there works, on the pure core
    check = subprocess.run(
        # -S: no site-packages, so an installed fastbus cannot shadow the tree under test
        [sys.executable, "-S", "-c", "import fastbus; print(fastbus.COMPILED, fastbus.Bus().publish('x'))"],
        cwd=source, capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(source)),
    )
    assert check.stdout.split() == ["False", "[]"], check.stderr


def test_required_extensions_turn_the_fallback_into_an_error(source):
    result = build(source, CC="/bin/false", FASTBUS_REQUIRE_EXTENSIONS="1")
    assert result.returncode != 0
