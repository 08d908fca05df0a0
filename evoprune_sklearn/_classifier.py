"""The estimator: validation and orchestration only.

images -> backbone (once) -> features -> NSGA-II search -> Pareto front -> predict
"""

import numbers
import os
import time
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._backbones import load_backbone, validate_backbone_args
from ._checkpoint import check_checkpoint_path, open_search_state, transactional_fit
from .datasets import ImageFolderArray
from ._engine import TrainingConfig, wrap_in_skorch
from ._explain import sample_background
from ._front import knee_index
from ._images import image_spec
from ._objectives import OBJECTIVES, SearchData, make_objectives
from ._ood import check_robustness_args, validate_ood
from ._search import run_search
from ._ensemble import (
    DEFAULT_MEMBERS,
    DEFAULT_VOTING,
    ensemble_ood_score as mean_odin_score,
    fitted_member_logits,
    vote,
)

__all__ = ["EvoPruneClassifier"]


def _resolve_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this "
            "machine; use device='cpu' or device='auto'."
        )
    return device


class EvoPruneClassifier(ClassifierMixin, BaseEstimator):
    """Image classifier whose pruned head is evolved by multi-objective NSGA-II.

    A frozen pretrained backbone turns images into features (once per fit);
    NSGA-II evolves which genes of a sparse head are kept, optimising
    validation accuracy against complexity (and robustness, when requested)
    together. The result is a Pareto front of differently pruned heads;
    :meth:`predict` uses the member chosen by ``selection``.

    Parameters
    ----------
    backbone : str or None, default="efficientnet_lite0"
        ``"efficientnet_lite0"`` (ImageNet weights bundled, works offline), any
        torchvision classification model name (``"resnet50"``, ``"vgg19"``,
        ...), or None when ``X`` is already a 2-D feature matrix.
    weights : {"DEFAULT"}, path or None, default="DEFAULT"
        Pretrained weights of the backbone: ``"DEFAULT"`` (bundled for
        ``efficientnet_lite0``; torchvision's download/cache otherwise), None
        for random initialisation, or a path to a state_dict file (read with
        ``torch.load(weights_only=True)``, never executing code).
    image_size : int, default=None
        Side length images are resized to before the backbone; the
        backbone's own input size (224 for ImageNet models) when None.
    encoding : {"features", "neurons"}, default="features"
        ``"features"``: one gene per backbone feature, removing all its
        connections into the first sparse layer (MO-EvoPruneDeepTL).
        ``"neurons"``: one gene per neuron of each sparse hidden layer
        (EvoPruneDeepTL).
    hidden_layer_sizes : tuple of int, default=(512,)
        Sizes of the one or two sparse hidden layers of the head.
    objectives : tuple of str, default=("accuracy", "complexity", "robustness")
        Objectives optimised together. ``"accuracy"`` (validation accuracy,
        higher is better) is required; ``"complexity"`` is the fraction of
        genes kept (lower is better); ``"robustness"`` (higher is better) is
        measured as chosen by ``robustness``.
    robustness : {"odin", "fgsm", "pgd"}, default="odin"
        What the ``"robustness"`` objective measures on the validation fold.

        - ``"odin"``: out-of-distribution detection, the AUROC of the ODIN
          score ``max softmax(logits / odin_temperature)`` separating
          validation samples from OoD samples (``X_ood`` in :meth:`fit`, or
          the default synthetic set described there). With
          ``odin_epsilon=0`` it costs two head forward passes per candidate
          on cached features.
        - ``"fgsm"`` / ``"pgd"``: accuracy on validation images attacked
          (torchattacks) through the whole network, frozen backbone included,
          within an L-infinity ball of ``attack_eps`` in ``[0, 1]`` pixel
          space. Costs 2 (FGSM) or ``attack_steps + 1`` (PGD) backbone passes
          per image of ``robustness_subset`` and per candidate. Image input
          only: with ``backbone=None`` there are no pixels, so a pixel budget
          has no meaning and fit raises a ValueError.

        The MO-EvoPruneDeepTL research code used temperature scaling only,
        measured it on the test split and reused stale values for duplicate
        genomes; here every objective is measured on the validation fold and
        cached together per genome.
    odin_temperature : float, default=1000.0
        ODIN temperature ``T``; 1 gives the plain maximum-softmax baseline.
    odin_epsilon : float, default=0.0
        ODIN input perturbation ``x' = x - eps * sign(-grad log S_yhat(x; T))``
        in ``[0, 1]`` pixel units (feature units with ``backbone=None``).
        0 scores the cached features (temperature scaling only); a positive
        value costs one backward and one extra forward pass of the backbone
        per candidate for up to ``robustness_subset`` validation and as many
        OoD images.
    robustness_subset : int or None, default=256
        At most this many validation images (and OoD images) are pushed
        through the backbone per candidate by the modes that need pixels
        (``"fgsm"``, ``"pgd"``, ``"odin"`` with ``odin_epsilon > 0``); a
        fixed random subset drawn from ``random_state``. None uses them all.
        ``"odin"`` with ``odin_epsilon=0`` always uses every sample.
    attack_eps : float, default=8/255
        L-infinity radius of the FGSM/PGD attack in ``[0, 1]`` pixel units.
    attack_steps : int, default=10
        PGD iterations.
    attack_alpha : float, default=None
        PGD step size; ``2.5 * attack_eps / attack_steps`` when None.
    pop_size : int, default=30
        NSGA-II population size.
    n_evaluations : int, default=200
        Genomes evaluated in total, the first population included.
    crossover_rate : float, default=1.0
        Probability that two parents are recombined by uniform crossover.
    mutation_rate : float, default=None
        Per-gene bit-flip probability; ``1 / n_genes`` when None.
    validation_fraction : float, default=0.2
        Stratified fraction of the training data held out to measure fitness.
        Data you keep for testing is never seen by the search.
    selection : {"knee", "tradeoff", "accuracy", "complexity"} or int, \
            default="knee"
        Which front member :meth:`predict` uses.

        - ``"knee"``: the accuracy-preserving knee. Only members whose
          validation accuracy is within one standard error
          (``sqrt(a (1 - a) / n_validation)``) of the best are eligible (the
          one-standard-error rule); among them, the member closest to the
          ideal point after rescaling each objective to [0, 1] over them.
          It prunes as much as it can without a measurable loss of accuracy.
        - ``"tradeoff"``: the same closest-to-ideal rule over the whole front;
          often much smaller and less accurate.
        - ``"accuracy"``: the most accurate member (ties: fewest genes).
        - ``"complexity"``: the member with fewest genes (ties: most accurate).
        - an int: an index into :attr:`pareto_front_`.
    lr : float, default=1e-3
        Adam learning rate of each head.
    max_epochs : int, default=20
        Maximum training epochs of each head.
    batch_size : int, default=128
        Mini-batch size of head training.
    patience : int, default=5
        Early stopping on the training loss: stop after this many epochs
        without a relative improvement of 1e-4.
    engine : {"batched", "skorch"}, default="batched"
        ``"batched"`` trains a generation's heads together as stacked compact
        matrices; ``"skorch"`` trains one skorch net per candidate (the
        reference path; slower, same result up to training noise).
    n_jobs : int, default=None
        Joblib workers evaluating a generation (None: 1).
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available).
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the search and head training; the same
        value gives the same front on the CPU.
    verbose : int, default=0
        Progress bars and messages when positive.
    checkpoint : str, path-like or None, default=None
        File where the whole search state is saved after every generation
        (atomically: a crash mid-write keeps the previous one). When the file
        exists, :meth:`fit` resumes that search and ends with the same front
        as an uninterrupted run; a checkpoint written for other data, other
        parameters (``n_jobs``, ``verbose`` and ``selection`` may differ) or
        another package version is refused with a ValueError. The file is
        kept after the fit, so fitting again returns at once. It is read with
        ``torch.load(weights_only=True)`` and never runs code. A Ctrl-C
        during :meth:`fit` leaves the estimator fitted with the front of the
        last completed generation, with a warning.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Features of ``X`` seen in fit (pixels ``H*W*C`` for images).
    image_shape_ : tuple of int or None
        ``(H, W, C)`` of the training images; None for feature input.
    backbone_ : Backbone or None
        The frozen feature extractor.
    n_genes_ : int
        Genome length.
    pareto_front_ : ParetoFront
        Every non-dominated member found; each has ``genome``,
        ``objectives`` and ``net`` (a fitted skorch ``NeuralNetClassifier``
        over backbone features). ``to_frame()`` gives a DataFrame.
    best_index_ : int
        Index of the member :meth:`predict` uses.
    history_ : list of dict
        One record per generation: evaluations so far, heads trained, front
        size, best value of each objective, seconds elapsed, and the front's
        ``hypervolume`` (pymoo's exact indicator; the fixed reference point is
        each objective's worst value: accuracy and robustness 0, complexity
        1, so it is the fraction of the unit objective box the front
        dominates and fits can be compared).
    n_evaluations_ : int
        Genomes evaluated (cache hits included).
    n_trained_ : int
        Heads actually trained (distinct genomes).
    baseline_ : Member
        The dense (unpruned) head, trained on the same fold with the same
        initial weights, optimiser and early stopping as every candidate, and
        scored on the same objectives: the reference pruning is judged against.
    fit_time_ : dict
        Seconds spent on ``features``, ``search`` and ``total``.
    n_ood_samples_ : int or None
        OoD samples the ODIN robustness objective scored against (given or
        synthetic); None when it is not used.
    background_ : Background
        A stratified sample of at most 64 training samples (features, and
        RGB uint8 images for image input: at most ``64 * H * W * 3`` bytes)
        that :meth:`explain` compares against.

    See Also
    --------
    evoprune_sklearn.datasets.load_digits_images : The bundled demo images.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from evoprune_sklearn import EvoPruneClassifier
    >>> X, y = make_classification(n_samples=120, n_features=20, random_state=0)
    >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(16,),
    ...                          pop_size=6, n_evaluations=12, random_state=0)
    >>> clf.fit(X, y).predict(X[:3]).shape
    (3,)
    >>> sorted(clf.pareto_front_.to_frame().columns)
    ['accuracy', 'complexity', 'n_genes_on', 'robustness']
    """

    _parameter_constraints = {
        "backbone": [str, None],
        "weights": [str, os.PathLike, None],
        "image_size": [Interval(numbers.Integral, 8, None, closed="left"), None],
        "encoding": [StrOptions({"features", "neurons"})],
        "hidden_layer_sizes": [tuple, list],
        "objectives": [tuple, list],
        "robustness": [StrOptions({"odin", "fgsm", "pgd"})],
        "odin_temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "odin_epsilon": [Interval(numbers.Real, 0, None, closed="left")],
        "robustness_subset": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "attack_eps": [Interval(numbers.Real, 0, 1, closed="both")],
        "attack_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "attack_alpha": [Interval(numbers.Real, 0, 1, closed="right"), None],
        "pop_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_evaluations": [Interval(numbers.Integral, 1, None, closed="left")],
        "crossover_rate": [Interval(numbers.Real, 0, 1, closed="both")],
        "mutation_rate": [Interval(numbers.Real, 0, 1, closed="right"), None],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "selection": [
            StrOptions({"knee", "tradeoff", "accuracy", "complexity"}),
            Interval(numbers.Integral, 0, None, closed="left"),
        ],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "patience": [Interval(numbers.Integral, 1, None, closed="left")],
        "engine": [StrOptions({"batched", "skorch"})],
        "n_jobs": [numbers.Integral, None],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "checkpoint": [str, os.PathLike, None],
    }

    def __init__(
        self,
        backbone="efficientnet_lite0",
        weights="DEFAULT",
        image_size=None,
        encoding="features",
        hidden_layer_sizes=(512,),
        objectives=("accuracy", "complexity", "robustness"),
        robustness="odin",
        odin_temperature=1000.0,
        odin_epsilon=0.0,
        robustness_subset=256,
        attack_eps=8 / 255,
        attack_steps=10,
        attack_alpha=None,
        pop_size=30,
        n_evaluations=200,
        crossover_rate=1.0,
        mutation_rate=None,
        validation_fraction=0.2,
        selection="knee",
        lr=1e-3,
        max_epochs=20,
        batch_size=128,
        patience=5,
        engine="batched",
        n_jobs=None,
        device="cpu",
        random_state=None,
        verbose=0,
        checkpoint=None,
    ):
        self.backbone = backbone
        self.weights = weights
        self.image_size = image_size
        self.encoding = encoding
        self.hidden_layer_sizes = hidden_layer_sizes
        self.objectives = objectives
        self.robustness = robustness
        self.odin_temperature = odin_temperature
        self.odin_epsilon = odin_epsilon
        self.robustness_subset = robustness_subset
        self.attack_eps = attack_eps
        self.attack_steps = attack_steps
        self.attack_alpha = attack_alpha
        self.pop_size = pop_size
        self.n_evaluations = n_evaluations
        self.crossover_rate = crossover_rate
        self.mutation_rate = mutation_rate
        self.validation_fraction = validation_fraction
        self.selection = selection
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.engine = engine
        self.n_jobs = n_jobs
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint = checkpoint

    # ------------------------------------------------------------------ checks
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = self.backbone is None
        tags.input_tags.three_d_array = self.backbone is not None
        return tags

    def _check_params(self):
        """Checks the declarative constraints cannot express."""
        self._validate_params()
        hidden = self.hidden_layer_sizes
        if not (1 <= len(hidden) <= 2) or not all(
            isinstance(h, numbers.Integral) and not isinstance(h, bool) and h > 0
            for h in hidden
        ):
            raise ValueError(
                "hidden_layer_sizes must hold one or two positive integers, got "
                f"{hidden!r}."
            )
        objectives = tuple(self.objectives)
        unknown = [o for o in objectives if o not in OBJECTIVES]
        if unknown:
            raise ValueError(
                f"Unknown objective(s) {unknown}; valid objectives are "
                f"{sorted(OBJECTIVES)}."
            )
        if len(set(objectives)) != len(objectives):
            raise ValueError(f"objectives contains duplicates: {objectives!r}.")
        if "accuracy" not in objectives:
            raise ValueError(
                f"objectives must include 'accuracy', got {objectives!r}."
            )
        if "robustness" in objectives:
            check_robustness_args(self)
        if self.n_evaluations < self.pop_size:
            raise ValueError(
                f"n_evaluations={self.n_evaluations} is smaller than pop_size="
                f"{self.pop_size}; the first population alone needs pop_size "
                "evaluations."
            )
        if self.device not in ("cpu", "auto", "cuda", "mps") and not (
            self.device.startswith("cuda:") and self.device[5:].isdigit()
        ):
            raise ValueError(
                f"device must be 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto', got "
                f"{self.device!r}."
            )
        validate_backbone_args(self.backbone, self.weights)
        check_checkpoint_path(self.checkpoint)

    def _validate_input(self, X, y=None, *, reset):
        """Validate X (images or features) and y; return (X, y)."""
        if self.backbone is None:
            if reset:
                X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
            else:
                X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
            return X, y
        if isinstance(X, ImageFolderArray):  # decoded batch by batch later
            spec = X.image_spec()
        else:
            if hasattr(X, "__array__") and not isinstance(X, np.ndarray):
                X = np.asarray(X)
            spec = image_spec(X)
        if reset:
            if y is None:
                raise ValueError(
                    f"{type(self).__name__} requires y to be passed, but the "
                    "target y is None."
                )
            y = column_or_1d(y, warn=True)
            check_consistent_length(X, y)
            self.image_spec_ = spec
            self.image_shape_ = spec.shape
            self.n_features_in_ = int(np.prod(spec.shape))
        else:
            if spec.shape != self.image_shape_:
                raise ValueError(
                    f"X has images of shape (H, W, C)={spec.shape}, but "
                    f"{type(self).__name__} was fitted on images of shape "
                    f"{self.image_shape_}."
                )
        return (X, spec), y

    def _split(self, y_enc, seed):
        n = len(y_enc)
        counts = np.bincount(y_enc)
        n_classes = len(counts)
        if counts.min() < 2:
            cls = self.classes_[int(np.argmin(counts))]
            cls = cls.item() if isinstance(cls, np.generic) else cls
            raise ValueError(
                f"Class {cls!r} has {counts.min()} sample(s); every class needs at "
                "least 2 so that one can be held out in the validation split "
                f"(validation_fraction={self.validation_fraction})."
            )
        n_val = int(np.ceil(self.validation_fraction * n))
        if n_val < n_classes or n - n_val < n_classes:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} of {n} samples "
                f"leaves {n_val} validation and {n - n_val} training samples; each "
                f"must hold at least one sample of each of the {n_classes} classes. "
                "Use more samples or change validation_fraction."
            )
        from sklearn.model_selection import train_test_split

        idx = np.arange(n)
        train, val = train_test_split(
            idx, test_size=n_val, stratify=y_enc, random_state=seed
        )
        return np.sort(train), np.sort(val)

    # ---------------------------------------------------------------- features
    def _features(self, Xv, *, verbose=0, desc="features"):
        if self.backbone is None:
            return np.asarray(Xv, dtype=np.float32)
        X, spec = Xv
        return self.backbone_.extract(
            X, spec, device=self._device, verbose=verbose, desc=desc
        )

    # --------------------------------------------------------------------- fit
    @transactional_fit
    def fit(self, X, y, X_ood=None):
        """Extract features once, then evolve the Pareto front of pruned heads.

        Parameters
        ----------
        X : array-like
            Images ``(n, H, W)``, ``(n, H, W, C)`` or ``(n, C, H, W)`` (uint8
            in [0, 255] or float in [0, 1]); or ``(n, n_features)`` features
            when ``backbone=None``.
        y : array-like of shape (n_samples,)
            Class labels of any type.
        X_ood : array-like or OODSet, default=None
            Out-of-distribution samples for ``robustness="odin"``: images in
            any of the formats of ``X``, any size (resized like ``X``), or a
            2-D feature matrix with the columns of ``X`` when
            ``backbone=None``. When None, a synthetic OoD set as large as the
            validation fold is built from the training fold: noise images
            matched to the training images' per-channel statistics (Gaussian
            and uniform) and training images with shuffled patches; with
            ``backbone=None``, the feature-space analogues (see
            ``evoprune_sklearn._ood.synthetic_ood_features``). Inside
            ``GridSearchCV`` or ``cross_val_score`` wrap it as
            ``OODSet(X_ood)``: scikit-learn slices fit parameters as long as
            ``X`` per fold, and a plain array of that length would be cut
            down (a warning says so when the lengths match).

        Returns
        -------
        self : EvoPruneClassifier
            The fitted estimator.
        """
        t0 = time.perf_counter()
        self._check_params()
        Xv, y = self._validate_input(X, y, reset=True)
        ood = validate_ood(
            X_ood,
            image_input=self.backbone is not None,
            n_features=self.n_features_in_,
            n_samples=len(y),
            used="robustness" in self.objectives and self.robustness == "odin",
        )
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes; the "
                "data holds 1 class only."
            )
        y_enc = encoder.transform(y).astype(np.int64)
        rng = check_random_state(self.random_state)
        split_seed, search_seed, init_seed, shuffle_seed = rng.randint(
            0, 2**31 - 1, size=4
        )
        robustness_seed = int(rng.randint(0, 2**31 - 1))
        seed_names = ("split", "search", "init", "shuffle", "robustness")
        state = open_search_state(self, (Xv, y, ood), dict(zip(seed_names, map(int, (
            split_seed, search_seed, init_seed, shuffle_seed, robustness_seed)))))
        split_seed, search_seed, init_seed, shuffle_seed, robustness_seed = (
            state.seeds[k] for k in seed_names
        )
        train, val = self._split(y_enc, int(split_seed))
        if state.split is not None:  # resuming: the split the search used
            train, val = state.split
        state.split = (train, val)
        self._n_val = len(val)
        self._train_index, self._val_index = train, val
        self._device = _resolve_device(self.device)

        if self.backbone is None:
            self.backbone_ = None
        else:
            self.backbone_ = load_backbone(self.backbone, self.weights, self.image_size)
        features = self._features(Xv, verbose=self.verbose, desc="training images")
        t_features = time.perf_counter() - t0
        self.background_ = sample_background(
            features, y_enc, train, int(split_seed),
            images=None if self.backbone is None else Xv[0],
            spec=None if self.backbone is None else Xv[1],
        )

        n_features = features.shape[1]
        self._config = TrainingConfig(
            encoding=self.encoding,
            n_features=n_features,
            hidden_layer_sizes=tuple(int(h) for h in self.hidden_layer_sizes),
            n_classes=len(self.classes_),
            lr=float(self.lr),
            max_epochs=int(self.max_epochs),
            batch_size=int(self.batch_size),
            patience=int(self.patience),
            init_seed=int(init_seed),
            shuffle_seed=int(shuffle_seed),
            device=self._device,
        )
        data = SearchData(
            features[train], y_enc[train], features[val], y_enc[val], len(self.classes_)
        )
        data.train_index, data.val_index = train, val
        # Raw inputs for objectives that need pixels or OoD data; dropped after
        # prepare so that parallel workers are not sent them every generation.
        data.images = None if self.backbone is None else Xv
        data.X_ood, data.seed = ood, robustness_seed
        objectives = make_objectives(tuple(self.objectives), self)
        for obj in objectives:
            obj.prepare(data, self)
        data.images = data.X_ood = None
        self.n_ood_samples_ = data.extras.get("n_ood_samples")
        try:
            front, history, evaluator = run_search(
                data,
                self._config,
                objectives,
                pop_size=self.pop_size,
                n_evaluations=self.n_evaluations,
                crossover_rate=self.crossover_rate,
                mutation_rate=self.mutation_rate,
                seed=int(search_seed),
                engine=self.engine,
                n_jobs=self.n_jobs,
                verbose=self.verbose,
                state=state,
            )
        except KeyboardInterrupt:
            # Keep what the completed generations found (the checkpoint
            # holds the same); re-raised when no generation completed.
            front, history, evaluator = state.interrupted_result()
            warnings.warn(
                f"fit was interrupted after generation {state.generation} "
                f"({state.done} of {self.n_evaluations} evaluations); the "
                "estimator holds the Pareto front found so far."
                + (" Fit again with the same checkpoint to resume the search."
                   if state.path else ""),
                UserWarning,
                stacklevel=3,
            )
        self.n_genes_ = int(front[0].genome.size)
        self.n_evaluations_ = int(history[-1]["n_evaluations"]) if history else 0
        self.n_trained_ = int(evaluator.n_trained)
        evaluator.close()
        self.baseline_ = self._dense_baseline(data, objectives)
        for member in [*front, self.baseline_]:
            member.net = wrap_in_skorch(
                member.genome, member.params, self._config, member.train_loss
            )
        self.pareto_front_ = front
        self.history_ = history
        self.best_index_ = self._select(self.selection)
        self.fit_time_ = {
            "features": t_features,
            "search": time.perf_counter() - t0 - t_features,
            "total": time.perf_counter() - t0,
        }
        return self

    def _select(self, selection):
        front = self.pareto_front_
        if isinstance(selection, numbers.Integral):
            if selection >= len(front):
                raise ValueError(
                    f"selection={selection} but the Pareto front has only "
                    f"{len(front)} member(s)."
                )
            return int(selection)
        F = front.minimization_matrix()
        names = front.objective_names
        if selection == "accuracy":
            acc = F[:, names.index("accuracy")]
            tie = F[:, names.index("complexity")] if "complexity" in names else np.zeros(len(F))
            return int(np.lexsort((tie, acc))[0])
        if selection == "complexity":
            if "complexity" not in names:
                raise ValueError(
                    "selection='complexity' needs 'complexity' among the objectives."
                )
            comp = F[:, names.index("complexity")]
            return int(np.lexsort((F[:, names.index("accuracy")], comp))[0])
        if selection == "tradeoff":
            return knee_index(F)
        return knee_index(F, accuracy_column=names.index("accuracy"), n_validation=self._n_val)

    # ----------------------------------------------------------------- predict
    def extract_features(self, X):
        """Backbone features of ``X`` (what every head sees).

        Parameters
        ----------
        X : array-like
            Images or features, as in :meth:`fit`.

        Returns
        -------
        features : ndarray of shape (n_samples, n_backbone_features), float32
        """
        check_is_fitted(self)
        Xv, _ = self._validate_input(X, reset=False)
        return self._features(Xv)

    def _dense_baseline(self, data, objectives):
        """The unpruned head, trained and scored exactly like every candidate.

        Trained outside the search's evaluator so that it never counts as a
        search evaluation (a finished checkpoint still trains no genome).
        """
        from ._engine import train_heads
        from ._front import Member

        genome = np.ones((1, self.n_genes_), dtype=bool)
        heads = train_heads(genome, data.X_train, data.y_train, self._config,
                            engine=self.engine)
        values = {o.name: float(o.evaluate(heads, data)[0]) for o in objectives}
        return Member(genome[0], values, params=heads.head_parameters(0),
                      train_loss=heads.train_loss[0])

    def _member_proba(self, member, features):
        proba = member.net.predict_proba(features.astype(np.float32))
        return np.asarray(proba, dtype=np.float64)

    def predict_proba(self, X):
        """Class probabilities of the selected front member.

        Parameters
        ----------
        X : array-like
            Images or features, as in :meth:`fit`.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        Xv, _ = self._validate_input(X, reset=False)
        features = self._features(Xv)
        return self._member_proba(self.pareto_front_[self.best_index_], features)

    def predict(self, X):
        """Class labels predicted by the selected front member.

        Parameters
        ----------
        X : array-like
            Images or features, as in :meth:`fit`.

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    # ---------------------------------------------------------------- ensemble
    def ensemble_predict_proba(self, X, members=DEFAULT_MEMBERS):
        """Mean class probabilities of several front members (soft vote).

        Backbone features are computed once; each member runs only its head.

        Parameters
        ----------
        X : array-like
            Images or features, as in :meth:`fit`.
        members : "front", int, tuple or list of int, default=3
            Which members vote: ``"front"`` (all), an int ``k`` (the ``k``
            most accurate on the validation fold; all when the front is
            smaller), a percentile window of an objective over the front such
            as ``("accuracy", 50, 60)`` (the paper's windows; an empty window
            raises a ValueError), or explicit indices into
            :attr:`pareto_front_`. The default, the 3 most accurate
            members, had the best validation accuracy in
            ``benchmarks/bench_ensemble.py``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)

        Examples
        --------
        >>> from sklearn.datasets import make_classification
        >>> from evoprune_sklearn import EvoPruneClassifier
        >>> X, y = make_classification(n_samples=120, n_features=20, random_state=0)
        >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(16,),
        ...                          pop_size=6, n_evaluations=12, random_state=0)
        >>> clf.fit(X, y).ensemble_predict_proba(X[:2], members=3).shape
        (2, 2)
        """
        check_is_fitted(self)
        logits = fitted_member_logits(self, X, members)
        return torch.softmax(logits, dim=-1).mean(dim=0).numpy()

    def ensemble_predict(self, X, members=DEFAULT_MEMBERS, voting=DEFAULT_VOTING):
        """Class labels voted by several front members.

        Parameters
        ----------
        X : array-like
            Images or features, as in :meth:`fit`.
        members : "front", int, tuple or list of int, default=3
            Which members vote; see :meth:`ensemble_predict_proba`.
        voting : {"soft", "hard"}, default="soft"
            ``"soft"``: argmax of the mean probability (exact ties: the
            lowest class index). ``"hard"``: majority of the members' own
            predictions (the paper's vote); a tie between classes goes to the
            one with the larger mean probability, then the lowest class index.

        Returns
        -------
        y : ndarray of shape (n_samples,)

        Examples
        --------
        >>> from sklearn.datasets import make_classification
        >>> from evoprune_sklearn import EvoPruneClassifier
        >>> X, y = make_classification(n_samples=120, n_features=20, random_state=0)
        >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(16,),
        ...                          pop_size=6, n_evaluations=12, random_state=0)
        >>> clf.fit(X, y).ensemble_predict(X[:3], members="front", voting="hard").shape
        (3,)
        """
        check_is_fitted(self)
        if voting not in ("soft", "hard"):
            raise ValueError(f"voting must be 'soft' or 'hard', got {voting!r}.")
        logits = fitted_member_logits(self, X, members)
        return self.classes_[vote(torch.softmax(logits, dim=-1).numpy(), voting)]

    def ensemble_ood_score(self, X, members=DEFAULT_MEMBERS, temperature=1000.0):
        """Out-of-distribution score of the ensemble: mean of members' ODIN scores.

        Each member's score is ``max softmax(logits / temperature)`` (ODIN
        without input perturbation); higher means more in-distribution, so
        ``roc_auc_score(is_in_distribution, score)`` measures OoD detection.

        Parameters
        ----------
        X : array-like
            Images or features, as in :meth:`fit`.
        members : "front", int, tuple or list of int, default=3
            Which members score; see :meth:`ensemble_predict_proba`.
        temperature : float, default=1000.0
            ODIN temperature ``T``.

        Returns
        -------
        score : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import make_classification
        >>> from evoprune_sklearn import EvoPruneClassifier
        >>> X, y = make_classification(n_samples=120, n_features=20, random_state=0)
        >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(16,),
        ...                          pop_size=6, n_evaluations=12, random_state=0)
        >>> clf.fit(X, y).ensemble_ood_score(X[:4]).shape
        (4,)
        """
        check_is_fitted(self)
        if not isinstance(temperature, numbers.Real) or not temperature > 0:
            raise ValueError(
                f"temperature must be a positive number, got {temperature!r}."
            )
        logits = fitted_member_logits(self, X, members)
        return mean_odin_score(logits, temperature)

    def export_model(self, member=None, head_only=False):
        """A plain torch module of one member with the pruning made physical.

        Pruned features and neurons are removed (smaller ``Linear`` layers),
        not masked; the logits equal the masked head's. The module is on the
        CPU in eval mode, its ``state_dict`` saves with :func:`torch.save`
        and it compiles with :func:`torch.jit.script`.

        Parameters
        ----------
        member : int, default=None
            Index into :attr:`pareto_front_`; :attr:`best_index_` when None.
        head_only : bool, default=False
            True: a :class:`CompactHead` taking backbone features
            (``extract_features``) to logits. False: a
            :class:`PrunedNetwork`, the frozen backbone (normalisation
            included) plus the compact head, taking float ``(n, 3, H, W)``
            images in ``[0, 1]`` to logits. Feature-input estimators
            (``backbone=None``) need ``head_only=True``.

        Returns
        -------
        model : CompactHead or PrunedNetwork
            ``model.summary()`` reports parameter counts and the saving.

        Examples
        --------
        >>> from sklearn.datasets import make_classification
        >>> from evoprune_sklearn import EvoPruneClassifier
        >>> X, y = make_classification(n_samples=120, n_features=20, random_state=0)
        >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(16,),
        ...                          pop_size=6, n_evaluations=12, random_state=0)
        >>> head = clf.fit(X, y).export_model(head_only=True)
        >>> s = head.summary()
        >>> s["n_parameters"] <= s["n_dense_parameters"]
        True
        """
        from ._export import export_member

        check_is_fitted(self)
        return export_member(self, member, head_only)

    def explain(self, X, member=None, n_top=10, background=None, max_samples=64,
                target=None, pixels=None, pixel_method="gradient", random_state=None):
        """Explain predictions with SHAP: which genes and which pixels matter.

        Explains the log-probability of each sample's target class by
        expected gradients (``shap.GradientExplainer``) against a background
        sample. See :class:`~evoprune_sklearn.Explanation` for what comes back.

        Parameters
        ----------
        X : array-like
            Images or features, as in :meth:`fit`.
        member : int, list of int, "ensemble" or None, default=None
            The front member to explain (None: the selected one,
            :attr:`best_index_`); a list of indices or ``"ensemble"`` (all
            members) explains their soft vote, the log of the mean
            probability.
        n_top : int, default=10
            Length of the ``top_genes`` rankings.
        background : array-like, default=None
            Reference samples, in the layout of ``X``; :attr:`background_`
            (kept at fit time) when None.
        max_samples : int, default=64
            At most this many rows of ``X`` are explained, drawn at random
            (``random_state``) when ``X`` holds more; cost grows linearly.
        target : label, array-like of labels or None, default=None
            Class explained for each sample; the predicted class when None.
        pixels : bool or None, default=None
            Compute pixel attributions (default: for image input). True with
            ``backbone=None`` raises ValueError.
        pixel_method : {"gradient", "feature_map"}, default="gradient"
            ``"gradient"``: expected gradients through resize, backbone and
            head, at the images' own resolution. ``"feature_map"``: feature
            SHAP values spread over the backbone's last convolutional map and
            upsampled (one forward pass, but only ``input_size / 32`` cells
            of resolution).
        random_state : int, RandomState instance or None, default=None
            Seeds the choice of rows and the expected-gradients sampling.

        Returns
        -------
        explanation : Explanation

        Examples
        --------
        >>> from sklearn.datasets import make_classification
        >>> from evoprune_sklearn import EvoPruneClassifier
        >>> X, y = make_classification(n_samples=100, n_features=8, random_state=0)
        >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,), pop_size=4,
        ...                          n_evaluations=8, random_state=0).fit(X, y)
        >>> exp = clf.explain(X[:5], n_top=3, random_state=0)
        >>> exp.shap_values.shape
        (5, 8)
        """
        from ._explain import explain

        check_is_fitted(self)
        return explain(
            self, X, member=member, n_top=n_top, background=background,
            max_samples=max_samples, target=target, pixels=pixels,
            pixel_method=pixel_method, random_state=random_state,
        )

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "_device" in state and state["_device"] != "cpu" and not torch.cuda.is_available():
            # Fitted on a GPU, loaded on a CPU-only machine: skorch maps the
            # heads to the CPU itself; the rest follows them there.
            self._device = "cpu"
            if getattr(self, "_config", None) is not None:
                import dataclasses

                self._config = dataclasses.replace(self._config, device="cpu")
