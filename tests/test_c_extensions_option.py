"""The compiled-core switch of tests/conftest.py, seen from a real pytest run (bug 6).

Where the compiled core is not built, the suite must run on the pure core and skip the
compiled-core tests for that one reason, saying so in its header, instead of stopping at
collection; ``--c-extensions`` must make the missing build an error, and ``--no-c-extensions``
must skip the compiled core on purpose. "Not built" is made by a ``sitecustomize`` that marks
``fastbus._core_c`` as absent, exactly what Python reports for a module that is not there.
(CI's no-compiler gate checks the same on a real install made without a compiler.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastbus

HERE = Path(__file__).resolve().parent
DISPATCH = str(HERE / "test_dispatch.py")  # both cores, fast
NOT_BUILT = "the compiled core is not built"
NOT_WANTED = "compiled core not tested (--no-c-extensions)"
NOT_THERE = "import sys\nsys.modules['fastbus._core_c'] = None  # as if it was never built\n"


def run_pytest(
    config: pytest.Config, where: Path, *args: str, built: bool
) -> subprocess.CompletedProcess[str]:
    """Run pytest on some of this suite's files in a child, from *where* (not the tree)."""
    env = dict(os.environ)
    env.pop("FASTBUS_NO_EXTENSIONS", None)
    paths = [os.path.dirname(os.path.dirname(os.path.abspath(fastbus.__file__)))]
    if not built:
        (where / "sitecustomize.py").write_text(NOT_THERE)
        paths.insert(0, str(where))
    env["PYTHONPATH"] = os.pathsep.join([*paths, *filter(None, [env.get("PYTHONPATH")])])
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(config.rootpath)]
    if config.inipath is not None:
        command += ["-c", str(config.inipath)]
    return subprocess.run(
        [*command, *args], cwd=where, env=env, capture_output=True, text=True, timeout=300,
    )


def skip_reasons(output: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", output, re.MULTILINE)}


def test_without_the_build_the_pure_core_is_tested_and_the_compiled_skipped(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    result = run_pytest(request.config, tmp_path, str(HERE / "test_parity.py"), DISPATCH, built=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"fastbus cores tested: pure only; {NOT_BUILT}" in result.stdout
    assert skip_reasons(result.stdout) == {NOT_BUILT}
    assert re.search(r"\b\d+ passed, \d+ skipped\b", result.stdout), result.stdout
    assert "failed" not in result.stdout.splitlines()[-1]


def test_c_extensions_makes_a_missing_build_an_error(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    result = run_pytest(request.config, tmp_path, "--c-extensions", DISPATCH, built=False)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "the compiled core cannot be imported" in result.stderr


def test_no_c_extensions_skips_the_compiled_core(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    result = run_pytest(request.config, tmp_path, "--no-c-extensions", DISPATCH, built=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"fastbus cores tested: pure only; {NOT_WANTED}" in result.stdout
    assert skip_reasons(result.stdout) == {NOT_WANTED}
