"""Data, genomes and settings shared by the engine tests."""

import numpy as np

from evoprune_sklearn._engines import TrainingConfig, train_heads

N_FEATURES, N_CLASSES = 48, 3


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(N_CLASSES, N_FEATURES))
    y = rng.integers(N_CLASSES, size=n)
    X = rng.normal(size=(n, N_FEATURES)) + 0.6 * centers[y]
    return X.astype(np.float32), y


def make_genomes(n, length, seed):
    """Densities spread over (0, 1], as the search's first population."""
    rng = np.random.default_rng(seed)
    G = rng.random((n, length)) < rng.uniform(0.05, 1.0, size=(n, 1))
    G[~G.any(axis=1), 0] = True
    return G


def make_config(**kw):
    base = dict(
        encoding="features", n_features=N_FEATURES, hidden_layer_sizes=(16,),
        n_classes=N_CLASSES, lr=0.02, max_epochs=5, batch_size=50, patience=3,
        init_seed=7, shuffle_seed=11,
    )
    base.update(kw)
    return TrainingConfig(**base)


def lbfgs_config(**kw):
    return make_config(**{"solver": "lbfgs", "alpha": 1.0, "max_iter": 50,
                          "hidden_layer_sizes": (), **kw})


def accuracy(heads, X, y):
    return (heads.logits(X).argmax(-1).numpy() == y[None]).mean(axis=1)


def against_skorch(split, config, weighted):
    """This engine's heads and skorch's reference heads on 6 genomes of ``split``,
    with their validation accuracies (both above chance by a margin)."""
    X, y, X_val, y_val = split
    genomes = make_genomes(6, X.shape[1], seed=3)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y)) if weighted else None
    fast = train_heads(genomes, X, y, config, sample_weight=w)
    ref = train_heads(genomes, X, y, config, engine="skorch", sample_weight=w)
    acc_fast, acc_ref = accuracy(fast, X_val, y_val), accuracy(ref, X_val, y_val)
    assert acc_ref.mean() > 0.6 and acc_fast.mean() > 0.6
    return fast, ref, acc_fast, acc_ref
