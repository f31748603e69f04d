"""Sphinx configuration for fastbus's documentation."""

from importlib.metadata import PackageNotFoundError, version

project = "fastbus"
author = "The fastbus developers"
copyright = "2026, The fastbus developers"
try:
    release = version("fastbus")
except PackageNotFoundError:  # building from a tree that was never installed
    release = "unknown"
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
