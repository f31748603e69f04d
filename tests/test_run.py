"""``python -m fastbus.run``: the program runs as under plain ``python``, but on fastbus.

Every test starts real child interpreters (on the core under test, through ``core_env``), since
what matters is the command line a user types and the process it produces: ``sys.argv``,
``__name__``, ``sys.path[0]``, the exit status, and a restart that comes back on fastbus.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

TIMEOUT = 60  # seconds for one child; generous for a loaded machine, bounded all the same

# Each probe prints one line: a Python literal that the test reads back with ast.literal_eval.
PROBE = """\
import sys
import cherrypy
import fastbus
print(repr({
    "installed": fastbus.installed(),
    "compiled": fastbus.COMPILED,
    "wspbus_is_fastbus": getattr(cherrypy.process.wspbus, "__fastbus__", False),
    "argv": sys.argv,
    "name": __name__,
    "path0": sys.path[0],
    "spec": None if __spec__ is None else __spec__.name,
    "file": __file__,
    "main_file": sys.modules["__main__"].__file__,
    "main_is_globals": sys.modules["__main__"].__dict__ is globals(),
    "globals": list(globals()),
    "loader": (type(__loader__).__name__, getattr(__loader__, "path", None)),
    "cached": __cached__,
    "package": __package__,
    "doc": __doc__,
    "builtins": type(__builtins__).__name__,
}))
"""

# Every key of the probe's report, each the same under python and under fastbus.run.
SAME_AS_PYTHON = (
    "argv", "name", "path0", "spec", "file", "main_file", "main_is_globals", "globals", "loader",
    "cached", "package", "doc", "builtins",
)


def run(
    args: Sequence[str], env: dict[str, str], cwd: Path, check_status: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` and return it, failing the test on an unexpected exit status."""
    done = subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=str(cwd),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    if check_status is not None:
        assert done.returncode == check_status, (
            f"exit status {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done


def report(done: subprocess.CompletedProcess[str]) -> dict:
    """The probe's dictionary from the last line of the child's output."""
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def plain_env() -> dict[str, str]:
    """Environment for children whose behaviour does not depend on the core."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return env


def check_core(seen: dict, core_name: str) -> None:
    assert seen["compiled"] is (core_name == "compiled"), "the child ran on the wrong core"


# -- running a script ---------------------------------------------------------------------------


def test_script_runs_on_fastbus_as_python_would(tmp_path: Path, core_env: dict, core_name: str) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "probe.py").write_text(PROBE)
    args = ["app/probe.py", "one", "-m", "--two", "--"]

    launched = report(run(["-m", "fastbus.run", *args], core_env, tmp_path))
    plain = report(run(args, core_env, tmp_path))

    check_core(launched, core_name)
    assert launched["installed"] is True and launched["wspbus_is_fastbus"] is True
    assert plain["installed"] is False and plain["wspbus_is_fastbus"] is False
    for key in SAME_AS_PYTHON:
        assert launched[key] == plain[key], key
    assert launched["argv"] == ["app/probe.py", "one", "-m", "--two", "--"]
    assert launched["name"] == "__main__"
    assert launched["path0"] == str((tmp_path / "app").resolve())


def test_double_dash_ends_launcher_options(tmp_path: Path, core_env: dict) -> None:
    (tmp_path / "-odd.py").write_text(PROBE)
    seen = report(run(["-m", "fastbus.run", "--", "-odd.py", "x"], core_env, tmp_path))
    assert seen["argv"] == ["-odd.py", "x"] and seen["installed"] is True


# -- what the program sees of its own file, and how it fails: as under python ----------------


def both(args: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[tuple, tuple]:
    """``(status, stdout, stderr)`` of ``python -m fastbus.run *args``, then of ``python *args``."""
    launched = run(["-m", "fastbus.run", *args], env, cwd, check_status=None)
    plain = run(args, env, cwd, check_status=None)
    return (
        (launched.returncode, launched.stdout, launched.stderr),
        (plain.returncode, plain.stdout, plain.stderr),
    )


# Changes directory first, so a relative __file__ (or a traceback's file name) finds nothing.
MOVES_AWAY = """\
import os, sys
os.chdir(os.sep)
with open(__file__) as f:
    found = "MOVES_AWAY" in f.read()
print(found, __file__, sys.modules["__main__"].__file__, sys.path[0])
"""


@pytest.mark.parametrize("named", ["./app/../app/moves.py", "app/moves.py", "absolute", "link.py"])
def test_file_is_the_path_python_gives(tmp_path: Path, plain_env: dict, named: str) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "moves.py").write_text("# MOVES_AWAY\n" + MOVES_AWAY)
    (tmp_path / "link.py").symlink_to(tmp_path / "app" / "moves.py")
    script = str(tmp_path.resolve() / "app" / "moves.py") if named == "absolute" else named

    launched, plain = both([script], plain_env, tmp_path)

    assert launched == plain
    # python (3.9+) joins the working directory and the path as given: no normalising, no
    # symlink resolved; sys.path[0] is the real directory.
    given = os.path.join(str(tmp_path.resolve()), script)
    assert plain == (0, f"True {given} {given} {tmp_path.resolve() / 'app'}\n", "")


RAISES = """\
import os
def inner():
    raise ValueError("boom")
def outer():
    try:
        inner()
    except ValueError as exc:
        raise RuntimeError("wrapped") from exc
os.chdir(os.sep)  # the traceback must still show the source lines
outer()
"""

# Replaces the excepthook and reports what it was handed, as python hands it.
OWN_HOOK = """\
import sys, traceback
def hook(kind, value, tb):
    print([frame.name for frame in traceback.extract_tb(tb)], tb is value.__traceback__,
          sys.last_traceback is tb, sys.last_value is value, sys.excepthook is hook)
    sys.__excepthook__(kind, value, tb)
sys.excepthook = hook
def fail():
    raise LookupError("hooked")
fail()
"""

AT_EXIT = """\
import atexit, sys, __main__
atexit.register(lambda: print("at exit:", "__file__" in vars(__main__), "__cached__" in vars(__main__)))
"""

# name: (files to write, command line after "python" or "python -m fastbus.run")
FAILING_PROGRAMS = {
    "exception": ({"app/fails.py": RAISES}, ["app/fails.py", "x"]),
    "syntax-error": ({"app/bad.py": "print('fine')\nx = = 1\n"}, ["app/bad.py"]),
    "unclosed-bracket": ({"app/bad.py": "print('fine')\nx = (\n"}, ["app/bad.py"]),
    "indentation-error": ({"app/bad.py": "if True:\nx = 1\n"}, ["app/bad.py"]),
    "keyboard-interrupt": (
        {"app/stop.py": "def stop():\n    raise KeyboardInterrupt\nstop()\n"},
        ["app/stop.py"],
    ),
    "own-excepthook": ({"app/hooked.py": OWN_HOOK}, ["app/hooked.py"]),
    "exit-after-exception": ({"app/ends.py": AT_EXIT + RAISES}, ["app/ends.py"]),
    "exit-after-success": ({"app/ends.py": AT_EXIT + "print('done')\n"}, ["app/ends.py"]),
    "exit-after-sys-exit": ({"app/ends.py": AT_EXIT + "sys.exit(4)\n"}, ["app/ends.py"]),
    "module": ({"pkg/__init__.py": "", "pkg/fails.py": RAISES}, ["-m", "pkg.fails"]),
    "module-syntax-error": ({"pkg/__init__.py": "", "pkg/bad.py": "x = (\n"}, ["-m", "pkg.bad"]),
    "package-main": ({"pkg/__init__.py": "", "pkg/__main__.py": RAISES}, ["-m", "pkg"]),
    "failing-parent-package": ({"pkg/__init__.py": "1 / 0\n", "pkg/mod.py": ""}, ["-m", "pkg.mod"]),
    "module-own-excepthook": ({"pkg/__init__.py": "", "pkg/hooked.py": OWN_HOOK}, ["-m", "pkg.hooked"]),
    "directory": ({"app/__main__.py": RAISES}, ["app"]),
    "directory-syntax-error": ({"app/__main__.py": "x = (\n"}, ["app"]),
}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            marks=pytest.mark.xfail(
                sys.version_info < (3, 10) and name == "unclosed-bracket",
                reason="3.9's file tokenizer, which python has no API for, puts an error at the "
                "end of the file one line later than compile() does",
                strict=True,
            ),
        )
        for name in FAILING_PROGRAMS
    ],
)
def test_failure_reads_as_under_python(tmp_path: Path, plain_env: dict, name: str) -> None:
    """Same status, stdout and stderr, byte for byte: no frame of runpy or fastbus added."""
    files, args = FAILING_PROGRAMS[name]
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)

    launched, plain = both(args, plain_env, tmp_path)

    assert launched == plain
    status, stdout, stderr = plain
    if name.startswith("exit-after"):
        kept = name == "exit-after-sys-exit"  # python removes __file__ unless SystemExit ended it
        assert stdout.endswith(f"at exit: {kept} {kept}\n")
    else:
        assert status == (-2 if name == "keyboard-interrupt" else 1)
        assert "Error" in stderr or "KeyboardInterrupt" in stderr


def test_compiled_script_runs_as_under_python(tmp_path: Path, plain_env: dict) -> None:
    import py_compile

    (tmp_path / "app").mkdir()
    source = tmp_path / "app" / "fails.py"
    source.write_text("import sys\nprint(type(__loader__).__name__, __cached__)\n" + RAISES)
    py_compile.compile(str(source), cfile=str(tmp_path / "app" / "fails.pyc"), doraise=True)

    launched, plain = both(["app/fails.pyc"], plain_env, tmp_path)

    assert launched == plain
    assert plain[:2] == (1, "SourcelessFileLoader None\n") and "RuntimeError: wrapped" in plain[2]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="python -P is new in 3.11")
@pytest.mark.parametrize("target", ["app/probe.py", "app"])
def test_safe_path_as_under_python(tmp_path: Path, plain_env: dict, target: str) -> None:
    # Under -P python puts no script directory on sys.path, but a directory's path it does.
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "probe.py").write_text("import sys\nprint(sys.path[0])\n")
    (tmp_path / "app" / "__main__.py").write_text("import sys\nprint(sys.path[0])\n")

    launched = run(["-P", "-m", "fastbus.run", target], plain_env, tmp_path)
    plain = run(["-P", target], plain_env, tmp_path)

    assert launched.stdout == plain.stdout
    assert (plain.stdout == f"{tmp_path.resolve() / 'app'}\n") is (target == "app")


# -- running a module ---------------------------------------------------------------------------


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A package ``pkg`` with a ``__main__`` and a plain module ``pkg.mod``, both probes."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(PROBE)
    (pkg / "mod.py").write_text(PROBE)
    return tmp_path


@pytest.mark.parametrize("module", ["pkg.mod", "pkg"])
def test_module_runs_on_fastbus_as_python_would(
    package: Path, core_env: dict, core_name: str, module: str
) -> None:
    args = ["-m", module, "a", "-m", "b"]

    launched = report(run(["-m", "fastbus.run", *args], core_env, package))
    plain = report(run(args, core_env, package))

    check_core(launched, core_name)
    assert launched["installed"] is True and launched["wspbus_is_fastbus"] is True
    assert plain["installed"] is False
    for key in SAME_AS_PYTHON:
        assert launched[key] == plain[key], key
    expected_file = package / "pkg" / ("mod.py" if module == "pkg.mod" else "__main__.py")
    assert launched["argv"] == [str(expected_file), "a", "-m", "b"]
    assert launched["name"] == "__main__"


def test_joined_dash_m(package: Path, core_env: dict) -> None:
    seen = report(run(["-m", "fastbus.run", "-mpkg.mod", "z"], core_env, package))
    assert seen["installed"] is True and seen["argv"][1:] == ["z"]


# -- exit status --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "stderr_has"),
    [
        ("pass", 0, ""),
        ("raise SystemExit(3)", 3, ""),
        ("sys.exit('goodbye')", 1, "goodbye"),
        ("raise ValueError('boom')", 1, "ValueError: boom"),
        ("os._exit(9)", 9, ""),
    ],
)
def test_exit_status_is_the_programs(
    tmp_path: Path, core_env: dict, body: str, status: int, stderr_has: str
) -> None:
    (tmp_path / "ends.py").write_text(f"import os, sys\n{body}\n")
    for args in (["-m", "fastbus.run", "ends.py"], ["ends.py"]):
        done = run(args, core_env, tmp_path, check_status=status)
        assert stderr_has in done.stderr


def test_module_exit_status(package: Path, core_env: dict) -> None:
    (package / "pkg" / "quits.py").write_text("raise SystemExit(5)\n")
    run(["-m", "fastbus.run", "-m", "pkg.quits"], core_env, package, check_status=5)


def test_import_error_inside_module_keeps_its_traceback(package: Path, plain_env: dict) -> None:
    (package / "pkg" / "broken.py").write_text("import no_such_module_here\n")
    done = run(["-m", "fastbus.run", "-m", "pkg.broken"], plain_env, package, check_status=1)
    assert "Traceback" in done.stderr and "no_such_module_here" in done.stderr


# -- bad command lines --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        ([], 2, "no script or -m module given"),
        (["-x", "app.py"], 2, "unknown option '-x'"),
        (["-m"], 2, "argument -m: expected a module name"),
        (["--"], 2, "no script given after '--'"),
        (["-"], 2, "cannot read the program from stdin"),
        (["missing.py"], 2, "can't open file"),
        (["-m", "no_such_module_here"], 1, "No module named no_such_module_here"),
        (["-m", "pkg_without_main"], 1, "is a package and cannot be directly executed"),
        (["-m", "no_such_package.mod"], 1, "no_such_package"),
    ],
)
def test_usage_errors(tmp_path: Path, plain_env: dict, args: list, status: int, message: str) -> None:
    (tmp_path / "pkg_without_main").mkdir()
    (tmp_path / "pkg_without_main" / "__init__.py").write_text("")
    done = run(["-m", "fastbus.run", *args], plain_env, tmp_path, check_status=status)
    assert message in done.stderr
    if status == 2 and "can't open" not in message:
        assert done.stderr.startswith("usage: python -m fastbus.run")
    assert done.stdout == ""


@pytest.mark.parametrize("where", ["relative", "absolute", "zip"])
def test_no_main_module_is_refused_as_python_does(tmp_path: Path, plain_env: dict, where: str) -> None:
    # python gives one line naming the path and status 1; runpy alone would raise a traceback.
    (tmp_path / "nomain").mkdir()
    (tmp_path / "nomain" / "other.py").write_text("print('not run')\n")
    if where == "zip":
        import zipfile

        with zipfile.ZipFile(tmp_path / "nomain.zip", "w") as archive:
            archive.writestr("other.py", "print('not run')\n")
        target = str(tmp_path / "nomain.zip")
    else:
        target = "nomain" if where == "relative" else str(tmp_path / "nomain")

    launched = run(["-m", "fastbus.run", target, "arg"], plain_env, tmp_path, check_status=None)
    plain = run([target, "arg"], plain_env, tmp_path, check_status=None)

    assert (launched.returncode, launched.stdout, launched.stderr) == (
        plain.returncode, plain.stdout, plain.stderr,
    )
    named = target if os.path.isabs(target) else str(tmp_path.resolve() / target)
    assert plain.returncode == 1
    assert plain.stderr.endswith(f"can't find '__main__' module in {named!r}\n")


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help(tmp_path: Path, plain_env: dict, flag: str) -> None:
    done = run(["-m", "fastbus.run", flag, "ignored.py"], plain_env, tmp_path)
    assert done.stdout.startswith("usage: python -m fastbus.run") and "-m module" in done.stdout


# -- restart ------------------------------------------------------------------------------------

# What each run of a restarting program records, one line per run in the journal named by
# argv[1], before it decides (first_run) whether to restart.
JOURNAL_PRELUDE = """\
import os, sys, threading, time
import cherrypy
import fastbus

journal = sys.argv[1]
with open(journal, "a") as f:
    f.write(repr({
        "installed": fastbus.installed(),
        "compiled": fastbus.COMPILED,
        "argv": sys.argv,
        "orig_argv": getattr(sys, "orig_argv", None),
        "name": __name__,
        "pid": os.getpid(),
    }) + "\\n")
with open(journal) as f:
    first_run = len(f.readlines()) == 1

cherrypy.config.update({"log.screen": False})
cherrypy.server.unsubscribe()
"""

# A CherryPy program with no HTTP server: the first run lets the Autoreloader restart the
# process (by making the script look modified), the second one exits with status 7.
RESTARTING_APP = JOURNAL_PRELUDE + """\
engine = cherrypy.engine
if first_run:
    engine.autoreload.frequency = 0.05
    engine.start()
    # Make this script look modified, as an editor would, so the Autoreloader restarts us.
    def touch():
        # Once the Autoreloader has recorded this file's mtime (CherryPy's own reloader on
        # the stock engine keeps the same attribute), a newer one is a modification.
        deadline = time.monotonic() + 30
        while os.path.abspath(__file__) not in engine.autoreload.mtimes and __file__ not in engine.autoreload.mtimes:
            if time.monotonic() > deadline:
                os._exit(3)
            time.sleep(0.01)
        later = time.time() + 60
        os.utime(__file__, (later, later))
    threading.Thread(target=touch).start()
    engine.block()
    sys.exit("the Autoreloader did not restart the process")
else:
    engine.autoreload.unsubscribe()
    engine.start()
    engine.exit()
    engine.block()
    sys.exit(7)
"""


def read_journal(path: Path) -> list[dict]:
    return [ast.literal_eval(line) for line in path.read_text().splitlines()]


def test_autoreloader_restart_comes_back_on_fastbus(tmp_path: Path, core_env: dict, core_name: str) -> None:
    (tmp_path / "app.py").write_text(RESTARTING_APP)
    journal = tmp_path / "journal"
    done = run(["-m", "fastbus.run", "app.py", str(journal), "extra"], core_env, tmp_path, check_status=7)

    runs = read_journal(journal)
    assert len(runs) == 2, done.stderr
    first, second = runs
    assert first["installed"] is True and second["installed"] is True
    check_core(first, core_name)
    check_core(second, core_name)
    assert first["argv"] == second["argv"] == ["app.py", str(journal), "extra"]
    assert first["name"] == second["name"] == "__main__"
    assert first["pid"] == second["pid"], "restart re-executes in place"


RESTARTING_MODULE = JOURNAL_PRELUDE + """\
engine = cherrypy.engine
engine.autoreload.unsubscribe()
engine.start()
if first_run:
    engine.restart()
else:
    engine.exit()
engine.block()
sys.exit(0 if first_run else 8)
"""


def test_restart_of_a_module_comes_back_on_fastbus(package: Path, core_env: dict, core_name: str) -> None:
    (package / "pkg" / "server.py").write_text(RESTARTING_MODULE)
    journal = package / "journal"
    args = ["-m", "fastbus.run", "-m", "pkg.server", str(journal)]
    run(args, core_env, package, check_status=8)

    runs = read_journal(journal)
    assert len(runs) == 2
    for seen in runs:
        assert seen["installed"] is True
        check_core(seen, core_name)
        assert seen["argv"] == [str(package / "pkg" / "server.py"), str(journal)]
        if seen["orig_argv"] is not None:
            expected = args
            if sys.version_info < (3, 10):
                # No sys.orig_argv: fastbus.run rebuilt it, with the interpreter options that
                # sys.flags shows, which include core_env's PYTHONDONTWRITEBYTECODE (-B).
                expected = ["-B", *args]
            assert seen["orig_argv"][1:] == expected
