"""The sparse head: ``features -> sparse FC(ReLU) [-> sparse FC(ReLU)] -> linear``.

A genome prunes the head. With the ``"features"`` encoding gene ``j`` keeps or
removes every connection from backbone feature ``j`` into the first sparse
layer (MO-EvoPruneDeepTL); with the ``"neurons"`` encoding gene ``k`` keeps or
removes neuron ``k`` of a sparse hidden layer, layer after layer
(EvoPruneDeepTL).

:class:`HeadSpec` is the one owner of the head's architecture: the genome's
length and its masks, the initial weights and the forward pass. The engines,
the front, the search and the objectives ask it instead of unpacking
``encoding``, ``n_features`` and ``hidden_layer_sizes`` themselves.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["HeadSpec", "MaskedHead", "head_forward"]


def _affine(x, w, b):
    """``x @ w + b``, one candidate or a stack of them.

    A stack (``w`` of shape ``(G, in, out)``) is one batched product; a
    single head on a matrix one ``addmm``, which is exactly what
    :func:`torch.nn.functional.linear` runs for a matrix input (so an
    :class:`torch.nn.Linear` layer, passed as ``weight.T``, computes the
    same bits either way). Other input shapes go through ``linear`` itself.
    """
    if w.dim() == 3:
        return torch.baddbmm(b, x, w)
    if x.dim() == 2:
        return torch.addmm(b, x, w)
    return torch.nn.functional.linear(x, w.T, b)


def head_forward(x, layers, input_mask=None, unit_masks=None, hidden=False):
    """The head's forward pass: the one place it is written.

    Parameters
    ----------
    x : Tensor of shape (n, in) or (G, n, in)
        Inputs (a leading dimension stacks ``G`` candidates).
    layers : list of (weight, bias)
        ``weight`` of shape ``(in, out)`` or ``(G, in, out)``; ``bias`` of
        shape ``(out,)`` or ``(G, 1, out)``.
    input_mask : Tensor, default=None
        0/1 multiplier of the inputs (a pruned feature reads zero).
    unit_masks : list of Tensor, default=None
        0/1 multiplier of each hidden layer's activations (a pruned, or
        padding, unit outputs zero).
    hidden : bool, default=False
        Whether ``layers`` are hidden layers only (each followed by its ReLU
        and mask): the masked activations of the last one, instead of logits.

    Returns
    -------
    out : Tensor of shape (n, out) or (G, n, out)
        Logits, or activations when ``hidden``.
    """
    if input_mask is not None:
        x = x * input_mask
    last = len(layers) if hidden else len(layers) - 1
    for layer, (w, b) in enumerate(layers):
        x = _affine(x, w, b)
        if layer < last:
            x = torch.relu(x)
            if unit_masks is not None:
                x = x * unit_masks[layer]
    return x


def _init_parameters(seed, sizes):
    gen = torch.Generator().manual_seed(int(seed))
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        w = (torch.rand(fan_in, fan_out, generator=gen) * 2 - 1) * bound
        b = (torch.rand(fan_out, generator=gen) * 2 - 1) * bound
        params.append((w, b))
    return params


@dataclass(frozen=True)
class HeadSpec:
    """The architecture of the head and how a genome prunes it.

    Parameters
    ----------
    encoding : {"features", "neurons"}
        What a gene keeps or removes: a backbone feature or a hidden neuron.
    n_features : int
        Backbone feature dimension.
    hidden_layer_sizes : tuple of int
        Sizes of the sparse hidden layers (``()`` is a linear head).
    n_classes : int
        Number of output classes.
    """

    encoding: str
    n_features: int
    hidden_layer_sizes: tuple
    n_classes: int

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "n_features", int(self.n_features))
        set_(self, "hidden_layer_sizes", tuple(int(h) for h in self.hidden_layer_sizes))
        set_(self, "n_classes", int(self.n_classes))

    @property
    def sizes(self):
        """Layer widths ``[n_features, *hidden_layer_sizes, n_classes]``."""
        return [self.n_features, *self.hidden_layer_sizes, self.n_classes]

    @property
    def n_genes(self):
        """Genome length: features, or hidden neurons, of the head."""
        if self.encoding == "features":
            return self.n_features
        return int(sum(self.hidden_layer_sizes))

    def masks(self, genome):
        """Split a genome into a feature mask and one neuron mask per hidden layer.

        Parameters
        ----------
        genome : array-like of bool, shape (n_genes,)

        Returns
        -------
        feature_mask : ndarray of bool, shape (n_features,)
        neuron_masks : list of ndarray of bool
        """
        genome = np.asarray(genome, dtype=bool)
        if self.encoding == "features":
            return genome, [np.ones(h, dtype=bool) for h in self.hidden_layer_sizes]
        masks, start = [], 0
        for h in self.hidden_layer_sizes:
            masks.append(genome[start : start + h])
            start += h
        return np.ones(self.n_features, dtype=bool), masks

    def unit_sets(self, genome):
        """Index sets of kept units: input features, then each hidden layer.

        Parameters
        ----------
        genome : array-like of bool, shape (n_genes,)

        Returns
        -------
        sets : list of ndarray of int
        """
        fmask, nmasks = self.masks(genome)
        return [np.flatnonzero(fmask)] + [np.flatnonzero(m) for m in nmasks]

    def initial_parameters(self, seed):
        """Initial weights of the dense head, as :class:`torch.nn.Linear` draws them.

        Weights and biases are uniform in ``±1/sqrt(fan_in)`` with the
        *unpruned* fan-in, so a pruned head starts exactly as the masked
        dense head would. Drawn from a private generator: the result
        depends on ``seed`` only.

        Parameters
        ----------
        seed : int

        Returns
        -------
        params : list of (weight, bias)
            ``weight`` has shape ``(fan_in, fan_out)``.
        """
        return _init_parameters(seed, self.sizes)

    def compact(self, sets, params):
        """The rows and columns of full-size ``params`` that ``sets`` keep.

        Parameters
        ----------
        sets : list of ndarray of int
            From :meth:`unit_sets`.
        params : list of (weight, bias)
            Full size, ``weight`` of shape ``(in, out)``.

        Returns
        -------
        params : list of (weight, bias)
            Weights of shape ``(len(sets[l]), len(sets[l + 1]))`` (all
            classes for the output layer); new tensors.
        """
        out = []
        for layer, (w, b) in enumerate(params):
            rows = torch.as_tensor(sets[layer])
            last = layer == len(params) - 1
            cols = torch.arange(self.n_classes) if last else torch.as_tensor(sets[layer + 1])
            out.append((w[rows][:, cols].clone(), b[cols].clone()))
        return out

    def expand(self, sets, params):
        """Full-size parameters, zero where pruned, from compact ones.

        Parameters
        ----------
        sets : list of ndarray of int
            From :meth:`unit_sets`.
        params : list of (weight, bias)
            Compact, as :meth:`compact` gives.

        Returns
        -------
        params : list of (weight, bias)
            On the CPU, ``weight`` of shape ``(in, out)``.
        """
        widths = self.sizes
        full = []
        for layer, (w_c, b_c) in enumerate(params):
            rows = sets[layer]
            cols = sets[layer + 1] if layer + 1 < len(sets) else np.arange(self.n_classes)
            w = torch.zeros(widths[layer], widths[layer + 1])
            b = torch.zeros(widths[layer + 1])
            w[np.ix_(rows, cols)] = torch.as_tensor(w_c).cpu()
            b[cols] = torch.as_tensor(b_c).cpu()
            full.append((w, b))
        return full

    forward = staticmethod(head_forward)

    def logits(self, genome, params, features, device="cpu"):
        """Logits of the masked head ``(genome, params)``, float32, no gradient.

        The arithmetic of :class:`MaskedHead`: same layout, same products.

        Parameters
        ----------
        genome : array-like of bool, shape (n_genes,)
        params : list of (weight, bias)
            Full size, ``weight`` of shape ``(in, out)``.
        features : array-like or Tensor of shape (n_samples, n_features)
        device : str, default="cpu"

        Returns
        -------
        logits : Tensor of shape (n_samples, n_classes) on ``device``
        """
        fmask, nmasks = self.masks(genome)
        X = features if isinstance(features, torch.Tensor) else torch.as_tensor(
            np.asarray(features, dtype=np.float32))
        x = X.to(device=device, dtype=torch.float32)

        def mask(m):
            return torch.as_tensor(np.asarray(m, dtype=np.float32), device=device)

        # Stored as an nn.Linear stores it, (out, in) contiguous, read transposed.
        layers = [(torch.as_tensor(w).T.to(device=device, dtype=torch.float32).contiguous().T,
                   torch.as_tensor(b).to(device=device, dtype=torch.float32))
                  for w, b in params]
        with torch.no_grad():
            return head_forward(x, layers, mask(fmask), [mask(m) for m in nmasks])

    def module(self, genome=None, params=None, init_seed=None):
        """The head as a :class:`MaskedHead` pruned by ``genome``.

        Parameters
        ----------
        genome : array-like of bool, shape (n_genes,), default=None
            None keeps every gene.
        params : list of (weight, bias), default=None
            Trained parameters to load (full size).
        init_seed : int, default=None
            Seed of the initial weights (see :class:`MaskedHead`).

        Returns
        -------
        head : MaskedHead
        """
        genome = np.ones(self.n_genes, dtype=bool) if genome is None else genome
        fmask, nmasks = self.masks(genome)
        head = MaskedHead(self.n_features, self.hidden_layer_sizes, self.n_classes,
                          feature_mask=fmask, neuron_masks=nmasks, init_seed=init_seed)
        if params is not None:
            head.load_parameters(params)
        return head


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
        Seed of the initial weights (:meth:`HeadSpec.initial_parameters`);
        torch's default init when None.

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
            params = _init_parameters(init_seed, sizes)
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

    def layer_parameters(self):
        """The layers as :func:`head_forward` reads them.

        Returns
        -------
        layers : list of (weight, bias)
            ``weight`` of shape ``(in, out)`` (a view of the layer's own).
        """
        return [(layer.weight.T, layer.bias) for layer in self.layers]

    def unit_masks(self):
        """The 0/1 masks of the hidden layers' units, in order.

        Returns
        -------
        masks : list of torch.Tensor
        """
        return [self.neuron_mask(i) for i in range(self.n_hidden)]

    def forward(self, X, sample_weight=None):
        # ``sample_weight`` arrives when skorch is fit on ``{"X": ..,
        # "sample_weight": ..}``; it weights the loss, not the forward pass.
        x = X.to(self.layers[0].weight.dtype)
        return head_forward(x, self.layer_parameters(), self.feature_mask, self.unit_masks())
