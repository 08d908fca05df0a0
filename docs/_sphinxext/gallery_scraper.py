"""Sphinx-Gallery scraper for matplotlib Figures that pyplot does not manage.

``evoprune_sklearn.plotting`` returns :class:`matplotlib.figure.Figure`
objects built without pyplot (so a library call never opens windows or leaks
global state). Sphinx-Gallery's own matplotlib scraper only sees pyplot's
figures, so this one saves every such Figure that a cell binds to a top-level
name and that was not shown before.
"""

from pathlib import PurePosixPath

from sphinx_gallery.scrapers import figure_rst

_SHOWN = {}


def figure_scraper(block, block_vars, gallery_conf, **kwargs):
    """Save new standalone Figures bound to names in the example's globals."""
    from matplotlib.figure import Figure

    src = str(block_vars.get("src_file", ""))
    shown = _SHOWN.setdefault(src, [])
    new = []
    for value in list(block_vars["example_globals"].values()):
        if (
            isinstance(value, Figure)
            and value.canvas.manager is None  # pyplot's scraper handles the rest
            and not any(value is f for f in shown)
            and not any(value is f for f in new)
        ):
            new.append(value)
    paths = []
    for fig, path in zip(new, block_vars["image_path_iterator"]):
        path = PurePosixPath(path)
        fig.savefig(path, dpi=110)
        shown.append(fig)
        paths.append(path)
    return figure_rst(paths, gallery_conf["src_dir"])
