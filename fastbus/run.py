"""``python -m fastbus.run``: run an unchanged CherryPy program on fastbus.

::

    python -m fastbus.run app.py [args...]
    python -m fastbus.run -m package.module [args...]

CherryPy builds ``cherrypy.engine`` when it is first imported, so the swap has to happen
before the program's own ``import cherrypy``. This launcher calls :func:`fastbus.install`
and then runs the script or module the way ``python`` itself would, so the program cannot
tell the difference except that ``fastbus.installed()`` is true once it has imported
CherryPy: the same ``sys.argv`` and ``sys.path[0]``; a fresh ``__main__`` module with the
same names, and for a script the same absolute ``__file__`` (which python removes again
once the script has ended); an uncaught exception or a syntax error reported with the same
traceback, no frame of runpy or fastbus added; the same exit status.

A script file is read and compiled in Python, as ``runpy`` and importing do, where python
reads it with its own file tokenizer; the only differences left are in how a malformed file
is reported: bytes that are not UTF-8 with no encoding declared, a NUL byte, a declaration
that contradicts a BOM and, on Python 3.9, the line of an error found at the end of the file.

``Bus.restart()`` (which CherryPy's Autoreloader calls) re-executes the interpreter with
``sys.orig_argv``, the command line as typed, so ``-m fastbus.run`` is kept and the new
process comes back up on fastbus too.

To go back to stock CherryPy, run the program with plain ``python`` again.
"""

from __future__ import annotations

import builtins
import marshal
import os
import pkgutil
import runpy
import sys
from collections.abc import Sequence
from importlib.machinery import BuiltinImporter, SourceFileLoader, SourcelessFileLoader
from importlib.util import MAGIC_NUMBER
from types import CodeType, TracebackType
from typing import Any, NoReturn

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

# The exit status CPython's own launcher gives a bad command line or a script that cannot be
# opened (runpy reports a module that cannot be found, with status 1).
EX_USAGE = 2


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


def _real_directory(script: str) -> str:
    """The ``sys.path[0]`` python gives a script file: its real directory (symlinks resolved)."""
    return os.path.dirname(os.path.realpath(script))


def _as_python_names_it(path: str) -> str:
    """The path made absolute as python (3.9+) makes a script's: joined, not normalised."""
    return path if os.path.isabs(path) else os.path.join(os.getcwd(), path)


def _program_name() -> str:
    """The name python's own startup messages begin with: the interpreter as typed."""
    orig_argv = getattr(sys, "orig_argv", None)  # Python 3.10+
    return orig_argv[0] if orig_argv else sys.executable


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
    setattr(sys, "orig_argv", command)  # setattr: the attribute is new in Python 3.10  # noqa: B010


def _started_as_launcher() -> bool:
    """True if this process is ``python -m fastbus.run`` (or this file), the program not yet begun."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return isinstance(main_file, str) and os.path.realpath(main_file) == os.path.realpath(__file__)


def main(argv: Sequence[str] | None = None) -> int:
    """Install fastbus and run the program named by *argv* (default: ``sys.argv[1:]``).

    The program runs in the ``__main__`` module, whose namespace it gets as python gives it
    (so call this only as a process's entry point). Returns 0 when the program ends
    normally; its ``SystemExit`` (and any other exception) propagates, and python then
    reports it exactly as for ``python script.py``: the traceback starts at the program's own
    code, and the exit status is the one python would have given.
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

    # python put an entry for our own -m first on sys.path (the working directory) unless -P
    # or -I told it not to; that entry is ours to hand over to the program.
    isolated = sys.flags.isolated or getattr(sys.flags, "safe_path", False)  # safe_path: 3.11+
    own_path0 = _started_as_launcher() and bool(sys.path) and not isolated

    if script is not None:
        _run_path(script, program_args, argv, own_path0)
        return 0
    assert module is not None
    if not module:
        _fail(EX_USAGE, f"{USAGE}\nfastbus.run: error: argument -m: expected a module name")
    _remember_command_line(argv)
    _install()
    if own_path0:
        sys.path[0] = os.getcwd()  # what python -m puts there (ours already is, under -m)
    # python sets sys.argv[0] to "-m" while the module is being found, then to its file, as
    # _run_module_as_main does.
    sys.argv[:] = ["-m", *program_args]
    _fresh_main_namespace()
    _run_as_main_module(module, alter_argv=True)
    return 0


def _run_path(script: str, program_args: list[str], argv: Sequence[str], own_path0: bool) -> None:
    """Run a script file, or a directory or zip file's ``__main__``, as ``python script`` does."""
    if pkgutil.get_importer(script) is not None:
        # A directory or zip file: python puts it first on sys.path (even under -P) and runs
        # its __main__ module; runpy refuses one without __main__ in python's own words.
        _remember_command_line(argv)
        _install()
        entry = _as_python_names_it(script)
        if own_path0:
            sys.path[0] = entry
        else:
            sys.path.insert(0, entry)
        sys.argv[:] = [script, *program_args]
        _fresh_main_namespace()
        _run_as_main_module("__main__", alter_argv=False)
        return

    path = _as_python_names_it(script)
    try:
        with open(script, "rb") as file:
            content = file.read()
    except OSError as exc:
        # The wording and status python uses, so scripts that check it see no difference.
        reason = f"[Errno {exc.errno}] {exc.strerror}"
        _fail(EX_USAGE, f"{_program_name()}: can't open file {path!r}: {reason}")
    _remember_command_line(argv)
    _install()
    if own_path0:
        sys.path[0] = _real_directory(script)
    sys.argv[:] = [script, *program_args]

    namespace = _fresh_main_namespace()
    namespace["__file__"] = path
    namespace["__cached__"] = None
    compiled = _is_compiled_file(path, content)
    loader = SourcelessFileLoader if compiled else SourceFileLoader
    namespace["__loader__"] = loader("__main__", path)
    try:
        if compiled:
            code = _code_of_compiled(content)
        else:
            code = compile(content, path, "exec", dont_inherit=True)  # not our __future__ flags
    except BaseException as exc:
        # python compiles before running anything, so its report has no traceback at all.
        _report_uncaught_as_python(exc, None, namespace)
        raise
    try:
        _exec_main(code, namespace)
    except SystemExit:
        raise  # python leaves __file__ in place when the program exits this way
    except BaseException as exc:
        own = _frames_after(exc.__traceback__, _exec_main.__code__)
        _report_uncaught_as_python(exc, own, namespace)
        raise
    _forget_file(namespace)


def _fresh_main_namespace() -> dict[str, Any]:
    """Reset ``__main__``'s namespace to the one python gives a program before it runs.

    When started with ``-m``, this very module's code was run in it, and the program must not
    find our names there (runpy reuses the namespace for ``-m`` and directories). The keys go
    in python's order, since ``globals()`` shows it.
    """
    namespace = sys.modules["__main__"].__dict__
    namespace.clear()
    namespace.update(
        __name__="__main__",
        __doc__=None,
        __package__=None,
        __loader__=BuiltinImporter,
        __spec__=None,
    )
    if sys.version_info < (3, 14):  # python stopped creating it for __main__ in 3.14
        namespace["__annotations__"] = {}
    namespace["__builtins__"] = builtins
    return namespace


def _is_compiled_file(path: str, content: bytes) -> bool:
    """Tell a ``.pyc`` file the way python does: by its name, or its magic number's first half."""
    return path.endswith(".pyc") or content[:2] == MAGIC_NUMBER[:2]


def _code_of_compiled(content: bytes) -> CodeType:
    """The code object of a ``.pyc`` file's content, refused in python's words if unusable."""
    if content[:4] != MAGIC_NUMBER:
        raise RuntimeError("Bad magic number in .pyc file")
    code = marshal.loads(content[16:])  # after the magic number, flags, and date or hash, size
    if not isinstance(code, CodeType):
        raise RuntimeError("Bad code object in .pyc file")
    return code


def _exec_main(code: CodeType, namespace: dict[str, Any]) -> None:
    """Run the script's code; the frames of its traceback that python would show begin below."""
    exec(code, namespace)


def _run_as_main_module(name: str, alter_argv: bool) -> None:
    """Run *name* as ``__main__`` through the very function python calls for ``-m``.

    That function (private to runpy, yet the one CPython's launcher calls by name) finds the
    module, reports a missing one in python's words, and adds the same frames to a traceback
    as under ``python -m``; the frames python would show begin below this one.
    """
    try:
        runpy._run_module_as_main(name, alter_argv)  # type: ignore[attr-defined]
    except SystemExit:
        raise
    except BaseException as exc:
        _report_uncaught_as_python(exc, _frames_after(exc.__traceback__, _run_as_main_module.__code__))
        raise


def _frames_after(traceback: TracebackType | None, boundary: CodeType) -> TracebackType | None:
    """The part of *traceback* below the frame running *boundary*: the program's own frames."""
    entry = traceback
    while entry is not None:
        if entry.tb_frame.f_code is boundary:
            return entry.tb_next
        entry = entry.tb_next
    return traceback


def _forget_file(namespace: dict[str, Any]) -> None:
    # python removes these from __main__ once a script has ended, by return or by exception,
    # before atexit handlers run; a SystemExit leaves them.
    namespace.pop("__file__", None)
    namespace.pop("__cached__", None)


def _report_uncaught_as_python(
    exc: BaseException, traceback: TracebackType | None, namespace: dict[str, Any] | None = None
) -> None:
    """Make python's report of *exc*, about to escape the program, show only *traceback*.

    The exception goes on up through this module and runpy, whose frames python would add to
    its report. Letting it go on (rather than printing it here and exiting) keeps everything
    else python does with an uncaught exception: ``sys.last_*``, the status (1, or death by
    SIGINT for KeyboardInterrupt), then threads joined and atexit handlers run. Only the
    excepthook in place is wrapped, once, to be handed the program's own traceback.
    """
    hook = getattr(sys, "excepthook", None)
    if hook is None:  # the program deleted it; python says so, with what it has
        return

    def excepthook(kind: type[BaseException], value: BaseException, shown: TracebackType | None) -> None:
        sys.excepthook = hook  # the program's hook sees itself installed, as under python
        if value is exc:
            shown = traceback
            value.__traceback__ = traceback
            if getattr(sys, "last_value", None) is value:
                sys.last_traceback = traceback
        try:
            hook(kind, value, shown)
        finally:
            if namespace is not None:
                _forget_file(namespace)

    sys.excepthook = excepthook


def _install() -> None:
    from ._install import install

    install()


if __name__ == "__main__":
    # This module's namespace is __main__'s, which the program is about to be given afresh:
    # run from the module under its own name instead.
    from fastbus.run import main as _main

    _main()
