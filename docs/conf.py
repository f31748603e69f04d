"""Sphinx configuration for fastbus's documentation."""

import importlib
import sys
from pathlib import Path

# Document the tree these docs are in, whatever fastbus is installed elsewhere.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
fastbus = importlib.import_module("fastbus")

project = "fastbus"
author = "The fastbus developers"
copyright = "2026, The fastbus developers"
release = fastbus.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
root_doc = "index"
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
html_theme = "alabaster"


def _drop_self(app, what, name, obj, options, signature, return_annotation):
    """Drop ``self`` from a method signature taken from a compiled method's docstring.

    Cython's ``embedsignature`` writes ``CoreBus.subscribe(self, channel, ...)`` as the first
    docstring line, and autodoc uses it as written, so on the compiled core the registry
    methods would show ``self`` where the pure core's (and every other method) do not.
    """
    if what == "method" and signature and signature.startswith("(self"):
        rest = signature[len("(self") :].lstrip()
        if rest.startswith(","):
            return "(" + rest[1:].lstrip(), return_annotation
        if rest.startswith(")"):
            return "(" + rest, return_annotation
    return None


def setup(app):
    app.connect("autodoc-process-signature", _drop_self)
