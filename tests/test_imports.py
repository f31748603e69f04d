"""``import fastbus`` loads the bus only; the rest comes on first use, under the same names.

Each check runs in a fresh interpreter, since this one has long imported everything. The
children run with ``-S``: no site module, so nothing (an editable install's finder, a
``sitecustomize``) imports the modules in question before fastbus does and hides them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

TIMEOUT = 60

# Modules that only restart(), install() or a plugin needs.
LAZY_MODULES = ("subprocess", "tempfile", "fastbus._install", "fastbus.plugins")


def child_report(env: dict[str, str], code: str) -> object:
    """Run *code* in ``python -S`` and return the literal its last output line holds."""
    done = subprocess.run(
        [sys.executable, "-S", "-c", textwrap.dedent(code)],
        env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


def test_import_fastbus_loads_no_process_helper_and_no_plugin(core_env: dict[str, str], core_name: str) -> None:
    before, added, compiled = child_report(core_env, f"""
        import sys
        lazy = {LAZY_MODULES!r}
        def matching(names):
            return sorted(n for n in names if any(n == m or n.startswith(m + ".") for m in lazy))
        before = set(sys.modules)
        import fastbus
        print((matching(before), matching(set(sys.modules) - before), fastbus.COMPILED))
    """)
    assert before == [], "these were imported before fastbus; the check would prove nothing"
    assert added == []
    assert compiled is (core_name == "compiled")


def test_lazy_names_resolve_on_first_use(core_env: dict[str, str]) -> None:
    report = child_report(core_env, """
        import sys
        import fastbus
        seen = {}
        from fastbus import SimplePlugin, install, installed
        seen["from_fastbus"] = [
            (obj.__module__, obj.__qualname__) for obj in (SimplePlugin, install, installed)
        ]
        seen["plugins_attribute"] = fastbus.plugins.__name__
        seen["same_objects"] = (
            fastbus.SimplePlugin is fastbus.plugins.SimplePlugin is SimplePlugin,
            fastbus.plugins.SignalHandler is fastbus.plugins.signals.SignalHandler,
            fastbus.install is install,
        )
        from fastbus.plugins import *
        from fastbus.plugins import tasks
        names = fastbus.plugins.__all__
        seen["star"] = sorted(name for name in names if name in globals())
        seen["homes"] = sorted({getattr(fastbus.plugins, name).__module__ for name in names})
        seen["tasks"] = tasks.__name__
        seen["dir"] = (
            sorted((set(fastbus.__all__) | {"plugins"}) - set(dir(fastbus))),
            sorted(set(names) - set(dir(fastbus.plugins))),
        )
        unknown = []
        for module in (fastbus, fastbus.plugins):
            try:
                module.no_such_name
            except AttributeError as exc:
                unknown.append(str(exc))
        seen["unknown"] = unknown
        print(repr(seen))
    """)
    assert report["from_fastbus"] == [
        ("fastbus.plugins._simple", "SimplePlugin"),
        ("fastbus._install", "install"),
        ("fastbus._install", "installed"),
    ]
    assert report["plugins_attribute"] == "fastbus.plugins"
    assert report["same_objects"] == (True, True, True)
    assert report["star"] == sorted(
        ["Autoreloader", "BackgroundTask", "Daemonizer", "DropPrivileges", "Monitor", "PIDFile",
         "PerpetualTimer", "SignalHandler", "SimplePlugin", "ThreadManager"]
    )
    assert report["homes"] == [
        f"fastbus.plugins.{module}"
        for module in ("_simple", "autoreload", "daemon", "monitor", "pidfile", "privileges",
                       "signals", "tasks", "threads")
    ]
    assert report["tasks"] == "fastbus.plugins.tasks"
    assert report["dir"] == ([], [])
    assert report["unknown"] == [
        "module 'fastbus' has no attribute 'no_such_name'",
        "module 'fastbus.plugins' has no attribute 'no_such_name'",
    ]


def test_dir_lists_the_public_names_and_no_helper() -> None:
    import fastbus
    import fastbus.plugins

    public = [name for name in dir(fastbus) if not name.startswith("_")]
    assert public == sorted(name for name in [*fastbus.__all__, "plugins"] if name != "__version__")
    assert "__version__" in dir(fastbus)
    modules = ["autoreload", "daemon", "monitor", "pidfile", "privileges", "signals", "tasks", "threads"]
    public = [name for name in dir(fastbus.plugins) if not name.startswith("_")]
    assert public == sorted([*fastbus.plugins.__all__, *modules])
