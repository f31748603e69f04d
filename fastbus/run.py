"""``python -m fastbus.run``: run an unchanged CherryPy program on fastbus.

::

    python -m fastbus.run app.py [args...]
    python -m fastbus.run -m package.module [args...]

CherryPy builds ``cherrypy.engine`` when it is first imported, so the swap has to happen
before the program's own ``import cherrypy``. This launcher calls :func:`fastbus.install`
and then runs the script or module the way ``python`` itself would: the same ``sys.argv``,
``sys.path[0]``, ``__name__ == "__main__"`` and exit status, so the program cannot tell the
difference except that ``fastbus.installed()`` is true once it has imported CherryPy.

``Bus.restart()`` (which CherryPy's Autoreloader calls) re-executes the interpreter with
``sys.orig_argv``, the command line as typed, so ``-m fastbus.run`` is kept and the new
process comes back up on fastbus too.

To go back to stock CherryPy, run the program with plain ``python`` again.
"""

from __future__ import annotations

import importlib.util
import os
import runpy
import sys
from typing import NoReturn, Sequence

__all__ = ("main", "USAGE")

USAGE = "usage: python -m fastbus.run [-h] (script | -m module) [args...]"

HELP = f"""{USAGE}

Run a Python script or module on fastbus: fastbus.install() first, then the program exactly
as 'python script [args...]' or 'python -m module [args...]' would run it (same sys.argv,
__main__ and exit status), so that cherrypy.engine is a fastbus bus.

arguments:
  script       path of the script to run (a .py file, or a directory or zip file holding
               __main__.py)
  -m module    run a module (a package runs its __main__ submodule), like python -m
  args         passed on to the program as sys.argv[1:]
  -h, --help   show this message and exit
"""

# Exit statuses as CPython's own launcher uses them: 2 for a bad command line or a script
# that cannot be opened, 1 for a module that cannot be found.
EX_USAGE = 2
EX_NO_MODULE = 1


class _UsageError(Exception):
    """A command line that names nothing to run; reported like argparse does, status 2."""


def _parse(argv: Sequence[str]) -> tuple[str | None, str | None, list[str]]:
    """Split our own options from the program's: return ``(script, module, program_args)``.

    Only options before the script or ``-m`` are ours, as with ``python`` itself; everything
    after belongs to the program, options included. ``None`` for both script and module
    means help was asked for.
    """
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            return None, None, []
        if arg == "--":
            if not args:
                raise _UsageError("no script given after '--'")
            return args[0], None, args[1:]
        if arg == "-m":
            if not args:
                raise _UsageError("argument -m: expected a module name")
            return None, args[0], args[1:]
        if arg.startswith("-m"):  # python accepts "-mpackage.module" as well
            return None, arg[2:], args
        if arg.startswith("-") and arg != "-":
            raise _UsageError(f"unknown option {arg!r} (python's own options go before -m fastbus.run)")
        if arg == "-":
            raise _UsageError("cannot read the program from stdin; name a script or -m module")
        return arg, None, args
    raise _UsageError("no script or -m module given")


def _script_path_entry(script: str) -> str:
    """The ``sys.path[0]`` python gives a script: its real directory (symlinks resolved).

    A directory or zip file is itself the entry; :func:`runpy.run_path` puts it first.
    """
    if os.path.isdir(script) or not script.endswith(".py") and _is_zip(script):
        return os.path.abspath(script)
    return os.path.dirname(os.path.realpath(script))


def _is_zip(path: str) -> bool:
    import zipfile

    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def _fail(status: int, message: str) -> NoReturn:
    print(message, file=sys.stderr)
    raise SystemExit(status)


def _remember_command_line(argv: Sequence[str]) -> None:
    """Give Python 3.9, which lacks ``sys.orig_argv``, the command line restart() needs.

    Without it :meth:`fastbus.Bus.restart` would rebuild the command line from ``sys.argv``,
    which by then names the program and not ``-m fastbus.run``, and the restarted process
    would come back up on stock CherryPy.
    """
    if getattr(sys, "orig_argv", None):
        return
    from ._reexec import interpreter_argv

    command = [sys.executable, *interpreter_argv(), "-m", "fastbus.run", *argv]
    setattr(sys, "orig_argv", command)  # setattr: the attribute is new in Python 3.10


def main(argv: Sequence[str] | None = None) -> int:
    """Install fastbus and run the program named by *argv* (default: ``sys.argv[1:]``).

    Returns 0 when the program ends normally; its ``SystemExit`` (and any other exception)
    propagates, so ``python -m fastbus.run`` ends with the status python would have given.
    """
    if argv is None:
        argv = sys.argv[1:]
    try:
        script, module, program_args = _parse(argv)
    except _UsageError as exc:
        _fail(EX_USAGE, f"{USAGE}\nfastbus.run: error: {exc}")
    if script is None and module is None:
        print(HELP, end="")
        return 0

    # Only a program started through this launcher gets its sys.path[0] replaced: python put
    # the current directory there for our own -m, the program expects its own entry (or,
    # under -P / -I, none at all, in which case there is nothing to replace).
    safe_path = getattr(sys.flags, "safe_path", False)  # Python 3.11+
    replace_path0 = __name__ == "__main__" and bool(sys.path) and not safe_path

    if script is not None:
        if not os.path.exists(script):
            # The wording python uses, so scripts that check it see no difference.
            where = os.path.abspath(script)
            reason = "[Errno 2] No such file or directory"
            _fail(EX_USAGE, f"{sys.executable}: can't open file {where!r}: {reason}")
        if _lacks_main_module(script):
            # python's own one-line refusal, status 1, where runpy would raise an ImportError
            # with a traceback; python names the path it put in sys.path[0].
            where = script if os.path.isabs(script) else os.path.join(os.getcwd(), script)
            _fail(EX_NO_MODULE, f"{sys.executable}: can't find '__main__' module in {where!r}")
        _remember_command_line(argv)
        _install()
        if replace_path0:
            sys.path[0] = _script_path_entry(script)
        sys.argv[:] = [script, *program_args]
        # run_path sets sys.argv[0] and a temporary __main__ module while the script runs.
        runpy.run_path(script, run_name="__main__")
        return 0

    assert module is not None
    if not module:
        _fail(EX_USAGE, f"{USAGE}\nfastbus.run: error: argument -m: expected a module name")
    _remember_command_line(argv)
    _install()
    # python sets sys.argv[0] to "-m" while the module is being found, then to its file;
    # run_module with alter_sys=True does the latter and restores both afterwards.
    sys.argv[:] = ["-m", *program_args]
    # Look the module up first, so that "no such module" is a one-line message (as python
    # gives it) while an ImportError raised by the module's own code keeps its traceback.
    problem = _module_problem(module)
    if problem is not None:
        _fail(EX_NO_MODULE, f"{sys.executable}: {problem}")
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


def _lacks_main_module(script: str) -> bool:
    """True for a directory or zip file with no ``__main__`` module, which python will not run.

    Anything that is not an import path entry (a plain file, whatever its name) runs as a
    script, as :func:`runpy.run_path` decides it.
    """
    import importlib.machinery
    import pkgutil

    if pkgutil.get_importer(script) is None:
        return False
    return importlib.machinery.PathFinder.find_spec("__main__", [script]) is None


def _install() -> None:
    import fastbus

    fastbus.install()


def _module_problem(name: str) -> str | None:
    """Say why ``python -m name`` could not start, or return None if it can."""
    if name.startswith("."):
        return "Relative module names not supported"
    try:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations is not None:
            if importlib.util.find_spec(name + ".__main__") is None:
                return (
                    f"No module named {name}.__main__; "
                    f"{name!r} is a package and cannot be directly executed"
                )
    except ImportError as exc:  # a parent package is missing
        return f"Error while finding module specification for {name!r} ({type(exc).__name__}: {exc})"
    if spec is None:
        return f"No module named {name}"
    return None


if __name__ == "__main__":
    sys.exit(main())
