"""Callbacks: watch a search generation by generation, log it, stop it.

Pass them as ``EvoPruneClassifier(callbacks=[...])``. After every generation
each callback receives the generation's record (the row appended to
``history_``) and the Pareto front so far; any callback may end the search
there by returning True or raising :class:`StopSearch`. The estimator then
records the callback's name in ``stop_reason_``.

Callbacks are estimator parameters: :func:`sklearn.base.clone` (and so
``GridSearchCV`` and ``cross_val_score``) gives every clone fresh copies
built from the callbacks' own parameters, as for any scikit-learn estimator.
"""

import csv
import os

from sklearn.base import BaseEstimator

__all__ = ["SearchCallback", "StopSearch", "CSVLogger", "ThresholdStopping"]


class StopSearch(Exception):
    """Raise from :meth:`SearchCallback.on_generation_end` to end the search.

    Equivalent to returning True; the message, if any, is shown with
    ``verbose > 0``. The generation that just ended is kept: the search stops
    between generations, never inside one.

    Examples
    --------
    >>> from evoprune_sklearn.callbacks import SearchCallback, StopSearch
    >>> class StopAtFrontSize(SearchCallback):
    ...     def __init__(self, size=5):
    ...         self.size = size
    ...     def on_generation_end(self, record, front):
    ...         if record["front_size"] >= self.size:
    ...             raise StopSearch(f"the front holds {self.size} members")
    """


class SearchCallback(BaseEstimator):
    """Base class of search callbacks.

    Override any of the three hooks; the default hooks do nothing. As for an
    estimator, ``__init__`` should only store its arguments, under their own
    names, so that :func:`sklearn.base.clone` and ``get_params`` work; keep
    the state of one search in attributes set by :meth:`on_search_begin`.

    The hooks run in the fitting process, between generations, whatever
    ``n_jobs`` is. A plain function ``f(record, front)`` may be passed in
    ``callbacks`` instead of a subclass: it is called like
    :meth:`on_generation_end`.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> from evoprune_sklearn.callbacks import SearchCallback
    >>> class PrintFrontSize(SearchCallback):
    ...     def on_generation_end(self, record, front):
    ...         print(record["generation"], len(front))
    >>> X, y = make_classification(n_samples=120, n_features=20, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(16,),
    ...                          pop_size=6, n_evaluations=12, random_state=0,
    ...                          callbacks=[PrintFrontSize()])
    >>> clf = clf.fit(X, y)  # doctest: +ELLIPSIS
    0 ...
    1 ...
    """

    def on_search_begin(self, estimator, history):
        """Called once per ``fit``, before its first generation.

        Parameters
        ----------
        estimator : EvoPruneClassifier
            The estimator being fitted (its parameters; not yet fitted).
        history : list of dict
            Records of the generations run before this fit: empty for a new
            search, the earlier generations when ``fit`` continues one
            (``warm_start=True``, or a checkpoint). Do not modify it.
        """

    def on_generation_end(self, record, front):
        """Called after every generation of the search.

        Parameters
        ----------
        record : dict
            The generation's row of ``history_`` (a copy): ``generation``,
            ``n_evaluations``, ``n_trained``, ``front_size``, ``seconds``,
            ``best_<objective>`` for each objective and ``hypervolume``.
        front : ParetoFront
            The non-dominated members found so far (immutable: the search
            builds a new front every generation, so it may be kept). Each
            member has ``genome``, ``objectives`` and ``params``; the class
            labels and training configuration are added after the search, so
            ``predict`` works on the fitted ``pareto_front_`` only.

        Returns
        -------
        stop : bool or None
            True ends the search after this generation.
        """

    def on_search_end(self, history, stop_reason):
        """Called once when the search of a ``fit`` ends, however it ends.

        Parameters
        ----------
        history : list of dict
            Every generation's record, earlier fits of a continued search
            included.
        stop_reason : str
            What ended the search (see ``stop_reason_`` of
            :class:`~evoprune_sklearn.EvoPruneClassifier`); ``"error"`` when
            an exception other than a Ctrl-C ended it.
        """


class CSVLogger(SearchCallback):
    """Write ``history_`` to a CSV file, one row a generation, as it grows.

    The file is (re)written when the search begins and a row is appended and
    flushed after every generation, so it can be watched (``tail -f``) or
    read by another program while the search runs, and it survives a killed
    process up to the last completed generation. When ``fit`` continues a
    search (``warm_start=True`` or a checkpoint), the rows of the earlier
    generations are written first: the file always holds the whole
    ``history_``. The columns are the keys of the generation records.

    Parameters
    ----------
    path : str or path-like
        The CSV file; its folder must exist.
    sep : str, default=","
        Field delimiter.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> from evoprune_sklearn.callbacks import CSVLogger
    >>> X, y = make_classification(n_samples=120, n_features=20, random_state=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "search.csv")
    >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(16,),
    ...                          pop_size=6, n_evaluations=12, random_state=0,
    ...                          callbacks=[CSVLogger(path)]).fit(X, y)
    >>> log = pd.read_csv(path)
    >>> len(log) == len(clf.history_), list(log.columns[:3])
    (True, ['generation', 'n_evaluations', 'n_trained'])
    """

    def __init__(self, path, sep=","):
        self.path = path
        self.sep = sep

    def on_search_begin(self, estimator, history):
        if not isinstance(self.path, (str, os.PathLike)):
            raise TypeError(
                f"CSVLogger path must be a file path, got {type(self.path).__name__}."
            )
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise ValueError(
                f"CSVLogger path={os.fspath(self.path)!r}: the folder {folder!r} "
                "does not exist."
            )
        self.columns_ = None
        # Truncate now: a stale file from an earlier search must not survive.
        with open(self.path, "w", newline="", encoding="utf-8"):
            pass
        for record in history:
            self._write(record)

    def on_generation_end(self, record, front):
        self._write(record)

    def _write(self, record):
        new = self.columns_ is None
        if new:
            self.columns_ = list(record)
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, self.columns_, delimiter=self.sep,
                                    extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(record)


class ThresholdStopping(SearchCallback):
    """Stop the search once a value of the generation record reaches a threshold.

    Parameters
    ----------
    threshold : float
        The value to reach.
    metric : str, default="best_accuracy"
        A key of the generation records (see ``history_``):
        ``"best_accuracy"``, ``"best_robustness"``, ``"best_complexity"``,
        ``"hypervolume"``, ``"front_size"``, ...
    greater_is_better : bool or None, default=None
        True: stop when ``record[metric] >= threshold``; False: when
        ``record[metric] <= threshold``. None: False for
        ``"best_complexity"`` (fewer genes are better), True otherwise.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> from evoprune_sklearn.callbacks import ThresholdStopping
    >>> X, y = make_classification(n_samples=120, n_features=20, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(16,),
    ...                          pop_size=6, n_evaluations=60, random_state=0,
    ...                          callbacks=[ThresholdStopping(0.5)]).fit(X, y)
    >>> clf.stop_reason_, clf.n_evaluations_
    ('ThresholdStopping', 6)
    """

    def __init__(self, threshold, metric="best_accuracy", greater_is_better=None):
        self.threshold = threshold
        self.metric = metric
        self.greater_is_better = greater_is_better

    def on_generation_end(self, record, front):
        if self.metric not in record:
            raise ValueError(
                f"ThresholdStopping metric={self.metric!r} is not in the generation "
                f"records; valid metrics are {sorted(record)}."
            )
        greater = self.greater_is_better
        if greater is None:
            greater = self.metric != "best_complexity"
        value = record[self.metric]
        return value >= self.threshold if greater else value <= self.threshold


# Stop reasons the estimator itself gives; a callback may not take their names.
RESERVED_NAMES = frozenset(
    {"n_evaluations", "max_time", "n_iter_no_change", "interrupted", "error",
     "no_new_genomes"}
)


def check_callbacks(callbacks):
    """Validate ``callbacks=``; return a list of ``(name, callback)``.

    Each item is a callback (an object with ``on_generation_end``, or a plain
    function ``f(record, front)``) or a ``(name, callback)`` pair. A callback's
    name is what ``stop_reason_`` says when it stops the search: the pair's
    name, else the class name (the function name for a function).
    """
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(
            "callbacks must be a list of callbacks or (name, callback) pairs, or "
            f"None; got {type(callbacks).__name__}."
        )
    named = []
    for i, item in enumerate(callbacks):
        name = None
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, item = item
        if not (hasattr(item, "on_generation_end") or callable(item)):
            raise TypeError(
                f"callbacks[{i}]={item!r} is neither a callback (an object with "
                "on_generation_end, e.g. a SearchCallback) nor a function "
                "f(record, front), nor a (name, callback) pair."
            )
        if isinstance(item, type):
            raise TypeError(
                f"callbacks[{i}] is the class {item.__name__}; pass an instance, "
                f"e.g. {item.__name__}(...)."
            )
        if name is None:
            name = (item.__name__ if not hasattr(item, "on_generation_end")
                    and hasattr(item, "__name__") else type(item).__name__)
        if name in RESERVED_NAMES:
            raise ValueError(
                f"callbacks[{i}] is named {name!r}, a stop reason of the estimator "
                f"itself; reserved names are {sorted(RESERVED_NAMES)}. Pass it as "
                "a (name, callback) pair with another name."
            )
        named.append((name, item))
    names = [n for n, _ in named]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"callbacks has several callbacks named {duplicates}; give each its "
            "own name with (name, callback) pairs, e.g. [('log_a', CSVLogger('a.csv')), "
            "('log_b', CSVLogger('b.csv'))]."
        )
    return named
