"""Sphinx-Gallery scraper for matplotlib Figures that pyplot does not manage.

``evoprune_sklearn.plotting`` returns :class:`matplotlib.figure.Figure`
objects built without pyplot (so a library call never opens windows or leaks
global state). Sphinx-Gallery's own matplotlib scraper only sees pyplot's
figures, so this one saves every such Figure that a cell binds to a top-level
name and that was not shown before. It must come *before* "matplotlib" in
``image_scrapers``.
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
        if not isinstance(value, Figure) or any(value is f for f in shown + new):
            continue
        if value.canvas.manager is not None:
            # A pyplot figure: Sphinx-Gallery's matplotlib scraper (which must
            # run after this one) saves and closes it. Remember it, because a
            # closed pyplot figure loses its manager and would look new later.
            shown.append(value)
        else:
            new.append(value)
    paths = []
    for fig, path in zip(new, block_vars["image_path_iterator"]):
        path = PurePosixPath(path)
        fig.savefig(path, dpi=110)
        shown.append(fig)
        paths.append(path)
    return figure_rst(paths, gallery_conf["src_dir"])
