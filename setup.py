"""Build fastbus's compiled core, falling back to pure Python when it cannot be built.

``FASTBUS_NO_EXTENSIONS=1`` skips the build on purpose. Without it, a missing compiler (or a
failed compile) still yields a working install of the pure-Python core, and the build log says
so loudly; ``FASTBUS_REQUIRE_EXTENSIONS=1`` turns that fallback into an error instead, which is
what CI uses so that it can never pass on the pure core alone.
"""

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext


def _flag(name):
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


NO_EXTENSIONS = _flag("FASTBUS_NO_EXTENSIONS")
REQUIRE_EXTENSIONS = _flag("FASTBUS_REQUIRE_EXTENSIONS")
HERE = Path(__file__).resolve().parent


def _extensions():
    if NO_EXTENSIONS:
        print("fastbus: FASTBUS_NO_EXTENSIONS is set; installing the pure-Python core only.")
        return []
    from Cython.Build import cythonize

    sources = sorted(str(p.relative_to(HERE)) for p in (HERE / "fastbus").glob("*.pyx"))
    return cythonize(
        sources,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
        },
    )


class OptionalBuildExt(build_ext):
    """Build the extensions, or explain why not and carry on with pure Python.

    An extension that failed is dropped from the command's list once the others are built, so
    that nothing downstream expects its file: copying it into the tree (``--inplace``), or
    linking it into an editable install's tree (strict mode), would fail the install outright.
    """

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all: distutils raises at setup
            self._give_up(exc)
            self.extensions = []

    def build_extensions(self):
        self._failed = set()
        super().build_extensions()
        self.extensions = [ext for ext in self.extensions if ext.name not in self._failed]

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._give_up(exc, ext.name)
            self._failed.add(ext.name)

    def _give_up(self, exc, name="the compiled core"):
        if REQUIRE_EXTENSIONS:
            raise
        message = (
            f"fastbus: could not build {name} ({exc.__class__.__name__}: {exc}).\n"
            "fastbus: installing the pure-Python core only; it behaves the same, only slower.\n"
            "fastbus: install a C compiler and Python headers, then reinstall, for the compiled core."
        )
        print("*" * 75, message, "*" * 75, sep="\n", file=sys.stderr)


setup(
    ext_modules=_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
    # ``pip install -e .`` in setuptools' default (lenient) mode serves this flat layout
    # through an import hook, which type checkers cannot follow: mypy then reports that
    # fastbus does not exist. Strict mode puts a tree of links to the package's files on
    # sys.path instead, which every tool reads like an installed package. A module added
    # after the install needs a re-install to be seen (an edit to an existing file does not);
    # ``--config-settings editable_mode=...`` still overrides this.
    options={"editable_wheel": {"mode": "strict"}},
)
