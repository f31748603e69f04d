"""fastbus as a drop-in for CherryPy: the wspbus shim, install(), and CherryPy's own bus tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import fastbus
import fastbus.wspbus

TIMEOUT = 300


def child(core_env, code, *args):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=core_env, capture_output=True, text=True, timeout=TIMEOUT,
    )


def test_wspbus_shim_has_the_public_names_of_cherrypys():
    from cherrypy.process import wspbus as stock

    public = {"Bus", "ChannelFailures", "states", "bus"}
    assert public <= set(dir(stock))
    assert set(fastbus.wspbus.__all__) == public
    assert fastbus.wspbus.Bus is fastbus.Bus
    assert fastbus.wspbus.ChannelFailures is fastbus.ChannelFailures
    assert fastbus.wspbus.states is fastbus.states
    assert isinstance(fastbus.wspbus.bus, fastbus.Bus)


def test_bus_has_the_whole_public_surface_of_wspbus_bus():
    import inspect

    from cherrypy.process import wspbus as stock

    names = {n for n in dir(stock.Bus) if not n.startswith("__")}
    missing = names - set(dir(fastbus.Bus))
    assert not missing
    for name in names:
        theirs = getattr(stock.Bus, name)
        if inspect.isfunction(theirs) and not name.startswith("_"):
            ours = inspect.signature(getattr(fastbus.Bus, name)).parameters.values()
            # fastbus's additions (subscribe's weak and once) are keyword-only, with defaults.
            kept = [p.name for p in ours if p.kind is not p.KEYWORD_ONLY]
            assert kept == list(inspect.signature(theirs).parameters), name
            added = [p for p in ours if p.kind is p.KEYWORD_ONLY]
            assert all(p.default is not p.empty for p in added), name


def test_install_makes_cherrypy_engine_a_fastbus_bus(core_env, core_name):
    result = child(core_env, f"""
        import fastbus
        assert not fastbus.installed()
        fastbus.install()
        fastbus.install()  # again: harmless
        import cherrypy
        from cherrypy.process import wspbus
        import cherrypy.process.wspbus as by_path
        assert fastbus.COMPILED is {core_name == 'compiled'}
        assert isinstance(cherrypy.engine, fastbus.Bus), type(cherrypy.engine)
        assert wspbus is by_path and wspbus.Bus is fastbus.Bus
        assert wspbus.bus is cherrypy.engine is fastbus.wspbus.bus
        assert fastbus.installed()
        # what CherryPy did to the engine at import
        assert 'before_request' in cherrypy.engine.listeners
        assert len(cherrypy.engine.listeners['before_request']) == 0
        assert cherrypy.engine.autoreload.bus is cherrypy.engine
        print('OK')
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK"


def test_install_after_cherrypy_was_imported_raises(core_env):
    result = child(core_env, """
        import cherrypy, fastbus
        try:
            fastbus.install()
        except RuntimeError as exc:
            print('RAISED', exc)
        assert not fastbus.installed()
    """)
    assert result.returncode == 0, result.stderr
    assert "RAISED fastbus.install() was called after cherrypy was imported" in result.stdout
    assert "python -m fastbus.run" in result.stdout


def test_installed_is_false_without_cherrypy(core_env):
    # In a child: this process has imported cherrypy (other tests need it), so the claim
    # "without cherrypy" can only be checked where cherrypy was never imported.
    result = child(core_env, """
        import sys
        import fastbus
        seen = [fastbus.installed()]
        fastbus.install()  # the import hook alone imports nothing
        seen.append(fastbus.installed())
        seen.append(any(name == "cherrypy" or name.startswith("cherrypy.") for name in sys.modules))
        print(seen)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[False, False, False]\n"


def test_cherrypys_own_bus_tests_pass_on_fastbus(core_env, core_name, tmp_path):
    """CherryPy's test_bus module, run unchanged from the installed package, on fastbus."""
    (tmp_path / "empty.ini").write_text("[pytest]\n")  # keep our own pytest settings out
    result = subprocess.run(
        [
            sys.executable, "-c",
            "import sys, fastbus; fastbus.install(); import pytest, cherrypy;"
            f"assert fastbus.COMPILED is {core_name == 'compiled'};"
            "code = pytest.main(sys.argv[1:]);"
            "assert fastbus.installed(), 'cherrypy.engine is not a fastbus bus';"
            "sys.exit(code)",
            "--pyargs", "cherrypy.test.test_bus", "-q", "-p", "no:cacheprovider",
            "-c", str(tmp_path / "empty.ini"), "--rootdir", str(tmp_path),
        ],
        env=core_env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
