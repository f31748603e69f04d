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


def _no_constructor_types(app, what, name, obj, options, signature, return_annotation):
    """Keep the types of the pure core's ``__new__(*args, **kwargs) -> CoreBus`` off ``Bus``.

    ``Bus()`` takes no arguments (api.md gives that signature); the core's ``__new__`` accepts
    any only so that subclasses can have their own. Some Sphinx versions (7.x) read it as the
    class's signature and would list its types, naming the private core class.
    """
    if what == "class" and name == "fastbus.Bus":
        app.env.temp_data.get("annotations", {}).pop(name, None)


def setup(app):
    app.connect("autodoc-process-signature", _drop_self)
    # After sphinx.ext.autodoc.typehints has recorded the annotations (priority 500).
    app.connect("autodoc-process-signature", _no_constructor_types, priority=600)
