"""Reading order of the example gallery: a newcomer's path, not the alphabet."""

ORDER = [
    "plot_quickstart.py",
    "plot_pareto_front.py",
    "plot_choosing_a_member.py",
    "plot_ensembles.py",
    "plot_robustness_modes.py",
    "plot_explain_shap.py",
    "plot_pipeline_gridsearch.py",
    "plot_image_folder.py",
]


class ExampleOrder:
    """Sort key: files in ``ORDER`` first, in that order; others alphabetically."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        if filename in ORDER:
            return (0, ORDER.index(filename), filename)
        return (1, 0, filename)

    def __repr__(self):
        return f"{type(self).__name__}()"
