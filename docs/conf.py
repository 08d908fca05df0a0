"""Sphinx configuration of the evoprune_sklearn documentation.

Build with ``make docs`` (warnings are errors). The build works offline:
intersphinx inventories are only requested when their hosts answer within a
second, and the gallery examples use only bundled data and weights.
"""

import os
import socket
import sys
import warnings
from urllib.parse import urlparse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..")))
sys.path.insert(0, os.path.join(HERE, "_sphinxext"))

import evoprune_sklearn  # noqa: E402

# -- project ---------------------------------------------------------------
project = "evoprune_sklearn"
author = "evoprune_sklearn developers"
copyright = "2025, evoprune_sklearn developers"
version = release = evoprune_sklearn.__version__

# -- extensions ------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
root_doc = "index"
default_role = "literal"
# Docstrings write "mean |SHAP|" for the mean absolute SHAP value; in reST
# |...| is a substitution, so define it to render as written.
rst_prolog = r"""
.. |SHAP| replace:: \|SHAP\|
"""

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
# numpydoc renders class members itself through the autosummary templates.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]

# -- intersphinx, offline-safe ---------------------------------------------
# Remote inventories are fetched only when their host is reachable. Without a
# network the mapping is dropped, so the build neither waits on timeouts nor
# fails under -W; references to numpy/sklearn/torch then render as plain text.
_INVENTORIES = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "sklearn": ("https://scikit-learn.org/stable/", None),
    "torch": ("https://docs.pytorch.org/docs/stable/", None),
    "matplotlib": ("https://matplotlib.org/stable/", None),
    "pandas": ("https://pandas.pydata.org/docs/", None),
    "shap": ("https://shap.readthedocs.io/en/latest/", None),
}


def _reachable(url, timeout=1.0):
    host = urlparse(url).hostname
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


if os.environ.get("EVOPRUNE_DOCS_OFFLINE"):
    intersphinx_mapping = {}
else:
    intersphinx_mapping = {
        name: target for name, target in _INVENTORIES.items() if _reachable(target[0])
    }
intersphinx_timeout = 5
if len(intersphinx_mapping) < len(_INVENTORIES):
    print(
        "intersphinx: offline for "
        f"{sorted(set(_INVENTORIES) - set(intersphinx_mapping))}; external "
        "references render as plain text."
    )

# -- sphinx-gallery ----------------------------------------------------------
# Examples named plot_*.py run on every build (small images, small budgets);
# the others are rendered without running (heavy: full-size backbones).
os.environ.setdefault("PYTHONHASHSEED", "0")
sphinx_gallery_conf = {
    "examples_dirs": os.path.join("..", "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "doc_module": ("evoprune_sklearn",),
    "backreferences_dir": os.path.join("gen_modules", "backreferences"),
    # Every figure is a pyplot figure (the package's Displays and shap's plots
    # create them through pyplot), so sphinx-gallery's own scraper finds them.
    "image_scrapers": ("matplotlib",),
    "within_subsection_order": "gallery_order.ExampleOrder",
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 0,
    "download_all_examples": False,
    "plot_gallery": "True",
    "abort_on_example_error": True,
    "matplotlib_animations": False,
}

# Third-party deprecation noise must not turn into -W errors or clutter the
# rendered outputs of the examples.
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning, module="skorch")

# -- HTML -------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"evoprune_sklearn {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
html_sidebars = {"index": [], "getting_started": [], "changelog": []}
html_show_sourcelink = True


# -- API completeness ----------------------------------------------------------
# Every public name must appear in api.rst; a new name without a reference
# page fails the build (warnings are errors) instead of going undocumented.
PUBLIC_MODULES = ("evoprune_sklearn", "evoprune_sklearn.datasets", "evoprune_sklearn.plotting")


def _check_api_complete(app):
    import importlib
    import re

    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    text = open(os.path.join(HERE, "api.rst"), encoding="utf-8").read()
    listed = set(re.findall(r"^\s+([A-Za-z_][\w.]*)\s*$", text, flags=re.M))
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            if name.startswith("__"):
                continue
            short = f"{modname.split('.', 1)[1]}.{name}" if "." in modname else name
            if name not in listed and short not in listed:
                logger.warning(
                    f"public name {modname}.{name} is missing from docs/api.rst"
                )


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn generates set_{fit,score,...}_request for metadata routing;
    # their docstrings point into scikit-learn's own glossary. They are
    # documented there, once for every estimator.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    # Explanation subclasses shap.Explanation: shap documents its own members.
    defined_in = getattr(getattr(obj, "fget", obj), "__module__", None) or ""
    if defined_in.split(".")[0] == "shap":
        return True
    return None


def setup(app):
    app.connect("builder-inited", _check_api_complete)
    app.connect("autodoc-skip-member", _skip_member)
