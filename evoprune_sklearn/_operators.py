"""Informed NSGA-II operators: start and move where the trained heads point.

The papers start from random subsets and move by uniform crossover and
1/L bit flips; with a few hundred evaluations over a thousand genes the
search hardly leaves its random start. Two pymoo operators use evidence the
fit computes anyway:

- :class:`InformedSampling`, the first population: genomes that keep the
  top-ranked genes of a sparsity path (a group-L1 logistic path over the
  standardised features, :func:`group_l1_ranking`) and of the dense head's
  gene importances (:func:`gene_importance`), at densities spread
  geometrically over (0, 1], plus a share of the papers' random genomes.
- :class:`InformedMutation`: switches weak active genes off and promising
  inactive genes on more often than others, by the gene importances of
  the heads trained so far (:class:`GeneScores`: the dense head and every
  front member, read from their trained weights; no extra training), with
  a share of uniform random flips kept.

Both draw only from pymoo's ``random_state``, so a search is reproducible.
"""

import numpy as np
from pymoo.core.mutation import Mutation
from pymoo.core.sampling import Sampling

__all__ = [
    "GeneScores",
    "INIT_RANDOM_SHARE",
    "InformedMutation",
    "InformedSampling",
    "density_spread_genomes",
    "gene_importance",
    "group_l1_ranking",
    "spread_densities",
]


#: Share of the informed first population drawn as the papers' random genomes.
INIT_RANDOM_SHARE = 1 / 3


def gene_importance(params, encoding, feature_scale=None):
    """Importance of every gene in one trained head, from its weights.

    ``"features"``: the norm of feature ``j``'s outgoing first-layer weights
    times the feature's standard deviation (the weight norm the head would
    have on standardised features). ``"neurons"``: for unit ``u`` of a
    hidden layer, the norm of its incoming weights times the norm of its
    outgoing ones (how much it can pass on). Pruned genes get 0.

    Parameters
    ----------
    params : list of (weight, bias)
        Full-size head parameters, weights of shape ``(fan_in, fan_out)``.
    encoding : {"features", "neurons"}
    feature_scale : ndarray of shape (n_features,), default=None

    Returns
    -------
    importance : ndarray of shape (n_genes,), float64
    """
    weights = [np.asarray(w, dtype=np.float64) for w, _ in params]
    if encoding == "features":
        imp = np.linalg.norm(weights[0], axis=1)
        if feature_scale is not None:
            imp = imp * np.asarray(feature_scale, dtype=np.float64)
        return imp
    parts = []
    for layer in range(len(weights) - 1):
        w_in, w_out = weights[layer], weights[layer + 1]
        parts.append(np.linalg.norm(w_in, axis=0) * np.linalg.norm(w_out, axis=1))
    return np.concatenate(parts)


def _normalised(importance, active):
    """Importances divided by their mean over the active genes."""
    mean = importance[active].mean() if active.any() else 0.0
    return importance / mean if mean > 0 else np.zeros_like(importance)


def group_l1_ranking(X, y, n_classes, sample_weight=None, n_lambdas=10, ratio=0.05,
                     n_iter=10):
    """Rank features by when they enter a group-L1 multinomial logistic path.

    Fits ``mean CE(softmax(Xs W + b)) + lam * sum_j ||W_j||_2`` on the
    standardised features ``Xs`` for ``n_lambdas`` values of ``lam`` from
    the smallest that keeps every feature out down to ``ratio`` times it,
    each warm-started from the previous one (accelerated proximal gradient,
    ``n_iter`` steps per value). One group per feature, all classes
    together: the path selects features, as the ``"features"`` encoding
    does. Features that entered at a larger ``lam`` rank higher (ties by
    their final group norm); those that never entered rank below, by
    their final gradient norm (how close they came).

    It is a ranking, not a model: a few hundred matrix products on the
    training fold, far cheaper than the search.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of int of shape (n_samples,)
    n_classes : int
    sample_weight : ndarray of shape (n_samples,), default=None
    n_lambdas : int, default=10
    ratio : float, default=0.05
    n_iter : int, default=10

    Returns
    -------
    score : ndarray of shape (n_features,)
        Higher is more important.
    """
    # float32 products: a ranking needs no more, and they are half the time
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    w = (np.ones(n) if sample_weight is None
         else np.asarray(sample_weight, dtype=np.float64))
    w = w / w.sum()
    mean = w @ X
    scale = np.sqrt(np.maximum(w @ (X - mean) ** 2, 1e-12))
    Xs = ((X - mean) / scale).astype(np.float32)
    w = w.astype(np.float32)
    Y = np.zeros((n, n_classes), dtype=np.float32)
    Y[np.arange(n), np.asarray(y, dtype=int)] = 1.0
    prior = np.maximum(w @ Y, 1e-12)
    b = (np.log(prior) - np.log(prior).mean()).astype(np.float32)
    W = np.zeros((d, n_classes), dtype=np.float32)

    def grad(W, b):
        Z = Xs @ W + b
        Z -= Z.max(axis=1, keepdims=True)
        P = np.exp(Z)
        P /= P.sum(axis=1, keepdims=True)
        R = (P - Y) * w[:, None]
        return Xs.T @ R, R.sum(axis=0)

    # Lipschitz constant of the gradient: ||Xs||_2^2 / 2 under the weights.
    v = np.ones(d, dtype=np.float32) / np.sqrt(d)
    for _ in range(10):
        v = Xs.T @ (w * (Xs @ v))
        # a float32 vector: a guard of 1e-300 would round to 0 (all-constant X)
        v /= max(float(np.linalg.norm(v)), 1e-30)
    lipschitz = max(0.5 * float(v @ (Xs.T @ (w * (Xs @ v)))), 1e-12)
    step = np.float32(1.0 / lipschitz)
    G, _ = grad(W, b)
    g_norm = np.linalg.norm(G, axis=1)
    lam_max = float(g_norm.max())
    entry = np.full(d, -np.inf)
    for lam in (lam_max * np.geomspace(1.0, ratio, n_lambdas)).tolist():
        V, c, W_prev, t = W.copy(), b.copy(), W, 1.0
        for _ in range(n_iter):
            G, g_b = grad(V, c)
            U = V - step * G
            norms = np.linalg.norm(U, axis=1, keepdims=True)
            shrink = np.float32(step * lam) / np.maximum(norms, np.float32(1e-30))
            W_new = U * np.maximum(np.float32(0.0), np.float32(1.0) - shrink)
            b_new = c - step * g_b
            t_new = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
            momentum = np.float32((t - 1.0) / t_new)
            V = W_new + momentum * (W_new - W_prev)
            c = b_new + momentum * (b_new - b)
            W_prev, b, t = W_new, b_new, t_new
        W = W_prev
        entered = (np.linalg.norm(W, axis=1) > 0) & ~np.isfinite(entry)
        entry[entered] = lam
    G, _ = grad(W, b)
    norms = np.linalg.norm(W, axis=1)
    top = norms.max() if norms.max() > 0 else 1.0
    # entry values differ by at least 1/ratio**(1/(n_lambdas-1)) > 1.1 from
    # one lam to the next, so a tie-break below 10% keeps the entry order
    score = np.where(np.isfinite(entry), entry * (1.0 + 0.09 * norms / top), 0.0)
    out = ~np.isfinite(entry)
    # never entered: below every entered feature, by the last gradient norm
    # float64: a float32 array would round the 1e-300 guard below to 0
    g_norm = np.linalg.norm(G, axis=1).astype(np.float64)
    floor = lam_max * ratio
    score[out] = floor * 0.9 * g_norm[out] / max(float(g_norm[out].max(initial=0.0)), 1e-300)
    return score


def density_spread_genomes(n, n_genes, random_state):
    """The papers' random genomes: density ``p ~ U(0, 1)``, ``round(p * L)`` genes.

    Each genome switches on ``max(1, round(p * n_genes))`` genes chosen at
    random, so a population spreads over every density instead of
    clustering at 50%.
    """
    X = np.zeros((n, n_genes), dtype=bool)
    for i in range(n):
        k = max(1, int(round(random_state.random() * n_genes)))
        X[i, random_state.choice(n_genes, size=k, replace=False)] = True
    return X


def spread_densities(n, n_genes, smallest=0.005):
    """``n`` densities spread geometrically over ``[smallest, 1]``, as gene counts.

    Geometric, because the budgets users compare at (5 to 50 % of genes)
    and the knee lie at small densities; the largest is always the dense
    genome. Counts are distinct where ``n_genes`` allows.
    """
    if n <= 0:
        return np.zeros(0, dtype=int)
    low = max(smallest, 1.0 / n_genes)
    counts = np.round(np.geomspace(low, 1.0, n) * n_genes).astype(int)
    return np.unique(np.clip(counts, 1, n_genes))


class InformedSampling(Sampling):
    """The first population: top-ranked genes at spread densities, plus random genomes.

    Each ranking (a score per gene, higher is better) gives nested genomes
    that keep its ``k`` best genes, for gene counts ``k`` spread by
    :func:`spread_densities` (the rankings take turns over the counts, so
    together they cover every density once); ``random_share`` of the
    population are the papers' random genomes
    (:func:`density_spread_genomes`), for diversity.

    Parameters
    ----------
    rankings : list of ndarray of shape (n_genes,)
    random_share : float, default=1/3
    """

    def __init__(self, rankings, random_share=1 / 3):
        super().__init__()
        self.rankings = [np.asarray(r, dtype=np.float64) for r in rankings]
        self.random_share = float(random_share)

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        L = problem.n_var
        n_random = int(round(self.random_share * n_samples)) if self.rankings else n_samples
        counts = spread_densities(n_samples - n_random, L)
        # the shortfall of duplicate counts (small n_genes) goes to random genomes
        n_random = n_samples - len(counts)
        orders = [np.argsort(-r, kind="stable") for r in self.rankings]
        X = np.zeros((n_samples, L), dtype=bool)
        # largest counts first: the dense genome comes from the first ranking
        for i, k in enumerate(counts[::-1]):
            X[i, orders[i % len(orders)][:k]] = True
        if n_random:
            X[len(counts):] = density_spread_genomes(n_random, L, random_state)
        # pymoo drops duplicates from the first population: redraw a random
        # genome that repeats another (few genes), so it keeps n_samples
        seen = set()
        for i in range(n_samples):
            for _ in range(100):
                if X[i].tobytes() not in seen:
                    break
                X[i] = density_spread_genomes(1, L, random_state)[0]
            seen.add(X[i].tobytes())
        return X


class GeneScores:
    """What the search knows about each gene's importance, from trained heads.

    The score of a gene is the mean, over the heads that keep it, of its
    :func:`gene_importance` divided by the mean importance of that head's
    active genes (so small and large heads count alike). The heads are the
    dense head (every gene: the prior) and the front's members, whose
    trained weights the search keeps anyway; importances are cached by
    genome. Updated by the search after every generation, read by
    :class:`InformedMutation`. Being a function of the front, it is the same
    after a checkpoint is resumed.

    Parameters
    ----------
    prior_params : list of (weight, bias)
        The dense head's parameters.
    encoding : {"features", "neurons"}
    feature_scale : ndarray of shape (n_features,), default=None
    """

    def __init__(self, prior_params, encoding, feature_scale=None):
        self.encoding = encoding
        self.feature_scale = feature_scale
        prior = gene_importance(prior_params, encoding, feature_scale)
        self.prior = _normalised(prior, np.ones(prior.size, dtype=bool))
        self.cache = {}
        self.scores = self.prior.copy()

    def update(self, front):
        """Recompute the scores from the dense head and ``front``'s members."""
        total = self.prior.copy()
        count = np.ones_like(total)
        for m in front:
            if m.params is None:
                continue
            key = np.packbits(np.asarray(m.genome, dtype=bool)).tobytes()
            if key not in self.cache:
                active = np.asarray(m.genome, dtype=bool)
                imp = gene_importance(m.params, self.encoding, self.feature_scale)
                self.cache[key] = (active, _normalised(imp, active))
            active, imp = self.cache[key]
            total[active] += imp[active]
            count[active] += 1
        self.scores = total / count


def _rank_weights(n):
    """Harmonic weights ``1 / (rank + 1)``, normalised: the best few are
    chosen often, every one sometimes."""
    w = 1.0 / np.arange(1, n + 1)
    return w / w.sum()


class InformedMutation(Mutation):
    """Bit flips that prefer weak active genes (off) and strong inactive ones (on).

    Each child gets ``max(1, Binomial(n_genes, prob_var))`` flips (on
    average ``prob_var * n_genes``, as bit-flip mutation). Each flip is a
    uniform random one with probability ``random_share``; otherwise, with
    equal chance, it switches off an active gene or on an inactive one,
    chosen with probability ``1 / (rank + 1)`` (normalised) in the order of
    :class:`GeneScores`: the weakest active gene first, the most important
    inactive one first. A genome is never emptied by it.

    Parameters
    ----------
    scores : GeneScores
    prob_var : float, default=None
        Per-gene flip probability; ``1 / n_genes`` when None.
    random_share : float, default=0.2
    """

    def __init__(self, scores, prob_var=None, random_share=0.2):
        super().__init__(prob=1.0, prob_var=prob_var)
        self.scores = scores
        self.random_share = float(random_share)

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        X = np.asarray(X, dtype=bool)
        L = problem.n_var
        p = float(np.mean(self.get_prob_var(problem, size=1)))
        scores = self.scores.scores
        order = np.argsort(-scores, kind="stable")  # strongest first
        Xp = X.copy()
        for i in range(len(X)):
            x = Xp[i]
            for _ in range(max(1, int(random_state.binomial(L, p)))):
                if random_state.random() < self.random_share:
                    j = int(random_state.integers(L))
                    if not (x[j] and x.sum() == 1):
                        x[j] = ~x[j]
                    continue
                switch_off = random_state.random() < 0.5
                if switch_off and x.sum() > 1:
                    pool = order[x[order]][::-1]  # active, weakest first
                elif not x.all():
                    pool = order[~x[order]]  # inactive, strongest first
                else:
                    pool = order[x[order]][::-1]
                j = pool[random_state.choice(len(pool), p=_rank_weights(len(pool)))]
                x[j] = ~x[j]
        return Xp


def informed_operators(data, dense_params, *, init, mutation):
    """The first population's sampling and the mutation's gene scores of a fit.

    Parameters
    ----------
    data : ObjectiveContext
        The search's data; its training fold is what the path is fitted on,
        its ``config`` the heads' encoding and classes.
    dense_params : list of (weight, bias)
        The dense head trained on that fold (the estimator's ``baseline_``).
    init : {"informed", "random"}
    mutation : {"informed", "bitflip"}

    Returns
    -------
    sampling : Sampling or None
        None for the papers' random initialisation.
    scores : GeneScores or None
        None for bit-flip mutation.
    """
    config = data.config
    feature_scale = None
    if config.encoding == "features":
        X = np.asarray(data.X_train, dtype=np.float64)
        w = data.w_train
        w = np.ones(len(X)) if w is None else np.asarray(w, dtype=np.float64)
        mean = (w @ X) / w.sum()
        feature_scale = np.sqrt((w @ (X - mean) ** 2) / w.sum())
    dense = gene_importance(dense_params, config.encoding, feature_scale)
    sampling = None
    if init == "informed":
        rankings = [dense]
        if config.encoding == "features":
            rankings.insert(0, group_l1_ranking(
                data.X_train, data.y_train, config.n_classes, data.w_train))
        sampling = InformedSampling(rankings, INIT_RANDOM_SHARE)
    scores = None
    if mutation == "informed":
        scores = GeneScores(dense_params, config.encoding, feature_scale)
    return sampling, scores
