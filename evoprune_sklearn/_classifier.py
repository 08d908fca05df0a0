"""The estimator: validation and orchestration only.

images -> backbone (once) -> features -> NSGA-II search -> Pareto front -> predict
"""

import contextlib
import dataclasses
import numbers
import os
import time
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._backbones import BackboneSpec, get_backbone, validate_backbone_args
from ._backbones._extractor import check_precision
from ._background import sample_background
from ._checkpoint import check_checkpoint_path, open_search_state, transactional_fit
from ._engines import DeferredRefit, TrainingConfig, train_heads
from ._ensemble import (
    DEFAULT_MEMBERS,
    DEFAULT_OOD_METHOD,
    DEFAULT_VOTING,
    check_members_spec,
    check_ood_method,
    member_logits,
    ood_reference,
    resolve_members,
    score_ood,
    vote,
)
from ._explain import (
    background_from,
    check_explain_options,
    check_target,
    explain,
    resolve_member,
    sample_rows,
)
from ._export import check_member_index, export_member
from ._feature_cache import check_memory_param
from ._folds import ValidationSplitter
from ._front import Member, gene_names, sorted_front
from ._images import Images
from ._ood import validate_ood
from ._operators import informed_operators
from ._persistence import load_estimator, save_estimator
from ._search import NSGA2Search, SearchControl, score_genomes
from ._solver_options import ignored_parameters, init_defaults
from ._weights import fit_weights, merge_samples
from .callbacks import check_callbacks
from .objectives import ObjectiveContext, get_objective
from .objectives._base import fitted_copy
from .selection import RULES, SelectionRule

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
    backbone : str, BackboneSpec or None, default="efficientnet_lite0"
        ``"efficientnet_lite0"`` (ImageNet weights bundled, works offline), any
        torchvision classification model name (``"resnet50"``, ``"vgg19"``,
        ...) or other name from :func:`list_backbones`; a
        :class:`BackboneSpec`, e.g. your own network with its preprocessing,
        ``BackboneSpec(module=net, input_size=64, mean=..., std=...)`` (the
        module is copied at fit time; :meth:`save` refuses such an
        estimator); or None when ``X`` is already a 2-D feature matrix.
    weights : {"DEFAULT"}, path or None, default="DEFAULT"
        Pretrained weights of the backbone: ``"DEFAULT"`` (bundled for
        ``efficientnet_lite0``; torchvision's download/cache otherwise; a
        ``BackboneSpec(module=...)``'s own), None for random initialisation
        (not for a spec holding a module), or a path to a state_dict file
        (read with ``torch.load(weights_only=True)``, never executing code).
    image_size : int, default=None
        Side length images are resized to before the backbone; the
        backbone's own input size (224 for ImageNet models) when None.
    precision : {"fp32", "bf16"}, default="fp32"
        Arithmetic of the backbone's feature extraction. ``"bf16"`` runs it
        under bfloat16 autocast, about twice as fast where the hardware
        computes in bfloat16 natively (CPUs with AVX512-BF16 or AMX, CUDA
        GPUs), and is refused elsewhere; the features differ from float32
        ones by a few percent (the image folders guide gives the accuracy
        measured). Heads are trained in float32 (see ``head_precision``).
        Ignored when ``backbone=None``.
    memory : None, str, path-like or joblib.Memory, default=None
        Where to keep backbone features across fits, as scikit-learn's
        ``Pipeline(memory=...)``: a directory path or a
        :class:`joblib.Memory`. Features are stored per image, keyed by the
        image's content (a lazy folder's file bytes) and the backbone's
        identity (weights, input size, precision, device type), so that
        ``GridSearchCV`` and ``cross_validate`` run the backbone once per
        image over all their folds, candidates and scoring (fit, predict
        and the synthetic OoD images of a fixed ``random_state`` all use
        the store). Entries are checksummed: a corrupt or foreign one is
        removed with a warning and extracted again. None caches nothing.
        Ignored when ``backbone=None``.
    encoding : {"features", "neurons"}, default="features"
        ``"features"``: one gene per backbone feature, removing all its
        connections into the first sparse layer (MO-EvoPruneDeepTL).
        ``"neurons"``: one gene per neuron of each sparse hidden layer
        (EvoPruneDeepTL).
    hidden_layer_sizes : tuple of int, default=()
        Sizes of the zero, one or two sparse hidden layers of the head.
        ``()`` (the default) is a linear head: with the ``"features"``
        encoding each candidate is an L2-penalised logistic regression on
        the backbone features its genome keeps. ``(512,)`` is the papers'
        head (one sparse layer of 512 ReLU units). The default was chosen by
        ``benchmarks/bench_quality.py``: on the benchmark datasets the linear
        head, trained to convergence, was as accurate as the 512-unit head
        and 3 to 10 times cheaper to train (see the methodology page).
        ``encoding="neurons"`` needs at least one hidden layer.
    objectives : tuple of str or Objective, default=("accuracy", "complexity", "robustness")
        Objectives optimised together, each a registered name or an
        :class:`~evoprune_sklearn.objectives.Objective` instance (see
        :mod:`evoprune_sklearn.objectives`). ``"accuracy"`` (validation
        accuracy, higher is better) is required; ``"complexity"`` is the
        fraction of genes kept (lower is better); ``"robustness"`` (higher is
        better) is ``ODIN()``: out-of-distribution detection, the AUROC of
        the ODIN score ``max softmax(logits / T)`` separating validation
        samples from OoD samples (``X_ood`` in :meth:`fit`, or the default
        synthetic set described there), two head forward passes per
        candidate on cached features. ``ODIN(temperature, epsilon, subset)``
        configures it; ``"fgsm"``, ``"pgd"`` and
        ``Adversarial(method, eps, steps, alpha, subset)`` measure accuracy
        on validation images attacked through the whole network instead
        (image input only; needs torchattacks, ``pip install
        'evoprune_sklearn[attacks]'``). Instances are copied at ``fit``
        (never changed); the fitted copies are ``objectives_``. Objective
        names must differ (ODIN and Adversarial are both named
        ``"robustness"``).

        The MO-EvoPruneDeepTL research code used temperature scaling only,
        measured it on the test split and reused stale values for duplicate
        genomes; here every objective is measured on the validation fold and
        cached together per genome.
    pop_size : int, default=30
        NSGA-II population size.
    n_evaluations : int, default=200
        Genomes evaluated in total, the first population included.
    crossover_rate : float, default=1.0
        Probability that two parents are recombined by uniform crossover.
    mutation_rate : float, default=None
        Per-gene flip probability (each child gets on average
        ``mutation_rate * n_genes`` flips); ``1 / n_genes`` when None.
    init : {"informed", "random"}, default="informed"
        The first population of the search.

        - ``"informed"``: genomes that keep the best-ranked genes at gene
          counts spread geometrically from 0.5 % to 100 % (the dense
          genome), ranked by a group-L1 logistic path over the
          standardised training-fold features (``"features"`` encoding:
          the order in which features enter it) and by the gene
          importances of the dense head ``baseline_`` (weight norms per
          feature; per hidden unit, incoming times outgoing weight norm),
          the rankings taking turns; plus a third of random genomes as
          ``"random"`` draws them, for diversity. The dense head is the one
          trained for ``baseline_`` anyway; the path costs a few hundred
          matrix products on the training fold.
        - ``"random"``: the papers' initialisation: each genome keeps
          ``round(p * n_genes)`` random genes, ``p ~ U(0, 1)``.
          With ``mutation="bitflip"`` the search is the papers' and gives
          the front of earlier versions.
    mutation : {"informed", "bitflip"}, default="informed"
        How children are mutated (after uniform crossover).

        - ``"informed"``: each flip, with probability 0.8, switches off an
          active gene or switches on an inactive one (equal chance),
          preferring the active genes that the trained heads found weakest
          and the inactive ones they found strongest (probability
          ``1 / (rank + 1)``); otherwise it is a uniform random flip. A
          gene's strength is its importance (as for ``init``) averaged over
          the dense head and every front member that keeps it, read from
          their trained weights: no extra training.
        - ``"bitflip"``: the papers' uniform bit-flip mutation.
    validation_fraction : float, default=0.2
        Stratified fraction of the training data held out to measure fitness
        (when ``n_folds`` is None). Data you keep for testing is never seen by the
        search.
    n_folds : int or None, default=None
        How the accuracy objective is measured. None: on one stratified
        validation split of ``validation_fraction`` of the training data.
        An int ``k >= 2``: by stratified k-fold cross-validation over the
        training data (folds drawn from ``random_state``; then
        ``validation_fraction`` is unused). Each candidate is trained once
        per fold on the other folds, and its accuracy is that of the
        out-of-fold predictions over every training sample, each predicted
        by a head that never saw it: a less noisy fitness than one 20% fold
        (the knee's standard error counts every training sample), at about
        ``k`` times the training cost of the search. The other objectives
        are measured on the first fold, as with a single split: complexity
        depends on the genome alone, and the robustness objectives score
        the first fold's heads on its held-out part. ``refit=False`` keeps
        the first fold's heads. The default was chosen by
        ``benchmarks/bench_quality.py`` (see the methodology page).
    selection : {"knee", "tradeoff", "accuracy", "complexity"}, int or \
            SelectionRule, default="knee"
        Which front member :meth:`predict` uses. Each string names a rule
        object of :mod:`evoprune_sklearn.selection`, and
        ``pareto_front_.select(selection)`` applies the same rule.

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
        - a :class:`~evoprune_sklearn.selection.SelectionRule` object (e.g.
          ``Knee(one_standard_error=False)``, or your own subclass).
          :class:`~evoprune_sklearn.selection.WithinBudget` takes a size
          budget: ``WithinBudget(0.2)`` chooses among the members keeping at
          most 20 % of the genes, robust to validation noise.

        It is applied when read, not stored at fit time: after
        ``set_params(selection=...)`` on a fitted estimator,
        :attr:`best_index_`, :meth:`predict`, :meth:`export_model` and
        :meth:`explain` use the newly selected member without refitting.
    ensemble : None, "front", int, list of int or tuple, default=None
        What :meth:`predict`, :meth:`predict_proba` and :meth:`score` use.
        None: the single member chosen by ``selection``. Otherwise an
        ensemble of front members, named as the ``members=`` argument of
        :meth:`ensemble_predict`: ``"front"`` (every member), an int (that
        index), a list of indices, ``("top", k)`` (the ``k`` most accurate;
        ``("top", k, objective)`` for another objective) or a percentile
        window such as ``("window", "accuracy", 50, 60)``. Then
        ``predict(X)`` equals ``ensemble_predict(X, members=ensemble,
        voting=ensemble_voting)``. Like ``selection`` it applies after fit
        without refitting, and ``GridSearchCV`` can choose between a single
        member (None) and ensembles.
    ensemble_voting : {"soft", "hard"}, default="soft"
        Vote of the ``ensemble`` (unused when ``ensemble`` is None; see
        :meth:`ensemble_predict`). With ``"hard"`` voting the ensemble has
        no probabilities: ``predict_proba`` is then unavailable, as in
        :class:`sklearn.ensemble.VotingClassifier`.
    solver : {"lbfgs", "adam"}, default="lbfgs"
        How each candidate head is trained; both minimise the
        (sample-weighted) mean cross-entropy plus the ``alpha`` penalty.

        - ``"lbfgs"``: full-batch L-BFGS with a strong-Wolfe line search
          (the rules of :class:`torch.optim.LBFGS`), to convergence
          (gradient below 1e-5) or ``max_iter`` iterations, on each head's
          kept units. Linear heads (the default) of a generation share a
          stacked pool in which each head keeps its own history, step and
          stopping test; heads with hidden layers are trained one at a time.
          Converges in tens of iterations on the small training folds this
          method is for, as scikit-learn's ``MLPClassifier`` does with
          ``solver="lbfgs"``. Reads ``max_iter``; ``lr``, ``max_epochs``,
          ``batch_size`` and ``patience`` are ignored (with a warning when
          set).
        - ``"adam"``: mini-batch Adam (``lr``, ``batch_size``) for up to
          ``max_epochs`` epochs with early stopping on the training loss
          (``patience``); the ``"batched"`` engine stacks a generation's
          heads. For large training sets or wide hidden layers. Reads
          ``lr``, ``batch_size``, ``max_epochs`` and ``patience``;
          ``max_iter`` is ignored (with a warning when set).
    alpha : float, default=1.0
        L2 penalty on the head's weight matrices, in the units of
        scikit-learn's ``MLPClassifier``: the objective is
        ``mean(CE) + alpha / (2 * n_train) * sum ||W||^2``. With a linear
        head, ``alpha=1`` is the penalty of ``LogisticRegression(C=1)``.
        0 disables it.
    max_iter : int, default=50
        Maximum L-BFGS iterations of each head (``solver="lbfgs"``).
    head_precision : {"fp32", "bf16"}, default="fp32"
        Arithmetic of the matrix products when L-BFGS trains heads with
        hidden layers (``solver="lbfgs"``, ``hidden_layer_sizes`` not
        empty, ``engine="batched"``), in the search and the refit.
        ``"bf16"`` runs each head's layers under bfloat16 autocast (the
        loss, the gradients' sums and L-BFGS stay float32): about twice as
        fast for ``hidden_layer_sizes=(512,)``, at training losses within a
        few percent and validation accuracies within a tenth of a point of
        float32 (:doc:`/performance`). Refused where the hardware computes
        in bfloat16 only by emulation, as ``precision`` is; it warns where it
        has no effect (a linear head, ``solver="adam"``,
        ``engine="skorch"``). Predictions and objective values are computed
        in float32 either way. Fronts are reproducible on one machine, but
        differ from float32 ones.
    lr : float, default=1e-3
        Adam learning rate of each head (``solver="adam"``).
    max_epochs : int, default=200
        Maximum training epochs of each head (``solver="adam"``); training
        normally ends earlier, by early stopping.
    batch_size : int, default=128
        Mini-batch size of head training (``solver="adam"``).
    patience : int, default=10
        Early stopping on the training loss (``solver="adam"``): stop after
        this many epochs without a relative improvement of 1e-4.
    refit : bool, default=True
        After the search, retrain every front member (and ``baseline_``) on
        the whole training data, validation fold included, with the same
        recipe, as :class:`~sklearn.model_selection.GridSearchCV` refits its
        best model. The objective values stay those measured on the
        validation fold by the heads trained without it (the only honest
        estimate); the refitted heads are what ``predict`` and the
        ensembles use. False keeps the heads trained on the training fold.

        Members are retrained when first needed: :meth:`fit` retrains
        ``baseline_`` and the member(s) ``predict`` uses (``selection``, or
        the ``ensemble``); any other member is retrained the first time it is
        used (an ensemble method, :meth:`export_model`, :meth:`explain`), and
        all the rest together when the whole front is read
        (``pareto_front_``, pickling, :meth:`save`). The weights are bit for
        bit those of retraining every member during :meth:`fit`; until the
        last one is retrained the estimator keeps the training features
        (``n_samples x n_features`` float32). A fit with hidden layers saves
        most of its refit this way (:doc:`/performance`).
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the training loss and the validation
        accuracy, as in scikit-learn: ``"balanced"`` weights classes
        inversely to their frequency; a dict maps labels to weights.
        Multiplies ``sample_weight`` of :meth:`fit`.
    engine : {"batched", "skorch"}, default="batched"
        ``"batched"`` trains a generation's heads together as stacked compact
        matrices; ``"skorch"`` trains one skorch net per candidate (the
        reference path; slower, same result up to training noise).
    n_jobs : int, default=None
        Joblib workers evaluating a generation (None: 1). Within each,
        ``torch.get_num_threads()`` pieces of the arithmetic run side by
        side; the front depends on neither.
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available).
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the search and head training; the same
        value gives the same front on the CPU, bit for bit, for any
        ``n_jobs``, joblib backend and number of torch threads on one
        machine (see the reliability page of the documentation).
    verbose : int, default=0
        Progress bars and messages when positive.
    checkpoint : str, path-like or None, default=None
        File where the whole search state is saved after every generation
        (atomically: a crash mid-write keeps the previous one). When the file
        exists, :meth:`fit` resumes that search and ends with the same front
        as an uninterrupted run; a checkpoint written for other data, other
        parameters or another package version is refused with a ValueError
        (the budget and stop criteria, ``n_jobs``, ``verbose``,
        ``selection`` and the ``ensemble`` parameters may differ). The file
        is kept after the fit, so fitting again returns at once, and fitting
        with a larger ``n_evaluations`` (or after an early stop) continues
        the search, as ``warm_start`` does. It is read with
        ``torch.load(weights_only=True)`` and never runs code. A Ctrl-C
        during :meth:`fit` leaves the estimator fitted with the front of the
        last completed generation, with a warning.
    warm_start : bool, default=False
        When True and the estimator is fitted, :meth:`fit` continues the
        previous search instead of starting anew: its population, random
        state, evaluation cache, front and ``history_`` are kept, and the
        search runs until ``n_evaluations`` genomes have been evaluated in
        all (or another stop criterion ends it). Continuing a search that
        ended on a generation boundary (``n_evaluations`` a multiple of
        ``pop_size``, or an early stop) gives exactly the front of one
        uninterrupted search. Refused with a ValueError when the data or a
        parameter that shapes the search changed, or when ``n_evaluations``
        is smaller than the evaluations already done. A checkpoint file, when
        one exists at ``checkpoint``, takes precedence.
    max_time : float or None, default=None
        Time budget in seconds, counted from the start of :meth:`fit`
        (feature extraction included) and checked between generations: the
        search stops after the first generation that ends past it. At least
        one generation always runs; the dense baseline (trained before the
        search) counts, its scoring and the refit after the search add to
        the time.
    n_iter_no_change : int or None, default=None
        Stop when the front's hypervolume (``history_``) has not grown by
        more than ``hypervolume_tol`` for this many generations of this
        :meth:`fit`. None disables it.
    hypervolume_tol : float, default=1e-4
        Smallest hypervolume gain that counts as an improvement for
        ``n_iter_no_change`` (the hypervolume of the built-in objectives
        lies in ``[0, 1]``).
    callbacks : list or None, default=None
        Objects called after every generation with its ``history_`` record
        and the front so far, able to stop the search; see
        :mod:`evoprune_sklearn.callbacks` (``CSVLogger``,
        ``ThresholdStopping``, or a subclass of ``SearchCallback``). Items
        may be ``(name, callback)`` pairs; the name (by default the class
        name) is what ``stop_reason_`` says when that callback stops the
        search. The objects themselves are called, so their state can be
        read after :meth:`fit`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Features of ``X`` seen in fit (pixels ``H*W*C`` for images).
    image_shape_ : tuple of int
        ``(H, W, C)`` of the training images. Only set for image input (a
        ``backbone``); a fit on feature input has no ``image_shape_``.
    backbone_ : Backbone or None
        The frozen feature extractor.
    n_genes_ : int
        Genome length.
    pareto_front_ : ParetoFront
        Every non-dominated member found, an immutable sequence of
        :class:`Member` records (``genome``, ``objectives``, the head's
        ``params``; ``predict(features)`` returns labels), with ``F`` (the
        objective values in natural units), ``genomes``, ``top(k)``,
        ``window(...)``, ``select(rule)`` and ``to_frame()``. With
        ``refit=True``, reading it retrains the members not retrained yet
        (see ``refit``).
    best_index_ : int
        Index of the member ``selection`` chooses, computed from the current
        ``selection`` over the fitted front each time it is read. It is the
        member :meth:`predict` uses when ``ensemble`` is None, and the one
        :meth:`export_model` and :meth:`explain` use by default.
    history_ : list of dict
        One flat record per generation (``pd.DataFrame(clf.history_)`` is a
        table of it): evaluations so far, heads trained, front
        size, best value of each objective, seconds elapsed, and the front's
        ``hypervolume`` (pymoo's exact indicator; the fixed reference point is
        each objective's worst value: accuracy and robustness 0, complexity
        1, so it is the fraction of the unit objective box the front
        dominates and fits can be compared).
    n_evaluations_ : int
        Genomes evaluated (cache hits included).
    n_iter_ : int
        Generations the search ran (in this fit and, with ``warm_start``,
        the fits it continues).
    n_trained_ : int
        Heads actually trained (distinct genomes).
    baseline_ : Member
        The dense (unpruned) head, trained on the same fold with the same
        initial weights, optimiser and early stopping as every candidate, and
        scored on the same objectives: the reference pruning is judged against.
    fit_time_ : dict
        Seconds spent on ``features``, ``search`` and ``total``.
    stop_reason_ : str
        Why the search of the last :meth:`fit` ended: ``"n_evaluations"``
        (the budget was spent), ``"max_time"``, ``"n_iter_no_change"``, the
        name of the callback that stopped it, ``"interrupted"`` (Ctrl-C), or
        ``"no_new_genomes"`` (NSGA-II could breed no genome it had not seen).
    objectives_ : list of Objective
        Fitted copies of ``objectives``, in their order, with what they
        learned during the fit (e.g. ``eps_``, the attack budget of
        :class:`~evoprune_sklearn.objectives.Adversarial`, calibrated when
        ``eps="auto"``).
    n_ood_samples_ : int or None
        OoD samples the ODIN robustness objective scored against (given or
        synthetic); None when it is not used.
    background_ : Background
        A stratified sample of at most 64 training samples (features, and
        RGB uint8 images for image input: at most ``64 * H * W * 3`` bytes)
        that :meth:`explain` compares against.
    gene_names_ : ndarray of str objects, shape (n_genes,)
        A name per gene, used by :meth:`explain`, the plots and
        ``pareto_front_.to_frame(genomes=True)``. ``"features"`` encoding:
        ``feature_names_in_`` when ``backbone=None`` and ``X`` had string
        column names (a DataFrame), ``"x<k>"`` for other feature matrices,
        ``"<backbone>:<k>"`` for backbone features. ``"neurons"`` encoding:
        ``"layer<l>:<k>"``, neuron ``k`` of hidden layer ``l`` (from 0).

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
        # a bare nn.Module passes here to get validate_backbone_args' hint
        "backbone": [str, BackboneSpec, torch.nn.Module, None],
        "weights": [str, os.PathLike, None],
        "image_size": [Interval(numbers.Integral, 8, None, closed="left"), None],
        "precision": [StrOptions({"fp32", "bf16"})],
        "head_precision": [StrOptions({"fp32", "bf16"})],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        "encoding": [StrOptions({"features", "neurons"})],
        "hidden_layer_sizes": [tuple, list],
        "objectives": [tuple, list],
        "pop_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_evaluations": [Interval(numbers.Integral, 1, None, closed="left")],
        "crossover_rate": [Interval(numbers.Real, 0, 1, closed="both")],
        "mutation_rate": [Interval(numbers.Real, 0, 1, closed="right"), None],
        "init": [StrOptions({"informed", "random"})],
        "mutation": [StrOptions({"informed", "bitflip"})],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_folds": [Interval(numbers.Integral, 2, None, closed="left"), None],
        "selection": [
            StrOptions(set(RULES)),
            Interval(numbers.Integral, 0, None, closed="left"),
            SelectionRule,
        ],
        "ensemble": [
            None,
            StrOptions({"front"}),
            Interval(numbers.Integral, 0, None, closed="left"),
            tuple,
            list,
        ],
        "ensemble_voting": [StrOptions({"soft", "hard"})],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "solver": [StrOptions({"lbfgs", "adam"})],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "refit": ["boolean"],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "patience": [Interval(numbers.Integral, 1, None, closed="left")],
        "engine": [StrOptions({"batched", "skorch"})],
        "n_jobs": [numbers.Integral, None],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "checkpoint": [str, os.PathLike, None],
        "warm_start": ["boolean"],
        "max_time": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "hypervolume_tol": [Interval(numbers.Real, 0, None, closed="left")],
        "callbacks": [list, tuple, None],
    }

    def __init__(
        self, backbone="efficientnet_lite0", weights="DEFAULT", image_size=None,
        precision="fp32", memory=None, encoding="features", hidden_layer_sizes=(),
        objectives=("accuracy", "complexity", "robustness"), pop_size=30,
        n_evaluations=200, crossover_rate=1.0, mutation_rate=None, init="informed",
        mutation="informed", validation_fraction=0.2, n_folds=None, selection="knee",
        ensemble=None, ensemble_voting="soft", solver="lbfgs", alpha=1.0, max_iter=50,
        head_precision="fp32", lr=1e-3, max_epochs=200, batch_size=128, patience=10,
        refit=True, class_weight=None, engine="batched", n_jobs=None, device="cpu",
        random_state=None, verbose=0, checkpoint=None, warm_start=False, max_time=None,
        n_iter_no_change=None, hypervolume_tol=1e-4, callbacks=None,
    ):
        self.backbone = backbone
        self.weights = weights
        self.image_size = image_size
        self.precision = precision
        self.memory = memory
        self.encoding = encoding
        self.hidden_layer_sizes = hidden_layer_sizes
        self.objectives = objectives
        self.pop_size = pop_size
        self.n_evaluations = n_evaluations
        self.crossover_rate = crossover_rate
        self.mutation_rate = mutation_rate
        self.init = init
        self.mutation = mutation
        self.validation_fraction = validation_fraction
        self.n_folds = n_folds
        self.selection = selection
        self.ensemble = ensemble
        self.ensemble_voting = ensemble_voting
        self.lr = lr
        self.solver = solver
        self.alpha = alpha
        self.max_iter = max_iter
        self.head_precision = head_precision
        self.refit = refit
        self.class_weight = class_weight
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.engine = engine
        self.n_jobs = n_jobs
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint = checkpoint
        self.warm_start = warm_start
        self.max_time = max_time
        self.n_iter_no_change = n_iter_no_change
        self.hypervolume_tol = hypervolume_tol
        self.callbacks = callbacks

    # ------------------------------------------------------------------ checks
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = self.backbone is None
        tags.input_tags.three_d_array = self.backbone is not None
        return tags

    def _check_params(self):
        """Checks the declarative constraints cannot express.

        Returns the objectives as fresh instances (the user's are never
        prepared or changed), each checked against its own constraints.
        """
        self._validate_params()
        ignored = ignored_parameters(self.get_params(deep=False), init_defaults(type(self)))
        if ignored:
            given = ", ".join(f"{n}={getattr(self, n)!r}" for n in ignored)
            warnings.warn(
                f"{given} has no effect with solver={self.solver!r}: only the other "
                "solver reads it (see the solver parameter).",
                UserWarning, stacklevel=3,
            )
        hidden = self.hidden_layer_sizes
        if not (0 <= len(hidden) <= 2) or not all(
            isinstance(h, numbers.Integral) and not isinstance(h, bool) and h > 0
            for h in hidden
        ):
            raise ValueError(
                "hidden_layer_sizes must hold zero, one or two positive integers, "
                f"got {hidden!r}."
            )
        if self.encoding == "neurons" and len(hidden) == 0:
            raise ValueError(
                "encoding='neurons' prunes hidden neurons, but hidden_layer_sizes=() "
                "has none; give hidden layers, e.g. hidden_layer_sizes=(512,)."
            )
        resolved = [get_objective(o) for o in self.objectives]
        objectives = tuple(o.name for o in resolved)
        if len(set(objectives)) != len(objectives):
            raise ValueError(
                f"objectives contains duplicate names: {objectives!r} (from "
                f"{tuple(self.objectives)!r}); each objective is one column of "
                "the front."
            )
        if "accuracy" not in objectives:
            raise ValueError(
                f"objectives must include 'accuracy', got {tuple(self.objectives)!r}."
            )
        for objective in resolved:
            objective.check(image_input=self.backbone is not None)
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
        check_memory_param(self.memory)
        if self.backbone is not None:
            check_precision(self.precision, _resolve_device(self.device))
        self._check_head_precision()
        check_checkpoint_path(self.checkpoint)
        check_callbacks(self.callbacks)
        if self.ensemble is not None:
            check_members_spec(self.ensemble, objectives, name="ensemble")
        return resolved

    def _check_head_precision(self):
        """Refuse ``head_precision="bf16"`` where bfloat16 is emulated; warn
        where no engine of this fit reads it."""
        if self.head_precision != "bf16":
            return
        check_precision("bf16", _resolve_device(self.device), name="head_precision")
        unused = ("a linear head trains in float32" if not self.hidden_layer_sizes
                  else "solver='adam' trains in float32" if self.solver != "lbfgs"
                  else "engine='skorch' trains in float32" if self.engine != "batched"
                  else None)
        if unused:
            warnings.warn(
                f"head_precision='bf16' has no effect here: {unused} (it applies "
                "to heads with hidden layers trained by solver='lbfgs', "
                "engine='batched').", UserWarning, stacklevel=4)

    def _validate_input(self, X, y=None, *, reset):
        """Validate X and y; return (X, y), X as features or :class:`Images`."""
        if self.backbone is None:
            if reset:
                X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
            else:
                X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
            return X, y
        # A lazy image folder is an Images already: decoded batch by batch later.
        X = Images.of(X)
        spec = X.spec
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
        return X, y

    # ---------------------------------------------------------------- features
    @property
    def _device(self):
        # Stored once, in the heads' training configuration.
        return self._config.device

    def _features(self, Xv, *, device=None, verbose=0, desc="features"):
        if self.backbone is None:
            return np.asarray(Xv, dtype=np.float32)
        # getattr: an estimator pickled before memory= existed has none
        return self.backbone_.extract(Xv, device=self._device if device is None else device,
                                      verbose=verbose, desc=desc,
                                      memory=getattr(self, "memory", None))

    # --------------------------------------------------------------------- fit
    @transactional_fit
    def fit(self, X, y, X_ood=None, sample_weight=None):
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
            Out-of-distribution samples for the ODIN objective: images in
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
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: a sample of weight ``w`` counts as ``w``
            copies of itself in the training loss and in the validation
            accuracy the search maximises (robustness objectives are not
            weighted). Multiplied by ``class_weight``. Identical samples
            (same values, same label) are merged into one carrying their
            summed weight before the validation split, so duplicates never
            sit on both sides of it and the fit does not depend on the order
            of the samples; samples of weight 0 are left out. (Feature input,
            ``backbone=None``; images are not compared, only weight-0 samples
            dropped.)

        Returns
        -------
        self : EvoPruneClassifier
            The fitted estimator.
        """
        t0 = time.perf_counter()
        # prepare: validated inputs, weights, seeds, folds, features, objectives
        objectives = self._check_params()
        Xv, y, y_enc, ood = self._validate_fit_input(X, y, X_ood, objectives)
        used, weights = self._sample_weights(Xv, y, y_enc, sample_weight)
        state = self._open_search(Xv, y, ood, weights)
        folds = self._fit_folds(y_enc, used, state)
        device = _resolve_device(self.device)
        features = self._training_features(Xv, device)
        t_features = time.perf_counter() - t0
        self._fit_references(features, y_enc, Xv, folds[0][0], state.seeds["split"])
        self._config = self._training_config(features.shape[1], state.seeds, device)
        # weights of every row, or None when each sample counts once
        w = None if np.all(weights[used] == 1.0) else weights
        data = self._search_data(objectives, features, y_enc, w, folds, Xv, ood,
                                 state.seeds["robustness"])
        # search: the dense head first (the informed operators start from it)
        dense_heads = self._train_dense(data)
        search = self._build_search(data, dense_heads, state.seeds["search"], t0)
        result, stop_reason = self._run_search(search, data, objectives, state)
        # finish: counters, baseline, refit, the fitted front
        self._record_search(result, stop_reason)
        members = [*sorted_front(result.front),
                   self._dense_baseline(data, objectives, dense_heads)]
        self.objectives_ = [fitted_copy(o) for o in objectives]
        self.n_ood_samples_ = next((o.n_ood_samples_ for o in self.objectives_
                                    if hasattr(o, "n_ood_samples_")), None)
        self.__dict__.pop("_refit_job", None)  # a previous fit's pending refits
        self._set_front(result.front, members)
        if self.refit:
            rows = np.concatenate(folds[0])
            self._start_refit(features[rows], y_enc[rows], None if w is None else w[rows])
        self.fit_time_ = {
            "features": t_features,
            "search": time.perf_counter() - t0 - t_features,
            "total": time.perf_counter() - t0,
        }
        return self

    def _validate_fit_input(self, X, y, X_ood, objectives):
        """Validated ``X`` (features or :class:`Images`), labels, encoded
        labels and OoD set; sets ``classes_``."""
        Xv, y = self._validate_input(X, y, reset=True)
        ood = validate_ood(
            X_ood,
            image_input=self.backbone is not None,
            n_features=self.n_features_in_,
            n_samples=len(y),
            used=any(o.uses_ood for o in objectives),
        )
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes; the "
                "data holds 1 class only."
            )
        return Xv, y, encoder.transform(y).astype(np.int64), ood

    def _sample_weights(self, Xv, y, y_enc, sample_weight):
        """The rows the fit uses, in :func:`merge_samples`' canonical order
        (so that the fit does not depend on the order of the samples), and
        the weight of every sample of ``X`` (0 for the merged-away and
        weight-0 ones)."""
        weights = fit_weights(sample_weight, self.class_weight, y)
        used, used_weights = merge_samples(
            Xv, y_enc, weights, can_index=self.backbone is None)
        weights = np.zeros(len(y_enc))
        weights[used] = used_weights
        return used, weights

    def _open_search(self, Xv, y, ood, weights):
        """The search state: new, or a checkpoint / warm start to continue
        (then with the seeds it was started with)."""
        rng = check_random_state(self.random_state)
        draws = (*rng.randint(0, 2**31 - 1, size=4), rng.randint(0, 2**31 - 1))
        seeds = dict(zip(("split", "search", "init", "shuffle", "robustness"),
                         map(int, draws)))
        # The weights are data too: a search continued (warm_start, a
        # checkpoint) with other weights would mix two problems.
        return open_search_state(
            self.get_params(deep=False), (Xv, y, ood, weights), seeds,
            previous=getattr(self, "_search_state", None),
            fitted="pareto_front_" in vars(self))

    def _fit_folds(self, y_enc, used, state):
        """The ``(train, val)`` rows of the search (a continued search's own)."""
        splitter = ValidationSplitter(self.validation_fraction, self.n_folds,
                                      random_state=int(state.seeds["split"]))
        folds = [(used[tr], used[va])
                 for tr, va in splitter.split(None, self.classes_[y_enc[used]])]
        if state.folds is not None:  # resuming: the folds the search used
            folds = state.folds
        state.folds = folds
        # Validation measurements behind the accuracy objective (the knee's
        # standard error): with k folds, every training sample once.
        self._n_val = sum(len(v) for _, v in folds)
        self._train_index, self._val_index = folds[0]
        return folds

    def _training_features(self, Xv, device):
        """Sets ``backbone_``; the training images' features (once per fit)."""
        if self.backbone is None:
            self.backbone_ = None
        else:
            self.backbone_ = get_backbone(self.backbone, self.weights, self.image_size)
            self.backbone_.precision = self.precision
        return self._features(Xv, device=device, verbose=self.verbose,
                              desc="training images")

    def _fit_references(self, features, y_enc, Xv, train, seed):
        """``background_`` for explanations and the training-fold features of
        the feature-space OoD detectors."""
        self.background_ = sample_background(
            features, y_enc, train, int(seed),
            images=None if self.backbone is None else Xv,
        )
        self._ood_reference = ood_reference(features, y_enc, train, int(seed))

    def _training_config(self, n_features, seeds, device):
        return TrainingConfig(
            encoding=self.encoding,
            n_features=n_features,
            hidden_layer_sizes=tuple(int(h) for h in self.hidden_layer_sizes),
            n_classes=len(self.classes_),
            solver=self.solver,
            alpha=float(self.alpha),
            max_iter=int(self.max_iter),
            lr=float(self.lr),
            max_epochs=int(self.max_epochs),
            batch_size=int(self.batch_size),
            patience=int(self.patience),
            init_seed=int(seeds["init"]),
            shuffle_seed=int(seeds["shuffle"]),
            device=device,
            engine=self.engine,
            precision=self.head_precision,
        )

    def _search_data(self, objectives, features, y_enc, w, folds, Xv, ood, seed):
        """The objectives prepared on the fit's context; the context the
        search gets (fold data, without raw inputs)."""
        def fold_data(tr, va):
            return dict(
                X_train=features[tr], y_train=y_enc[tr], X_val=features[va],
                y_val=y_enc[va], w_train=None if w is None else w[tr],
                w_val=None if w is None else w[va], train_index=tr, val_index=va,
            )

        context = ObjectiveContext(
            **fold_data(*folds[0]), n_classes=len(self.classes_),
            images=None if self.backbone is None else Xv,
            X_ood=ood, backbone=self.backbone_, seed=int(seed), config=self._config,
            n_evaluations=self.n_evaluations, verbose=self.verbose,
        )
        if len(folds) > 1:  # the other folds: the same fit, other rows
            shared = context.without_raw_inputs()
            context = dataclasses.replace(context, folds=tuple(
                dataclasses.replace(shared, **fold_data(tr, va)) for tr, va in folds[1:]))
        with (contextlib.nullcontext() if self.backbone_ is None
              else self.backbone_.caching(self.memory)):  # the OoD images' features
            for obj in objectives:
                obj.prepare(context)
        # Raw inputs are for prepare only: parallel workers are not sent them.
        return context.without_raw_inputs()

    def _train_dense(self, data):
        """The dense head on the first fold (becomes ``baseline_``)."""
        config = self._config
        genome = np.ones((1, config.head.n_genes), dtype=bool)
        return train_heads(genome, data.X_train, data.y_train, config,
                           sample_weight=data.w_train)

    def _build_search(self, data, dense_heads, seed, t0):
        """The search component, every setting given once."""
        sampling, gene_scores = informed_operators(
            data, dense_heads.head_parameters(0), init=self.init, mutation=self.mutation)
        control = SearchControl(
            check_callbacks(self.callbacks), estimator=self, max_time=self.max_time,
            started=t0, n_iter_no_change=self.n_iter_no_change,
            tol=self.hypervolume_tol)
        return NSGA2Search(
            pop_size=self.pop_size, n_evaluations=self.n_evaluations,
            crossover_rate=self.crossover_rate, mutation_rate=self.mutation_rate,
            seed=int(seed), n_jobs=self.n_jobs, sampling=sampling,
            gene_scores=gene_scores, control=control, verbose=self.verbose)

    def _run_search(self, search, data, objectives, state):
        """The search's result and stop reason; after Ctrl-C, the result of
        the last completed generation (re-raised when there is none)."""
        try:
            result = search.run(data, objectives, start=state.start,
                                on_generation=state.record)
            stop_reason = result.stop_reason
        except KeyboardInterrupt:
            # Keep what the completed generations found (the checkpoint
            # holds the same); the next fit resumes the same run segment.
            result = dataclasses.replace(state.interrupted_result(), stop_reason=None)
            stop_reason = "interrupted"
            warnings.warn(
                f"fit was interrupted after generation {result.n_generations} "
                f"({result.n_evaluations} of {self.n_evaluations} evaluations); the "
                "estimator holds the Pareto front found so far."
                + (" Fit again with the same checkpoint to resume the search."
                   if state.path else " Fit again with warm_start=True to resume "
                   "the search."),
                UserWarning,
                stacklevel=4,
            )
        # What fit(warm_start=True) continues; the tensors share memory with
        # the search's members.
        self._search_state = state.resume_point(result)
        return result, stop_reason

    def _record_search(self, result, stop_reason):
        self.stop_reason_ = stop_reason
        self.history_ = result.history
        self.n_genes_ = int(result.front[0].genome.size)
        self.n_evaluations_ = int(result.n_evaluations)
        self.n_trained_ = int(result.n_trained)
        self.n_iter_ = len(result.history)

    def _set_front(self, front, members):
        """``baseline_`` and ``pareto_front_`` from the fitted members (the
        front's, then the baseline): new records that know the labels and
        the head's configuration (the search keeps its own members)."""
        members = [dataclasses.replace(m, classes=self.classes_, config=self._config)
                   for m in members]
        self.baseline_ = members.pop()
        self.gene_names_ = gene_names(
            self.encoding, self._config.hidden_layer_sizes, self._config.n_features,
            backbone=None if self.backbone_ is None else self.backbone_.name,
            feature_names_in=getattr(self, "feature_names_in_", None),
        )
        front = dataclasses.replace(
            front, members=tuple(members), gene_names=self.gene_names_,
            n_validation=self._n_val,
        )
        self.pareto_front_ = front
        # best_index_ is computed from `selection` when read; selecting here
        # refuses, before fit returns, a selection this front cannot satisfy.
        front.select(self.selection)

    # ---------------------------------------------------------------- refit
    def _start_refit(self, X, y, w):
        """``refit=True``: retrain ``baseline_`` and the members ``predict``
        uses now on ``(X, y)``; the other members when first needed."""
        front = self._stored_front()
        job = DeferredRefit([*front.members, self.baseline_], X, y, self._config,
                            sample_weight=w)
        used = [front.select(self.selection)]
        if self.ensemble is not None:
            try:
                used = resolve_members(front, self.ensemble, "ensemble")
            except ValueError:  # predict names the problem, fit keeps its front
                pass
        self.baseline_ = job.members([*used, len(front)])[-1]  # trained together
        self._refit_job = job
        self.__dict__["pareto_front_"] = self._front_for(used)
        if not job.n_pending:
            del self._refit_job

    def _stored_front(self):
        """The front as stored: with ``refit=True``, members not retrained yet
        still hold their search-trained heads (objectives and genomes are final)."""
        try:
            return self.__dict__["pareto_front_"]
        except KeyError:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute 'pareto_front_'"
            ) from None

    def _front_for(self, indices):
        """The stored front with the members at ``indices`` retrained."""
        front = self._stored_front()
        job = getattr(self, "_refit_job", None)
        if job is None:
            return front
        # a valid front position (the job's last member is the baseline)
        indices = [range(len(front))[i] for i in indices]
        members = list(front.members)
        for i, member in zip(indices, job.members(indices)):
            members[i] = member
        return dataclasses.replace(front, members=tuple(members))

    def _finish_refit(self):
        """Retrain every member still pending (all together) and release
        the training rows."""
        job = getattr(self, "_refit_job", None)
        if job is not None:
            front = self._stored_front()
            self.__dict__["pareto_front_"] = dataclasses.replace(
                front, members=tuple(job.all_members()[:len(front)]))
            self.__dict__.pop("_refit_job", None)

    @property
    def pareto_front_(self):
        """The fitted :class:`ParetoFront`, every member retrained with ``refit=True``.

        Reading it retrains the members not retrained yet (once, all
        together): the front holds the same heads as if they had all been
        retrained during :meth:`fit`.
        """
        self._finish_refit()
        return self._stored_front()

    @pareto_front_.setter
    def pareto_front_(self, front):
        self.__dict__["pareto_front_"] = front

    def __getstate__(self):
        # A pickle holds the retrained heads, never the training rows.
        self._finish_refit()
        return super().__getstate__()

    @property
    def best_index_(self):
        """Index of the front member chosen by the current ``selection``."""
        check_is_fitted(self)
        validate_parameter_constraints(
            {"selection": self._parameter_constraints["selection"]},
            {"selection": self.selection},
            caller_name=type(self).__name__,
        )
        return self._stored_front().select(self.selection)

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

    def _dense_baseline(self, data, objectives, heads):
        """The unpruned head, trained and scored exactly like every candidate.

        Trained outside the search's evaluator so that it never counts as a
        search evaluation (a finished checkpoint still trains no genome);
        ``heads`` is its training on the first fold, done before the search.
        """
        genome = np.ones((1, self.n_genes_), dtype=bool)
        trained = [heads]

        def train(*args, **kwargs):
            # the first fold's heads are `heads`; other folds train here,
            # with the estimator's own train_heads (not the search's)
            return trained.pop() if trained else train_heads(*args, **kwargs)

        scores, heads, _ = score_genomes(genome, data, objectives, train=train)
        values = {o.name: float(v) for o, v in zip(objectives, scores[0])}
        return Member(genome[0], values, params=heads.head_parameters(0),
                      train_loss=heads.train_loss[0])

    def _predictor(self):
        """``None`` (the selected member) or the ensemble's ``(members, voting)``.

        Read at predict time, so ``set_params`` after fit takes effect; the
        values are checked here because ``set_params`` does not check them.
        """
        validate_parameter_constraints(
            {k: self._parameter_constraints[k] for k in ("ensemble", "ensemble_voting")},
            {"ensemble": self.ensemble, "ensemble_voting": self.ensemble_voting},
            caller_name=type(self).__name__,
        )
        if self.ensemble is None:
            return None
        check_members_spec(self.ensemble, self._stored_front().objective_names,
                           name="ensemble")
        return self.ensemble, self.ensemble_voting

    def _check_proba(self):
        if self.ensemble is not None and self.ensemble_voting == "hard":
            raise AttributeError(
                "predict_proba is not available when ensemble_voting='hard' (a "
                "majority vote has no probabilities); use ensemble_voting='soft', "
                "or ensemble_predict_proba for the members' mean probability."
            )
        return True

    @available_if(_check_proba)
    def predict_proba(self, X):
        """Class probabilities of the selected member, or of the ensemble.

        With ``ensemble=None`` (default), the probabilities of the member
        chosen by ``selection`` (:attr:`best_index_`); otherwise the mean
        probability of the ``ensemble`` members, as
        ``ensemble_predict_proba(X, members=ensemble)``. Not available with
        ``ensemble_voting="hard"``.

        Parameters
        ----------
        X : array-like
            Images or features, as in :meth:`fit`.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        predictor = self._predictor()
        if predictor is not None:
            return self._ensemble_proba(X, predictor[0], "ensemble")
        index = self.best_index_  # a bad selection fails before the backbone runs
        Xv, _ = self._validate_input(X, reset=False)
        features = self._features(Xv)
        return self._front_for([index])[index].predict_proba(features, self._device)

    def predict(self, X):
        """Class labels of the selected member, or voted by the ensemble.

        With ``ensemble=None`` (default), the member chosen by ``selection``
        (:attr:`best_index_`); otherwise
        ``ensemble_predict(X, members=ensemble, voting=ensemble_voting)``.

        Parameters
        ----------
        X : array-like
            Images or features, as in :meth:`fit`.

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
        >>> member = clf.fit(X, y).predict(X[:3])
        >>> voted = clf.set_params(ensemble="front").predict(X[:3])  # no refit
        >>> voted.shape
        (3,)
        """
        check_is_fitted(self)
        predictor = self._predictor()
        if predictor is not None:
            return self._ensemble_labels(X, *predictor, "ensemble")
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
        members : "front", int, list of int or tuple, default=("top", 3)
            Which members vote: ``"front"`` (all), an int (that index into
            :attr:`pareto_front_`), a list of indices (e.g.
            ``pareto_front_.top(3)``), ``("top", k)`` (the ``k`` most
            accurate on the validation fold; all when the front is smaller;
            ``("top", k, objective)`` ranks by another objective), or a
            percentile window of an objective over the front such as
            ``("window", "accuracy", 50, 60)`` (the paper's windows; an empty
            window raises a ValueError). The default, the 3 most accurate
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
        >>> clf.fit(X, y).ensemble_predict_proba(X[:2], members=("top", 3)).shape
        (2, 2)
        """
        check_is_fitted(self)
        return self._ensemble_proba(X, members, "members")

    def _member_logits(self, X, members, name="members"):
        """Logits of the chosen members, shape (n_members, n_samples, n_classes).

        A bad member choice fails before the (costly) backbone pass.
        """
        indices = resolve_members(self._stored_front(), members, name)
        features = self.extract_features(X)
        return member_logits(self._front_for(indices), indices, features, self._device)

    def _ensemble_proba(self, X, members, name):
        logits = self._member_logits(X, members, name)
        return torch.softmax(logits, dim=-1).mean(dim=0).numpy()

    def _ensemble_labels(self, X, members, voting, name):
        logits = self._member_logits(X, members, name)
        return self.classes_[vote(torch.softmax(logits, dim=-1).numpy(), voting)]

    def ensemble_predict(self, X, members=DEFAULT_MEMBERS, voting=DEFAULT_VOTING):
        """Class labels voted by several front members.

        Parameters
        ----------
        X : array-like
            Images or features, as in :meth:`fit`.
        members : "front", int, list of int or tuple, default=("top", 3)
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
        return self._ensemble_labels(X, members, voting, "members")

    def ensemble_ood_score(self, X, members=DEFAULT_MEMBERS, method=DEFAULT_OOD_METHOD,
                           temperature=None, k=10):
        """Out-of-distribution score of an ensemble (or of one member).

        Higher means more in-distribution, so
        ``roc_auc_score(is_in_distribution, score)`` measures OoD detection.

        Parameters
        ----------
        X : array-like
            Images or features, as in :meth:`fit`.
        members : "front", int, list of int or tuple, default=("top", 3)
            Which members score; see :meth:`ensemble_predict_proba`. An int
            scores one member alone.
        method : {"knn", "mahalanobis", "msp", "energy", "entropy", \
                "mutual_info", "odin"}, default="knn"
            The score:

            - ``"knn"``: minus the distance to the ``k``-th nearest training
              sample, on unit-length features restricted to the features the
              members read (the union of their kept features);
            - ``"mahalanobis"``: minus the smallest Mahalanobis distance to a
              class mean (covariance shared by the classes, Ledoit-Wolf
              shrinkage), on the same features;
            - ``"msp"``: the maximum of the members' mean probability;
            - ``"energy"``: the members' mean ``T * logsumexp(logits / T)``;
            - ``"entropy"``: minus the entropy of the mean probability;
            - ``"mutual_info"``: minus the members' disagreement, the mutual
              information of Lakshminarayanan et al. (2017); 0 for a single
              member, so use it for ensembles only;
            - ``"odin"``: the members' mean ODIN score
              ``max softmax(logits / T)`` (the only score of earlier versions).

            The default was chosen by AUROC on each fit's validation fold
            against the built-in synthetic OoD set, never on test data
            (:ref:`ensembles`). The feature detectors use the training fold
            (at most 4096 samples), kept by :meth:`fit`.
        temperature : float, default=None
            ``T`` of ``"odin"`` (None: 1000) and ``"energy"`` (None: 1).
        k : int, default=10
            Neighbour rank of ``"knn"``.

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
        >>> clf.ensemble_ood_score(X[:4], members="front", method="mutual_info").shape
        (4,)
        """
        check_is_fitted(self)
        check_ood_method(method, temperature, k)
        indices = resolve_members(self._stored_front(), members)
        features = self.extract_features(X)
        return score_ood(self._front_for(indices), indices, features, method,
                         reference=self._ood_reference, temperature=temperature, k=k,
                         device=self._device)

    @property
    def device_(self):
        """The device the fitted estimator computes on (``"cpu"``, ``"cuda:0"``, ...)."""
        check_is_fitted(self)
        return self._device

    @property
    def ood_reference_(self):
        """Training-fold features and encoded labels of the feature OoD detectors.

        A dict ``{"features": float32 array, "labels": int64 array}`` of at
        most 4096 training-fold rows, kept by :meth:`fit`.
        """
        check_is_fitted(self)
        return self._ood_reference

    def export_model(self, member=None, head_only=False):
        """A plain torch module of one member with the pruning made physical.

        Pruned features and neurons are removed (smaller ``Linear`` layers),
        not masked; the logits equal the masked head's. The module is plain
        eager PyTorch (nothing is TorchScript-traced or scripted), on the CPU
        in eval mode: its ``state_dict`` saves with :func:`torch.save`, and
        it leaves Python with :func:`torch.export.export` or
        ``torch.onnx.export(..., dynamo=True)`` (ONNX Runtime, TensorRT,
        ...). It is always one member, also when ``ensemble`` is set.

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
        >>> import torch
        >>> program = torch.export.export(head, (torch.zeros(1, 20),))
        >>> program.module()(torch.zeros(1, 20)).shape
        torch.Size([1, 2])
        """
        check_is_fitted(self)
        index = check_member_index(
            self.best_index_ if member is None else member, len(self._stored_front()))
        return export_member(self._front_for([index])[index].module(), self.backbone_,
                             head_only)

    def explain(self, X, member=None, n_top=10, background=None, max_samples=64,
                target=None, pixels=None, pixel_method="gradient", method="gradient",
                random_state=None):
        """Explain predictions with SHAP: which genes and which pixels matter.

        Explains the log-probability of each sample's target class, gene by
        gene, and returns a :class:`shap.Explanation` (an
        :class:`~evoprune_sklearn.Explanation`) that every shap plot takes:
        ``shap.plots.beeswarm(clf.explain(X))``.

        Parameters
        ----------
        X : array-like
            Images or features, as in :meth:`fit`.
        member : None, int, "front", list of int or tuple, default=None
            The front member to explain (None: the selected one,
            :attr:`best_index_`; an int: that index). Several members, named
            as ``members=`` of :meth:`ensemble_predict` (``"front"``, a list
            of indices, ``("top", k)``, ``("window", objective, lo, hi)``),
            explain their soft vote, the log of the mean probability.
        n_top : int, default=10
            Length of the ``top_genes`` rankings.
        background : array-like, default=None
            Reference samples, in the layout of ``X``, for
            ``method="gradient"`` and pixel attributions; :attr:`background_`
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
            head, at the images' own resolution. ``"feature_map"``: the
            features' values spread over the backbone's last convolutional
            map and upsampled (one forward pass, but only ``input_size / 32``
            cells of resolution).
        method : {"gradient", "pruning"}, default="gradient"
            How gene values are computed.

            - ``"gradient"``: expected gradients (``shap.GradientExplainer``'s
              estimator, vectorised) against the background: how much each
              gene moves the prediction away from a typical training sample.
            - ``"pruning"``: ``shap.PermutationExplainer`` with a masker that
              switches genes off exactly as pruning does: what the member
              would lose if the gene were pruned. Values add up exactly to the
              target log-probability minus that of the member with every gene
              pruned. Runs on cached features: ``4 * (2 * n_active + 1)``
              head evaluations per sample.
        random_state : int, RandomState instance or None, default=None
            Seeds the choice of rows, the expected-gradients sampling and the
            permutations.

        Returns
        -------
        explanation : Explanation
            A :class:`shap.Explanation` of shape ``(n_explained, n_genes_)``
            with ``feature_names`` = :attr:`gene_names_`, plus the gene
            frequency on the front, ``top_genes``, ``to_frame()`` and, for
            image input, ``pixels`` (a :class:`shap.Explanation` for
            ``shap.image_plot``).

        Examples
        --------
        >>> from sklearn.datasets import make_classification
        >>> from evoprune_sklearn import EvoPruneClassifier
        >>> X, y = make_classification(n_samples=100, n_features=8, random_state=0)
        >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(8,), pop_size=4,
        ...                          n_evaluations=8, random_state=0).fit(X, y)
        >>> exp = clf.explain(X[:5], n_top=3, random_state=0)
        >>> exp.values.shape
        (5, 8)
        >>> pruned = clf.explain(X[:5], method="pruning", random_state=0)
        >>> import numpy as np
        >>> log_proba = np.log(clf.predict_proba(X[:5])).max(axis=1)
        >>> bool(np.allclose(pruned.values.sum(axis=1) + pruned.base_values, log_proba,
        ...                  atol=1e-5))
        True
        """
        check_is_fitted(self)
        images_in = self.backbone_ is not None
        n_top, max_samples, want_pixels = check_explain_options(
            n_top, max_samples, method, pixel_method, pixels, images_in)
        label, indices = resolve_member(member, self._stored_front(),
                                        lambda: self.best_index_)
        front = self._front_for(indices)
        Xv, _ = self._validate_input(X, reset=False)
        n = len(Xv)
        rows, seed = sample_rows(n, max_samples, random_state)
        target_enc = None if target is None else check_target(self.classes_, target, n,
                                                              rows)
        bg = None
        if method == "gradient" or want_pixels:
            if background is None:
                bg = getattr(self, "background_", None)
                if bg is None:
                    raise ValueError(
                        "This classifier holds no background sample (it was fitted by "
                        "an older version); pass background= explicitly."
                    )
            else:
                bgv, _ = self._validate_input(background, reset=False)
                bg = background_from(self._features(bgv), bgv if images_in else None)
        if images_in:
            images = Xv.take(rows)
            feats = self._features(images)
        else:
            images, feats = None, np.asarray(Xv, dtype=np.float32)[rows]
        names = getattr(self, "gene_names_", None)
        if names is None:  # fitted before gene names were kept
            names = [f"gene{k}" for k in range(self.n_genes_)]
        return explain(
            [front[i].module().to(self._device) for i in indices], feats,
            genomes=np.array([m.genome for m in front]), indices=indices, label=label,
            classes=self.classes_, encoding=self._config.encoding,
            gene_names=[str(g) for g in names], rows=rows, seed=seed, target=target_enc,
            background=bg, images=images, backbone=self.backbone_, device=self._device,
            want_pixels=want_pixels, n_top=n_top, pixel_method=pixel_method,
            method=method,
        )

    # ------------------------------------------------------------- save/load
    def save(self, path):
        """Write the fitted estimator to one file, without pickle.

        The file is in the `safetensors` format: every array and tensor
        (head and backbone weights, genomes, the front's data) is stored as
        raw numbers, and the parameters and every other fitted attribute as
        JSON in its header, with a SHA-256 checksum of the whole content.
        :meth:`load` reads it back without running any code from the file.
        The write is atomic: a crash keeps any previous file at ``path``.

        Parameters
        ----------
        path : str or path-like
            File to write (conventionally ``*.safetensors``); replaced if it
            exists.

        Returns
        -------
        path : str
            The path written.

        Raises
        ------
        TypeError
            When a parameter or fitted attribute holds a value the format
            cannot store (for example an arbitrary Python object); its name
            is in the message. Nothing is silently left out.
            Also when ``backbone`` is a :class:`BackboneSpec` (a network
            given as an object): register it by name instead (see
            :func:`register_backbone`), or export the network with
            :meth:`export_model`.

        See Also
        --------
        load : Read the file back.

        Examples
        --------
        >>> import os, tempfile
        >>> from sklearn.datasets import make_classification
        >>> from evoprune_sklearn import EvoPruneClassifier
        >>> X, y = make_classification(n_samples=120, n_features=20, random_state=0)
        >>> clf = EvoPruneClassifier(backbone=None, hidden_layer_sizes=(16,),
        ...                          pop_size=6, n_evaluations=12, random_state=0)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
        >>> _ = clf.fit(X, y).save(path)
        >>> same = EvoPruneClassifier.load(path)
        >>> bool((same.predict_proba(X) == clf.predict_proba(X)).all())
        True
        """
        check_is_fitted(self)
        if isinstance(self.backbone, BackboneSpec):
            raise TypeError(
                "save() cannot store backbone=BackboneSpec(...): the file holds no "
                "code, so a network it did not register cannot be rebuilt. Register "
                "the builder with register_backbone(name, spec) and fit with "
                "backbone=name (register it again before load), or keep the model "
                "with torch.save(clf.export_model().state_dict(), path)."
            )
        self._finish_refit()  # the file holds the retrained heads, not the rows
        params = self.get_params(deep=False)
        fitted = {k: v for k, v in vars(self).items() if k not in params}
        save_estimator(path, type(self).__name__, params, fitted)
        return os.fspath(path)

    @classmethod
    def load(cls, path):
        """Read an estimator written by :meth:`save`.

        The file is parsed as safetensors (raw numbers) plus JSON, and only
        this package's own classes are rebuilt from it, so loading never runs
        code from the file, unlike :mod:`pickle`. A file that is not a
        :meth:`save` file, was modified or corrupted after it was written,
        or comes from a newer file format is refused with a ValueError. The
        backbone is rebuilt from its registry name and the saved weights
        (nothing is downloaded). A model saved on a GPU and loaded where
        there is none predicts on the CPU.

        Parameters
        ----------
        path : str or path-like
            A file written by :meth:`save`.

        Returns
        -------
        estimator : EvoPruneClassifier
            Fitted, with the saved parameters; its predictions equal those of
            the estimator that was saved.

        Raises
        ------
        FileNotFoundError
            When there is no file at ``path``.
        ValueError
            When the file is not one :meth:`save` wrote, or was altered.

        See Also
        --------
        save : Write the file.
        """
        params, fitted = load_estimator(
            path, cls.__name__, cls().get_params(deep=False))
        estimator = cls(**params)
        # as unpickling does: the estimator takes its fitted state itself (a
        # model saved on a GPU machine moves to the CPU on a CPU-only one)
        estimator.__setstate__(fitted)
        return estimator

    def __setstate__(self, state):
        # Also how load() (safetensors) puts the fitted attributes back.
        state = dict(state)
        state.pop("_device", None)  # stored by versions before 0.3: _config has it
        if "head_precision" not in vars(self):  # unpickling a model older than 0.3
            state.setdefault("head_precision", "fp32")
        self.__dict__.update(state)
        device = getattr(state.get("_config"), "device", "cpu")
        available = device == "cpu" or not isinstance(device, str) or (
            device.startswith("cuda") and torch.cuda.is_available()) or (
            device == "mps" and torch.backends.mps.is_available())
        if not available:
            # Fitted on a GPU, loaded on a CPU-only machine: the members hold
            # CPU tensors and compute on the estimator's device, so only that
            # and the training configuration move to the CPU.
            self._config = dataclasses.replace(self._config, device="cpu")
