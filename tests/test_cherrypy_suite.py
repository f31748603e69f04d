"""``.ci/cherrypy-suite``: it must catch a test that only fails on fastbus, and only that.

The full CherryPy suite is too slow for the unit tests, so the script is pointed (``--target``)
at a small fake suite whose tests behave differently on stock CherryPy and on fastbus; that
exercises the same bootstrap, the interpreter check, the comparison and the reruns. The fake
suite passes two tests, so it runs with ``--min-passed 2`` instead of the real suite's floor.
It must equally refuse to compare runs in which the suite did not really run (status 2).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "cherrypy-suite"
TIMEOUT = 180


def load_script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("cherrypy_suite", str(SCRIPT))
    spec = importlib.util.spec_from_loader("cherrypy_suite", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def suite() -> ModuleType:
    return load_script()


def results(**outcomes: str) -> dict:
    return {name: {"outcome": outcome, "path": name} for name, outcome in outcomes.items()}


def test_same_outcomes_agree(suite: ModuleType) -> None:
    stock = results(a="passed", b="skipped", c="xfailed", d="failed")
    assert suite.compare(stock, dict(stock)) == ([], [])


def test_worse_on_fastbus_is_a_regression(suite: ModuleType) -> None:
    stock = results(a="passed", b="skipped", c="xfailed", d="passed")
    other = results(a="failed", b="passed", c="error")
    regressions, notes = suite.compare(stock, other)
    assert regressions == [
        ("a", "passed", "failed"),
        ("b", "skipped", "passed"),
        ("c", "xfailed", "error"),
        ("d", "passed", "missing"),
    ]
    assert notes == []


def test_extra_test_on_fastbus_is_a_regression(suite: ModuleType) -> None:
    regressions, _ = suite.compare(results(), results(new="passed"))
    assert regressions == [("new", "missing", "passed")]


def report(status: int = 1, **outcomes: str) -> dict:
    return {"status": status, "results": results(**outcomes)}


def test_a_run_of_the_suite_has_no_problems(suite: ModuleType) -> None:
    assert suite.run_problems(report(1, a="passed", b="failed", c="skipped"), min_passed=1) == []
    assert suite.run_problems(report(0, a="passed"), min_passed=1) == []


@pytest.mark.parametrize("status", [2, 3, 4, 5])
def test_pytest_status_other_than_0_or_1_is_no_run(suite: ModuleType, status: int) -> None:
    problems = suite.run_problems(report(status, a="passed"))
    assert problems == [f"pytest ended with status {status} ({suite.PYTEST_STATUS[status]})"]


def test_collection_errors_are_no_run(suite: ModuleType) -> None:
    # Even if pytest had carried on (--continue-on-collection-errors), a module is missing.
    problems = suite.run_problems(report(1, a="passed", **{"collect:test_x.py": "error"}))
    assert problems == ["1 collection error(s): test_x.py"]


def test_too_few_passes_is_no_run(suite: ModuleType) -> None:
    assert suite.run_problems(report(0), min_passed=1) == [
        "only 0 tests passed, fewer than --min-passed 1"
    ]
    assert suite.run_problems(report(1, a="passed", b="failed"), min_passed=2) == [
        "only 1 tests passed, fewer than --min-passed 2"
    ]


def test_min_passed_default_is_well_below_the_real_suite(suite: ModuleType) -> None:
    assert suite.parse_args([]).min_passed == suite.DEFAULT_MIN_PASSED
    assert 200 <= suite.DEFAULT_MIN_PASSED <= 290 * 0.9  # CherryPy 18.10 passes 290


def test_only_a_flake_shown_on_stock_is_accepted(suite: ModuleType) -> None:
    assert suite.flake_verdict("passed", ["passed"] * 3, ["passed", "failed", "passed"]).startswith(
        "flaky on stock too"
    )
    assert suite.flake_verdict("passed", ["failed"] * 3, ["error", "passed", "passed"]).startswith(
        "flaky on stock too"
    )
    # Passing alone on fastbus is no evidence: an order-dependent regression does that too.
    alone = suite.flake_verdict("passed", ["passed"] * 3, ["passed"] * 3)
    assert alone.startswith("MISMATCH: as on stock when run alone, but stock never failed it")
    assert suite.flake_verdict("passed", ["failed"] * 3, ["passed"] * 3) == "MISMATCH"
    assert suite.flake_verdict("passed", ["passed"] * 3, ["missing"] * 3).startswith("MISMATCH")


def test_stock_failures_and_xfail_flips_are_only_noted(suite: ModuleType) -> None:
    stock = results(a="failed", b="error", c="xpassed")
    other = results(a="passed", b="failed", c="xfailed")
    regressions, notes = suite.compare(stock, other)
    assert regressions == []
    assert notes == [("a", "failed", "passed"), ("b", "error", "failed"), ("c", "xpassed", "xfailed")]


# -- end to end, on a fake suite ----------------------------------------------------------------

FAKE_SUITE = '''\
import os
import sys

import pytest


def on_fastbus():
    return getattr(sys.modules["cherrypy.process.wspbus"], "__fastbus__", False)


def test_passes():
    import cherrypy
    assert cherrypy.engine is not None


def test_skips():
    pytest.skip("not here")


def test_fails_everywhere():
    assert False, "broken on stock too"


@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False


def test_child_interpreter_is_on_the_same_bus():
    # The suite's servers are child interpreters: they must be on fastbus too.
    import subprocess
    code = "import cherrypy, fastbus; print(fastbus.installed())"
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True).stdout
    assert out.strip() == str(bool(on_fastbus()))
'''

ONLY_ON_FASTBUS = '''
def test_breaks_on_fastbus():
    assert not on_fastbus()
'''

ORDER_DEPENDENT_ON_FASTBUS = '''
LEFT_BEHIND = []


def test_leaves_state_behind_on_fastbus():
    if on_fastbus():
        LEFT_BEHIND.append("state")


def test_needs_a_clean_state():
    # Fails after the test above on fastbus, passes alone: a regression that a rerun of
    # this test alone cannot reproduce on either side.
    assert not LEFT_BEHIND
'''

FLAKY_EVERYWHERE = '''
def test_flaky_on_both():
    # Passes in the full stock run, fails in the full fastbus run, then fails in the first
    # stock rerun: a flake of CherryPy's own, shown on stock, as test_queue_full is.
    marker = os.environ["FAKE_SUITE_MARKER"]
    if on_fastbus() and not os.path.exists(marker):
        open(marker, "w").close()
        assert False, "flaked on fastbus"
    if not on_fastbus() and os.path.exists(marker) and not os.path.exists(marker + ".stock"):
        open(marker + ".stock", "w").close()
        assert False, "flaked on stock"
'''

COLLECTION_ERROR = '''
import no_such_module_for_the_fake_suite
'''

COLLECTION_ERROR_ON_FASTBUS = '''
if on_fastbus():
    raise ImportError("this module cannot be imported on fastbus")
'''


def run_suite(
    tmp_path: Path, body: str, cores: str, min_passed: int = 2
) -> subprocess.CompletedProcess[str]:
    package = tmp_path / "src" / "fakesuite"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "test_fake.py").write_text(textwrap.dedent(body))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(tmp_path / "src"), str(ROOT), env.get("PYTHONPATH")) if p
    )
    env["FAKE_SUITE_MARKER"] = str(tmp_path / "flaked")
    return subprocess.run(
        [
            sys.executable, str(SCRIPT), "--python", sys.executable, "--cores", cores,
            "--target", "fakesuite", "--workdir", str(tmp_path / "work"), "--reruns", "2",
            "--min-passed", str(min_passed),
        ],
        env=env,
        cwd=str(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TIMEOUT,
    )


def summary_row(output: str, mode: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(mode + " "))


def test_matching_runs_pass(tmp_path: Path, core_name: str) -> None:
    done = run_suite(tmp_path, FAKE_SUITE, core_name)
    assert done.returncode == 0, done.stdout
    assert "OK: fastbus" in done.stdout
    # passed failed error skipped xfailed xpassed total
    assert summary_row(done.stdout, "stock")[1:8] == ["2", "1", "0", "1", "1", "0", "5"]
    assert summary_row(done.stdout, core_name)[1:8] == ["2", "1", "0", "1", "1", "0", "5"]
    assert f"on fastbus {core_name}" in done.stdout
    assert "cherrypy.process.wspbus.Bus;" in summary_row(done.stdout, "stock")


def test_failure_only_on_fastbus_fails_the_job(tmp_path: Path, core_name: str) -> None:
    done = run_suite(tmp_path, FAKE_SUITE + ONLY_ON_FASTBUS, core_name)
    assert done.returncode == 1, done.stdout
    assert "test_fake.py::test_breaks_on_fastbus: passed on stock, failed on fastbus" in done.stdout
    assert "reruns: fastbus ['failed', 'failed'], stock ['passed', 'passed']: MISMATCH" in done.stdout
    assert "FAILED: fastbus does not match" in done.stdout


def test_a_flake_shown_on_stock_is_accepted(tmp_path: Path, core_name: str) -> None:
    done = run_suite(tmp_path, FAKE_SUITE + FLAKY_EVERYWHERE, core_name)
    assert done.returncode == 0, done.stdout
    assert "test_fake.py::test_flaky_on_both: passed on stock, failed on fastbus" in done.stdout
    assert (
        "reruns: fastbus ['passed', 'passed'], stock ['failed', 'passed']: flaky on stock too, accepted"
        in done.stdout
    )


def test_order_dependent_failure_on_fastbus_fails_the_job(tmp_path: Path, core_name: str) -> None:
    # It passes alone on both sides; only stock failing it too would make it a flake.
    done = run_suite(tmp_path, FAKE_SUITE + ORDER_DEPENDENT_ON_FASTBUS, core_name)
    assert done.returncode == 1, done.stdout
    assert "test_fake.py::test_needs_a_clean_state: passed on stock, failed on fastbus" in done.stdout
    assert (
        "reruns: fastbus ['passed', 'passed'], stock ['passed', 'passed']: MISMATCH: as on stock "
        "when run alone, but stock never failed it" in done.stdout
    )
    assert "FAILED: fastbus does not match" in done.stdout


def test_collection_error_on_every_side_cannot_run(tmp_path: Path) -> None:
    # What an interpreter without the suite's dependencies gives: pytest is interrupted.
    done = run_suite(tmp_path, COLLECTION_ERROR + FAKE_SUITE, "pure")
    assert done.returncode == 2, done.stdout
    assert "COULD NOT RUN: the stock run did not run the suite" in done.stdout
    assert "pytest ended with status 2 (interrupted)" in done.stdout
    assert "1 collection error(s): test_fake.py" in done.stdout
    assert "no_such_module_for_the_fake_suite" in done.stdout  # the end of the run's output
    assert "cherrypy-suite: OK" not in done.stdout


def test_collection_error_on_fastbus_only_cannot_run(tmp_path: Path) -> None:
    done = run_suite(tmp_path, FAKE_SUITE + COLLECTION_ERROR_ON_FASTBUS, "pure")
    assert done.returncode == 2, done.stdout
    assert "COULD NOT RUN: the pure run did not run the suite" in done.stdout
    assert "1 collection error(s): test_fake.py" in done.stdout


def test_a_suite_that_shrank_cannot_run(tmp_path: Path) -> None:
    done = run_suite(tmp_path, FAKE_SUITE, "pure", min_passed=3)
    assert done.returncode == 2, done.stdout
    assert "only 2 tests passed, fewer than --min-passed 3" in done.stdout
    assert "cherrypy-suite: OK" not in done.stdout


def test_bad_core_name_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--cores", "turbo"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT,
    )
    assert done.returncode == 2 and "unknown core(s): turbo" in done.stdout
