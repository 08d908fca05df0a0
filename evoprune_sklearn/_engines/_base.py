"""What every engine shares: the settings, the result, the loss and the table.

An engine trains one head per genome of a generation. It is a subclass of
:class:`Engine` in a module of its own, registered with
:func:`register_engine`; :func:`train_heads` picks the registered engine
that serves the estimator's ``engine`` option and the training settings
(:class:`TrainingConfig`), and every engine reads all its settings from
that one object.

Every engine starts every candidate from the same dense initial weights
(drawn once per fit from ``init_seed``), so a genome's trained head is a
pure function of the genome: the result does not depend on which other
genomes share its generation, on ``n_jobs``, or on the order of
evaluation. Nor on the number of threads: training and logits run inside
:func:`~evoprune_sklearn._parallel.deterministic_arithmetic`, every torch
kernel on one thread, and each engine spreads its work over threads in
pieces of a shape fixed by the problem.
"""

import threading
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from .._head import HeadSpec
from .._parallel import deterministic_arithmetic

__all__ = [
    "Engine", "TrainingConfig", "TrainedHeads", "expand_parameters", "get_engine",
    "layer_flops", "normalised_weights", "penalised_loss", "refit_members",
    "DeferredRefit",
    "register_engine", "train_heads",
]


def penalised_loss(logits, y, weights, *, sample_weight=None, alpha=0.0, n_samples=1):
    """The training objective of every head, per candidate.

    ``mean_i(w_i * CE_i) + alpha / (2 * n_samples) * sum ||W||^2``: the
    (sample-weighted) mean cross-entropy plus an L2 penalty on the weight
    matrices (not the biases), in the units of scikit-learn's
    ``MLPClassifier(alpha=...)``; ``alpha=1`` with a linear head is the
    objective of ``LogisticRegression(C=1)`` divided by ``n_samples``.

    Parameters
    ----------
    logits : Tensor of shape (..., n_batch, n_classes)
        Leading dimensions index candidates.
    y : Tensor of shape (n_batch,)
    weights : list of Tensor
        Weight matrices, candidates along the same leading dimensions.
    sample_weight : Tensor of shape (n_batch,), default=None
        Normalised to mean 1 over the training fold.
    alpha : float, default=0.0
    n_samples : float, default=1
        Samples in the training fold (sum of sample weights).

    Returns
    -------
    loss : Tensor of shape logits.shape[:-2]
    """
    lead = logits.shape[:-2]
    n_batch, n_classes = logits.shape[-2:]
    ce = F.cross_entropy(
        logits.reshape(-1, n_classes), y.repeat(int(np.prod(lead, dtype=int))),
        reduction="none",
    ).reshape(*lead, n_batch)
    if sample_weight is not None:
        ce = ce * sample_weight
    loss = ce.mean(dim=-1)
    if alpha:
        dims = (-2, -1)
        penalty = sum((w * w).sum(dim=dims) for w in weights)
        loss = loss + (alpha / (2.0 * n_samples)) * penalty
    return loss


@dataclass(frozen=True)
class TrainingConfig:
    """How each candidate head is trained (see :class:`EvoPruneClassifier`).

    The first four fields are the head's architecture (:attr:`head`), the
    others the training recipe; ``engine`` is the estimator's option of
    that name (:func:`train_heads` picks the engine module from it and
    ``solver``), ``precision`` its ``head_precision`` (the per-head L-BFGS
    engine's matrix products).
    """

    encoding: str
    n_features: int
    hidden_layer_sizes: tuple
    n_classes: int
    lr: float = 1e-3
    max_epochs: int = 20
    batch_size: int = 128
    patience: int = 5
    tol: float = 1e-4
    alpha: float = 0.0
    solver: str = "adam"
    max_iter: int = 200
    init_seed: int = 0
    shuffle_seed: int = 0
    device: str = "cpu"
    engine: str = "batched"
    precision: str = "fp32"

    @property
    def head(self):
        """The head's architecture, :class:`~evoprune_sklearn._head.HeadSpec`."""
        return HeadSpec(self.encoding, self.n_features, self.hidden_layer_sizes,
                        self.n_classes)

    def initial_parameters(self):
        """The dense head's initial weights, drawn from ``init_seed``."""
        return self.head.initial_parameters(self.init_seed)


def normalised_weights(sample_weight, n, device):
    """Sample weights scaled to mean 1 (None stays None), and their sum."""
    if sample_weight is None:
        return None, float(n)
    w = np.asarray(sample_weight, dtype=np.float64)
    return torch.as_tensor(w / w.mean(), dtype=torch.float32, device=device), float(w.sum())


def layer_flops(sizes, n_candidates=1):
    """FLOPs of one training step per sample: forward and backward products.

    ``sizes`` are the widths ``[in, hidden..., out]``. Layer 0 needs no
    input gradient (features are constants), so it costs two products, the
    others three.
    """
    total = 0
    for layer in range(len(sizes) - 1):
        total += 2 * sizes[layer] * sizes[layer + 1] * (3 if layer > 0 else 2)
    return total * n_candidates


def expand_parameters(sets, params, config):
    """Full-size head parameters from :meth:`TrainedHeads.compact_parameters`."""
    return config.head.expand(sets, params)


class TrainedHeads:
    """The trained heads of one generation, in the order of their genomes.

    Each engine returns a subclass that implements :meth:`logits` and
    :meth:`compact_parameters` on its own storage.

    Attributes
    ----------
    genomes : ndarray of bool, shape (n_candidates, n_genes)
    epochs : ndarray of int
        Epochs (L-BFGS: iterations) each candidate trained.
    train_loss : list of list of float
        Per-candidate training loss curve.
    flops : float
        Floating-point operations of the matrix products that training
        needed (compact sizes, no padding): the work a dense implementation
        of each pruned head would do.
    executed_flops : float
        Products actually executed, padding included.
    """

    def __init__(self, genomes, config, epochs, train_loss, flops, executed_flops=None):
        self.genomes = genomes
        self.config = config
        self.epochs = epochs
        self.train_loss = train_loss
        self.flops = flops
        self.executed_flops = flops if executed_flops is None else executed_flops

    def __len__(self):
        return len(self.genomes)

    def logits(self, X):
        """Logits of every candidate, shape ``(n_candidates, n_samples, n_classes)``.

        Parameters
        ----------
        X : ndarray or torch.Tensor of shape (n_samples, n_features)
        """
        raise NotImplementedError

    def compact_parameters(self, i):
        """Candidate ``i`` as ``(unit_sets, [(weight, bias), ...])``, kept units only.

        Much smaller than :meth:`head_parameters` for sparse genomes: this is
        what travels back from parallel workers.
        """
        raise NotImplementedError

    def head_parameters(self, i):
        """Full-size ``[(weight (in, out), bias), ...]`` of candidate ``i``.

        Pruned rows/columns are zero; with :class:`MaskedHead` they are also
        masked, so the masked head computes exactly what the compact one did.
        """
        return self.config.head.expand(*self.compact_parameters(i))


class Engine:
    """The interface of an engine: one module, one subclass, one registration.

    Attributes
    ----------
    name : str
        Key of the engine in the table.
    option : str
        The value of the estimator's ``engine`` parameter this engine
        belongs to (several engines may share one, see :meth:`serves`).
    """

    name = None
    option = "batched"

    def serves(self, config):
        """Whether this engine trains heads with ``config``.

        The engines of one ``option`` serve disjoint configurations, so
        exactly one of them is chosen, whatever the order of registration.

        Parameters
        ----------
        config : TrainingConfig

        Returns
        -------
        bool
        """
        return True

    def train(self, genomes, X, y, config, sample_weight=None):
        """Train one head per genome on ``(X, y)``.

        Parameters
        ----------
        genomes : ndarray of bool, shape (n_candidates, n_genes)
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of int, shape (n_samples,)
        config : TrainingConfig
        sample_weight : ndarray of shape (n_samples,), default=None

        Returns
        -------
        TrainedHeads
        """
        raise NotImplementedError


_ENGINES = {}


def register_engine(engine):
    """Add ``engine`` (an :class:`Engine` instance) to the table; returns it."""
    _ENGINES[engine.name] = engine
    return engine


def get_engine(name):
    """The registered engine called ``name``."""
    try:
        return _ENGINES[name]
    except KeyError:
        raise ValueError(f"no engine {name!r}; registered: {sorted(_ENGINES)}") from None


def _select(option, config):
    found = [e for e in _ENGINES.values() if e.option == option and e.serves(config)]
    if len(found) != 1:
        raise ValueError(
            f"engine={option!r} with solver={config.solver!r} and hidden_layer_sizes="
            f"{config.hidden_layer_sizes!r} matches {len(found)} registered engines "
            f"({[e.name for e in found]}), not one."
        )
    return found[0]


def train_heads(genomes, X, y, config, engine=None, sample_weight=None):
    """Train one head per genome on ``(X, y)``.

    Parameters
    ----------
    genomes : ndarray of bool, shape (n_candidates, n_genes)
    X : ndarray of shape (n_samples, n_features)
        Backbone features of the training fold.
    y : ndarray of int, shape (n_samples,)
        Encoded labels ``0 .. n_classes - 1``.
    config : TrainingConfig
    engine : {"batched", "skorch"}, default=None
        Another engine option than the one of ``config`` (to compare two
        engines on the same settings); None reads ``config.engine``.
    sample_weight : ndarray of shape (n_samples,), default=None
        Weights of the training loss (see :func:`penalised_loss`).

    Returns
    -------
    TrainedHeads
    """
    chosen = _select(config.engine if engine is None else engine, config)
    with deterministic_arithmetic():
        return chosen.train(np.asarray(genomes, dtype=bool), X, y, config, sample_weight)


def refit_members(members, X, y, config, sample_weight=None):
    """Members retrained on ``(X, y)`` (``refit=True``), as new records.

    Each new member keeps its genome and objective values; its ``params`` and
    ``train_loss`` are those of a head trained, with the same recipe and
    initial weights (``config``: its solver, engine and settings), on the
    whole training data.

    Returns
    -------
    members : list of Member
    """
    if not members:
        return []
    heads = train_heads(np.array([m.genome for m in members]), X, y, config,
                        sample_weight=sample_weight)
    return [
        replace(member, params=heads.head_parameters(i), train_loss=heads.train_loss[i])
        for i, member in enumerate(members)
    ]


class DeferredRefit:
    """Members retrained on the whole training data when first needed.

    ``refit=True`` retrains every front member, but a fit's ``predict``
    uses one of them (or its ensemble). This object keeps the training rows
    and retrains a member the first time it is asked for it, once. A
    genome's trained head is a pure function of the genome and the data
    (see the module docstring), so a member retrained here alone, with
    others, or all at once gets the weights, bit for bit, that
    :func:`refit_members` gives it at fit time. The training rows are
    released when the last member is retrained. Thread-safe.

    Parameters
    ----------
    members : sequence of Member
        The members to retrain (their search-trained ``params`` are replaced).
    X : ndarray of shape (n_samples, n_features)
        Backbone features of all the training rows.
    y : ndarray of int, shape (n_samples,)
        Encoded labels.
    config : TrainingConfig
    sample_weight : ndarray of shape (n_samples,), default=None
    """

    def __init__(self, members, X, y, config, sample_weight=None):
        self._members = tuple(members)
        self._data = (X, y, sample_weight)
        self._config = config
        self._done = {}
        self._lock = threading.Lock()

    @property
    def n_pending(self):
        """Members not retrained yet."""
        return len(self._members) - len(self._done)

    def members(self, indices):
        """The retrained members at ``indices``, retraining those not done yet
        (together, in one call of :func:`refit_members`).

        Returns
        -------
        members : list of Member
        """
        indices = [int(i) for i in indices]
        with self._lock:
            todo = sorted(set(indices) - self._done.keys())
            if todo:
                X, y, w = self._data
                new = refit_members([self._members[i] for i in todo], X, y, self._config,
                                    sample_weight=w)
                self._done.update(zip(todo, new))
                if not self.n_pending:
                    self._data = None  # nothing left to train: free the rows
            return [self._done[i] for i in indices]

    def all_members(self):
        """Every member, retrained (see :meth:`members`)."""
        return self.members(range(len(self._members)))
