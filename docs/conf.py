"""Sphinx configuration: the API reference is built from restorekit's docstrings (numpydoc style).

Build with ``make docs`` (warnings are errors); the HTML lands in ``docs/_build/html``.
"""

import sys
from pathlib import Path

import restorekit
from restorekit.nn import extension

# docs/_ext: the directives {restorekit-help} (a command's --help, produced by the build) and
# {gallery-figure} (figures of restorations run by the build; restorekit_gallery.py).
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

# restorekit.nn.ops registers the fake kernels of the compiled ops, so it imports only once the
# extension is loaded: load it (built by `make install`) before autodoc imports the module.
extension.load()

project = "restorekit"
author = "the restorekit developers"
release = restorekit.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
    "restorekit_docs",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext"]

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Heavy optional imports that a docs build does not need to execute.
autodoc_mock_imports = ["ducc0", "bm3d"]
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]

html_theme = "alabaster"
html_title = f"restorekit {release}"
# torch's own docstrings (inherited by autograd Functions) point at labels of torch's docs.
autodoc_inherit_docstrings = False
