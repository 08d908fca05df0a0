"""Gene values by pruning: what a member loses when genes are pruned.

The game is the member itself. A coalition is a set of genes kept; a gene
outside it is switched off *exactly as pruning switches it off*: its feature
is multiplied by zero on its way into the head (``"features"`` encoding) or
its neuron's activation is (``"neurons"``), on top of the member's own
genome. shap's :class:`~shap.PermutationExplainer` computes the Shapley
values of that game with antithetic permutations; this module only supplies
the masker and the batched model. Its values add up exactly to ``f(member) -
f(member with every gene pruned)``.

Cost: the masker supports shap's *delta masking*, so the
``2 * n_active + 1`` coalitions of one permutation reach the model as one
batch of cached backbone features (no backbone pass); genes already off in
every explained member are declared invariant and skipped by shap.
"""

import contextlib

import numpy as np
import shap
import torch

from ._head import head_forward

__all__ = ["PRUNING_PERMUTATIONS", "PruningMasker", "pruned_log_proba", "pruning_gene_values"]

#: Antithetic permutations per explained sample (each costs 2 * n_active + 1
#: head evaluations on cached features).
PRUNING_PERMUTATIONS = 4
_ROWS_PER_BATCH = 4096


class PruningMasker(shap.maskers.Masker):
    """shap masker whose "absent" means "pruned".

    A row handed to the explainer is one sample's backbone features. For a
    mask over the genes it returns that row together with the mask; the
    model (:func:`pruned_log_proba`) runs the heads with their genomes ANDed
    with the mask.

    Parameters
    ----------
    active : ndarray of bool, shape (n_genes,)
        Genes on in at least one explained member. The others cannot change
        the output and are reported to shap as invariant.

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn._pruning_shap import PruningMasker
    >>> masker = PruningMasker(np.array([True, False, True]))
    >>> x, mask = masker(np.array([True, True, False]), np.ones(4, dtype=np.float32))
    >>> x.shape, mask.tolist()
    ((1, 4), [[1.0, 1.0, 0.0]])
    """

    supports_delta_masking = True
    immutable_outputs = True

    def __init__(self, active):
        self.active = np.asarray(active, dtype=bool)
        self.shape = (1, self.active.size)
        self.clustering = None

    def __call__(self, mask, x):
        x = np.asarray(x, dtype=np.float32)
        mask = np.asarray(mask)
        if np.issubdtype(mask.dtype, np.integer):  # shap's delta masking
            full = self._delta_to_full(mask)
            rows = np.broadcast_to(x, (len(full), x.size))
            return (rows, full.astype(np.float32)), np.ones((len(full), 1), dtype=bool)
        full = self._standardize_mask(mask, x).astype(np.float32).reshape(1, -1)
        return x.reshape(1, -1), full

    def _delta_to_full(self, deltas):
        """shap's delta-mask encoding -> one boolean mask per evaluation.

        Every entry flips one gene (``i``, or ``-i - 1`` for "flip and keep
        going"); a non-negative entry (or the no-op code) closes an
        evaluation; the first evaluation starts from the empty coalition.
        """
        from shap.utils import MaskedModel

        noop = MaskedModel.delta_mask_noop_value
        closes = deltas >= 0
        evaluation = np.concatenate([[0], np.cumsum(closes)[:-1]])
        gene = np.where(deltas < 0, -deltas - 1, deltas)
        flips = deltas != noop
        flipped = np.zeros((int(closes.sum()), self.active.size), dtype=np.uint8)
        np.bitwise_xor.at(flipped, (evaluation[flips], gene[flips]), 1)
        return np.bitwise_xor.accumulate(flipped, axis=0).view(bool)

    def invariants(self, x):
        return ~self.active[None, :]

    def mask_shapes(self, x):
        return [(self.active.size,)]


def pruned_log_proba(heads, features, gene_masks, encoding):
    """Log-probabilities of the heads with extra genes pruned by ``gene_masks``.

    Exactly the arithmetic of :class:`~evoprune_sklearn.MaskedHead` with the
    genome ANDed with each mask; several heads vote softly (log of the mean
    probability).

    Parameters
    ----------
    heads : list of MaskedHead
    features : Tensor of shape (n, n_features)
    gene_masks : Tensor of shape (n, n_genes)
        1 keeps a gene (if the member keeps it), 0 prunes it.
    encoding : {"features", "neurons"}

    Returns
    -------
    log_proba : Tensor of shape (n, n_classes)
    """
    out = []
    for head in heads:
        # The member's masks times the extra ones (0/1 factors: the products
        # are exact, so this is the pruned head's own arithmetic).
        feature_mask, unit_masks = head.feature_mask, head.unit_masks()
        if encoding == "features":
            feature_mask = feature_mask * gene_masks
        else:
            ends = np.cumsum([len(m) for m in unit_masks])
            unit_masks = [m * gene_masks[:, end - len(m):end]
                          for m, end in zip(unit_masks, ends)]
        logits = head_forward(features.to(head.layers[0].weight.dtype),
                              head.layer_parameters(), feature_mask, unit_masks)
        out.append(torch.log_softmax(logits, dim=1))
    return torch.logsumexp(torch.stack(out), dim=0) - np.log(len(heads))


@contextlib.contextmanager
def _private_global_seed():
    # shap's PermutationExplainer seeds and draws from numpy's global generator
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)


def pruning_gene_values(heads, feats, targets, encoding, active, seed,
                        n_permutations=PRUNING_PERMUTATIONS):
    """Shapley values of pruning each gene, by ``shap.PermutationExplainer``.

    Parameters
    ----------
    heads : list of MaskedHead
        The explained member(s), in eval mode.
    feats : Tensor of shape (n, n_features)
        Cached backbone features of the explained samples.
    targets : ndarray of int, shape (n,)
        Encoded class explained for each sample.
    encoding : {"features", "neurons"}
    active : ndarray of bool, shape (n_genes,)
        Genes on in at least one of ``heads``.
    seed : int
        Seeds the permutations.
    n_permutations : int, default=PRUNING_PERMUTATIONS

    Returns
    -------
    values : ndarray of shape (n, n_genes)
    base_values : ndarray of shape (n,)
        Target log-probability with every gene pruned.
    """
    device = feats.device

    def model(features, masks):
        result = []
        with torch.no_grad():
            for start in range(0, len(features), _ROWS_PER_BATCH):
                batch = slice(start, start + _ROWS_PER_BATCH)
                f = torch.as_tensor(np.ascontiguousarray(features[batch]), device=device)
                m = torch.as_tensor(masks[batch], device=device)
                result.append(pruned_log_proba(heads, f, m, encoding).double().cpu())
        return torch.cat(result).numpy()

    n_active = int(np.count_nonzero(active))
    masker = PruningMasker(active)
    with _private_global_seed():
        explainer = shap.explainers.Permutation(model, masker, seed=int(seed))
        result = explainer(
            feats.detach().cpu().numpy(),
            max_evals=int(n_permutations) * (2 * n_active + 1),
            silent=True,
        )
    values = np.asarray(result.values, dtype=np.float64)  # (n, n_genes, n_classes)
    base = np.asarray(result.base_values, dtype=np.float64)  # (n, n_classes)
    rows = np.arange(len(targets))
    return values[rows, :, targets], base[rows, targets]
