"""Export a front member as a plain torch module with the pruning made physical.

A :class:`~evoprune_sklearn.MaskedHead` multiplies pruned features and
neurons by zero, so it costs as much as the dense head. The export keeps only
what the genome switched on: the first ``Linear`` reads only the kept
features, every hidden ``Linear`` has only the kept neurons. Its logits equal
the masked head's (up to float rounding) and it is smaller by exactly the
pruned weights.

The modules are plain eager PyTorch (no TorchScript tracing or scripting,
deprecated in this torch), so they leave Python through the current
exporters: :func:`torch.export.export` and
``torch.onnx.export(..., dynamo=True)``.
"""

import copy
import warnings

import numpy as np
import torch
from torch import nn

from ._images import resize_batch

__all__ = ["CompactHead", "PrunedNetwork", "check_member_index", "compact_head", "export_member"]


def _n_parameters(module):
    return int(sum(p.numel() for p in module.parameters()))


def _linear(weight, bias):
    out_f, in_f = weight.shape
    with warnings.catch_warnings():
        # nn.Linear warns when initialising a zero-size weight (a layer whose
        # neurons were all pruned); its values are overwritten right after.
        warnings.simplefilter("ignore", UserWarning)
        layer = nn.Linear(in_f, out_f)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer


class CompactHead(nn.Module):
    """A pruned head with pruned features and neurons removed.

    Takes the full backbone feature vector and returns class logits (apply
    ``torch.softmax(..., dim=1)`` for probabilities).

    Parameters
    ----------
    feature_index : array-like of int
        Backbone features the first layer reads, in increasing order.
    layers : list of torch.nn.Linear
        Hidden layers (ReLU after each) followed by the output layer.
    n_dense_parameters : int
        Parameters of the unpruned head, for :meth:`summary`.
    n_features_in : int
        Width of the feature vector the head takes.

    Attributes
    ----------
    n_features_in : int
        Width of the feature vector the head takes.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from evoprune_sklearn import CompactHead
    >>> head = CompactHead([0, 2], [nn.Linear(2, 4), nn.Linear(4, 3)],
    ...                    n_dense_parameters=31, n_features_in=4)
    >>> head(torch.zeros(5, 4)).shape
    torch.Size([5, 3])
    >>> head.summary()["n_parameters"]
    27
    """

    def __init__(self, feature_index, layers, n_dense_parameters, n_features_in):
        super().__init__()
        self.register_buffer(
            "feature_index", torch.as_tensor(np.asarray(feature_index), dtype=torch.long)
        )
        self.hidden = nn.ModuleList(layers[:-1])
        self.output = layers[-1]
        self.n_dense_parameters = int(n_dense_parameters)
        self.n_features_in = int(n_features_in)

    def forward(self, features):
        x = features.index_select(1, self.feature_index)
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.output(x)

    def summary(self):
        """Parameter counts of the compact head against the dense one.

        Returns
        -------
        summary : dict
            ``n_parameters``, ``n_dense_parameters``, ``saving`` (fraction of
            the dense head's parameters removed) and ``layers`` (the
            ``(in, out)`` size of every ``Linear``).
        """
        n = _n_parameters(self)
        return {
            "n_parameters": n,
            "n_dense_parameters": self.n_dense_parameters,
            "saving": 1.0 - n / self.n_dense_parameters,
            "layers": [(l.in_features, l.out_features) for l in [*self.hidden, self.output]],
        }


class PrunedNetwork(nn.Module):
    """Frozen backbone plus compact head: ``[0, 1]`` images in, logits out.

    Parameters
    ----------
    backbone : torch.nn.Module
        Maps normalised-inside ``[0, 1]`` images at ``input_size`` to features
        (:meth:`Backbone.unit_image_model`).
    head : CompactHead
    input_size : int
        Side length the images are resized to, as in ``fit``.

    Notes
    -----
    ``forward`` takes float images ``(n, 3, H, W)`` or ``(n, 1, H, W)`` in
    ``[0, 1]`` of any size; they are resized exactly as the estimator resizes
    them (antialiased bilinear when shrinking) before the backbone.
    """

    def __init__(self, backbone, head, input_size):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.input_size = int(input_size)

    def forward(self, images):
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        images = resize_batch(images, self.input_size)
        return self.head(self.backbone(images))

    def summary(self):
        """Parameter counts: the head's (see :meth:`CompactHead.summary`) plus
        ``n_backbone_parameters`` and ``n_total_parameters``."""
        out = self.head.summary()
        out["n_backbone_parameters"] = _n_parameters(self.backbone)
        out["n_total_parameters"] = _n_parameters(self)
        return out


def compact_head(masked_head):
    """The :class:`CompactHead` computing what a MaskedHead computes.

    Parameters
    ----------
    masked_head : MaskedHead
        A trained masked head (``member.module()``).

    Returns
    -------
    head : CompactHead
        On the CPU, in eval mode.

    Examples
    --------
    >>> import torch
    >>> from evoprune_sklearn import MaskedHead
    >>> from evoprune_sklearn._export import compact_head
    >>> masked = MaskedHead(6, (4,), 3, feature_mask=[1, 0, 1, 0, 0, 1], init_seed=0)
    >>> head = compact_head(masked)
    >>> X = torch.randn(5, 6)
    >>> torch.allclose(head(X), masked(X), atol=1e-6), head.summary()["layers"]
    (True, [(3, 4), (4, 3)])
    """
    layers = [l for l in masked_head.layers]
    keep = [torch.nonzero(masked_head.feature_mask.cpu() > 0).flatten()]
    for i in range(masked_head.n_hidden):
        keep.append(torch.nonzero(masked_head.neuron_mask(i).cpu() > 0).flatten())
    keep.append(torch.arange(layers[-1].out_features))
    new_layers = []
    with torch.no_grad():
        for i, layer in enumerate(layers):
            w = layer.weight.detach().cpu().float()
            b = layer.bias.detach().cpu().float()
            new_layers.append(
                _linear(w[keep[i + 1]][:, keep[i]].clone(), b[keep[i + 1]].clone())
            )
    dense = _n_parameters(masked_head)
    head = CompactHead(
        keep[0].numpy(), new_layers, n_dense_parameters=dense,
        n_features_in=layers[0].in_features,
    )
    return head.eval()


def check_member_index(member, n_members):
    """Validate ``member=`` of ``export_model`` (an int index into the front)."""
    if isinstance(member, bool) or not isinstance(member, (int, np.integer)):
        raise TypeError(f"member must be an int index or None, got {member!r}.")
    if not 0 <= member < n_members:
        raise ValueError(
            f"member={member} but the Pareto front has {n_members} member(s) "
            f"(valid indices 0..{n_members - 1})."
        )
    return int(member)


def export_member(masked_head, backbone=None, head_only=False):
    """A member's head, compacted, alone or behind its frozen backbone.

    The work behind :meth:`EvoPruneClassifier.export_model`.

    Parameters
    ----------
    masked_head : MaskedHead
        The member's trained head.
    backbone : Backbone or None
        The estimator's backbone (None for feature input).
    head_only : bool, default=False
        Return the :class:`CompactHead` alone.

    Returns
    -------
    model : CompactHead or PrunedNetwork
    """
    if not isinstance(head_only, (bool, np.bool_)):
        raise TypeError(f"head_only must be a bool, got {head_only!r}.")
    if not head_only and backbone is None:
        raise ValueError(
            "head_only=False needs a backbone, but this estimator was fitted "
            "with backbone=None (features in); use head_only=True."
        )
    head = compact_head(masked_head)
    if head_only:
        return head
    body = copy.deepcopy(backbone.unit_image_model()).cpu().eval()
    for p in body.parameters():
        p.requires_grad_(False)
    return PrunedNetwork(body, head, backbone.input_size).eval()
