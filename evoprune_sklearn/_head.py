"""The sparse head: ``features -> sparse FC(ReLU) [-> sparse FC(ReLU)] -> linear``.

A genome prunes the head. With the ``"features"`` encoding gene ``j`` keeps or
removes every connection from backbone feature ``j`` into the first sparse
layer (MO-EvoPruneDeepTL); with the ``"neurons"`` encoding gene ``k`` keeps or
removes neuron ``k`` of a sparse hidden layer, layer after layer
(EvoPruneDeepTL).
"""

import math

import numpy as np
import torch
from torch import nn

__all__ = ["MaskedHead", "n_genes", "genome_masks", "init_head_parameters"]


def n_genes(encoding, n_features, hidden_layer_sizes):
    """Genome length for an encoding."""
    if encoding == "features":
        return int(n_features)
    return int(sum(hidden_layer_sizes))


def genome_masks(genome, encoding, n_features, hidden_layer_sizes):
    """Split a genome into a feature mask and one neuron mask per hidden layer.

    Returns
    -------
    feature_mask : ndarray of bool, shape (n_features,)
    neuron_masks : list of ndarray of bool
    """
    genome = np.asarray(genome, dtype=bool)
    if encoding == "features":
        return genome, [np.ones(h, dtype=bool) for h in hidden_layer_sizes]
    masks, start = [], 0
    for h in hidden_layer_sizes:
        masks.append(genome[start : start + h])
        start += h
    return np.ones(n_features, dtype=bool), masks


def init_head_parameters(seed, n_features, hidden_layer_sizes, n_classes):
    """Initial weights of one head, as :class:`torch.nn.Linear` draws them.

    Weights and biases are uniform in ``±1/sqrt(fan_in)`` with the *unpruned*
    fan-in, so a pruned head starts exactly as the masked dense head would.
    Drawn from a private generator: the result depends on ``seed`` only.

    Returns
    -------
    params : list of (weight, bias)
        ``weight`` has shape ``(fan_in, fan_out)``.
    """
    gen = torch.Generator().manual_seed(int(seed))
    sizes = [n_features, *hidden_layer_sizes, n_classes]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        w = (torch.rand(fan_in, fan_out, generator=gen) * 2 - 1) * bound
        b = (torch.rand(fan_out, generator=gen) * 2 - 1) * bound
        params.append((w, b))
    return params


class MaskedHead(nn.Module):
    """A pruned head whose pruning is a fixed mask (the skorch module).

    Parameters
    ----------
    n_features : int
        Backbone feature dimension.
    hidden_layer_sizes : tuple of int
        Sizes of the sparse hidden layers.
    n_classes : int
        Number of output classes.
    feature_mask : array-like of bool, shape (n_features,), default=None
        Which backbone features feed the first sparse layer (all when None).
    neuron_masks : list of array-like of bool, default=None
        Which neurons of each hidden layer are kept (all when None).
    init_seed : int, default=None
        Seed of :func:`init_head_parameters`; torch's default init when None.

    Examples
    --------
    >>> import torch
    >>> from evoprune_sklearn import MaskedHead
    >>> head = MaskedHead(8, (4,), 3, feature_mask=[1, 0, 1, 0, 1, 0, 1, 0])
    >>> head(torch.zeros(2, 8)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        n_features,
        hidden_layer_sizes=(512,),
        n_classes=2,
        feature_mask=None,
        neuron_masks=None,
        init_seed=None,
    ):
        super().__init__()
        hidden_layer_sizes = tuple(int(h) for h in hidden_layer_sizes)
        sizes = [int(n_features), *hidden_layer_sizes, int(n_classes)]
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])
        )
        if feature_mask is None:
            feature_mask = np.ones(n_features, dtype=bool)
        if neuron_masks is None:
            neuron_masks = [np.ones(h, dtype=bool) for h in hidden_layer_sizes]
        self.register_buffer(
            "feature_mask", torch.as_tensor(np.asarray(feature_mask, dtype=np.float32))
        )
        for i, m in enumerate(neuron_masks):
            self.register_buffer(
                f"neuron_mask_{i}", torch.as_tensor(np.asarray(m, dtype=np.float32))
            )
        self.n_hidden = len(hidden_layer_sizes)
        if init_seed is not None:
            params = init_head_parameters(
                init_seed, n_features, hidden_layer_sizes, n_classes
            )
            # Pruned weights start (and, having no gradient, stay) at zero, so
            # an L2 penalty or a quasi-Newton history sees exactly the
            # parameters of the compact head.
            keep = [np.asarray(feature_mask, dtype=bool)] + [
                np.asarray(m, dtype=bool) for m in neuron_masks] + [np.ones(n_classes, bool)]
            params = [
                (w * torch.as_tensor(np.outer(keep[i], keep[i + 1]), dtype=w.dtype),
                 b * torch.as_tensor(keep[i + 1], dtype=b.dtype))
                for i, (w, b) in enumerate(params)
            ]
            self.load_parameters(params)

    def load_parameters(self, params):
        """Copy trained parameters into the layers.

        Parameters
        ----------
        params : list of (weight, bias)
            One pair a layer, weights of shape ``(in, out)``.
        """
        with torch.no_grad():
            for layer, (w, b) in zip(self.layers, params):
                layer.weight.copy_(torch.as_tensor(w).T)
                layer.bias.copy_(torch.as_tensor(b))

    def neuron_mask(self, i):
        """The 0/1 mask of hidden layer ``i``'s units.

        Parameters
        ----------
        i : int
            Index of the hidden layer.

        Returns
        -------
        mask : torch.Tensor of shape (n_units,)
        """
        return getattr(self, f"neuron_mask_{i}")

    def forward(self, X, sample_weight=None):
        # ``sample_weight`` arrives when skorch is fit on ``{"X": ..,
        # "sample_weight": ..}``; it weights the loss, not the forward pass.
        x = X.to(self.layers[0].weight.dtype) * self.feature_mask
        for i in range(self.n_hidden):
            x = torch.relu(self.layers[i](x)) * self.neuron_mask(i)
        return self.layers[-1](x)
