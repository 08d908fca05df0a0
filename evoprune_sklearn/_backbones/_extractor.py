"""The frozen feature extractor a backbone becomes, and state_dict files.

:class:`Backbone` is what :func:`~evoprune_sklearn.get_backbone` returns and
``EvoPruneClassifier.backbone_`` holds: the network frozen, with its
preprocessing, extracting features once per fit in batches under
:func:`torch.inference_mode`.

Extraction runs near the machine's limit: images and convolution weights in
:data:`torch.channels_last` memory format, batch norms folded into the
convolutions where the module offers ``fused()`` (the default
``efficientnet_lite0`` does; :func:`inference_module`), the features equal
to those of the plain NCHW forward within float32 rounding
(``benchmarks/bench_photos.py`` measures the gain), optionally under bfloat16 autocast
(``precision="bf16"``) where the hardware computes in bfloat16 natively,
and, with a feature store (``memory=``), only for images not seen before.
"""

import contextlib
import functools
import itertools
import os
import weakref

import numpy as np
import torch
from torch import nn

from .._feature_cache import CHUNK_ROWS, open_store
from .._images import Images, resize_batch
from .._parallel import deterministic_arithmetic
from .._safe_load import safe_load

__all__ = ["PRECISIONS", "Backbone", "apply_state_dict", "check_precision",
           "fold_batchnorm", "inference_module", "load_state_dict_file", "native_bf16",
           "pooled_input_map"]

PRECISIONS = ("fp32", "bf16")


@functools.cache
def _cpu_bf16_flags():
    """Whether the CPU computes in bfloat16 natively (AVX512-BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:  # not Linux: no way to tell, so no native bfloat16
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def native_bf16(device="cpu"):
    """Whether ``device`` computes in bfloat16 natively.

    CPUs with AVX512-BF16 or AMX instructions (read from ``/proc/cpuinfo``),
    and CUDA devices that support bfloat16. Elsewhere bfloat16 is emulated,
    slower than float32.

    Parameters
    ----------
    device : str or torch.device, default="cpu"

    Returns
    -------
    bool
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return _cpu_bf16_flags() and torch.backends.mkldnn.is_available()
    return False


def fold_batchnorm(conv, bn):
    """Fold an eval-mode batch norm into the convolution it follows, in place.

    ``bn(conv(x)) == conv'(x)``: the convolution's output channels are
    scaled by ``gamma / sqrt(var + eps)`` and given the bias
    ``(b - mean) * gamma / sqrt(var + eps) + beta``. The caller then
    replaces ``bn`` by an identity.

    Parameters
    ----------
    conv : torch.nn.Conv2d
        Its ``forward`` must pass ``self.bias`` to the convolution.
    bn : torch.nn.BatchNorm2d
    """
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.weight.mul_(scale.reshape(-1, *([1] * (conv.weight.dim() - 1))))
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias,
                                 requires_grad=False)


# module -> (stamp of its tensors, its fused copy)
_FUSED = weakref.WeakKeyDictionary()


def inference_module(module):
    """The module :meth:`Backbone.extract` runs for ``module``.

    ``module.fused()`` where the module offers it (an equivalent module
    for inference, e.g. batch norms folded into convolutions, as the
    default ``efficientnet_lite0`` does), made once and kept while
    ``module``'s tensors are unchanged; ``module`` itself otherwise.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    module : torch.nn.Module
    """
    fuse = getattr(module, "fused", None)
    if fuse is None:
        return module
    # a tensor replaced or changed in place (load_state_dict copies into the
    # same storage): another address or sum, a new copy (a few ms, against
    # tens for a new copy)
    with torch.no_grad():
        stamp = tuple((t.data_ptr(), float(t.sum(dtype=torch.float64))) for t in
                      itertools.chain(module.parameters(), module.buffers()))
    cached = _FUSED.get(module)
    if cached is None or cached[0] != stamp:
        cached = (stamp, fuse())
        _FUSED[module] = cached
    return cached[1]


def check_precision(precision, device="cpu", name="precision"):
    """Refuse ``precision="bf16"`` where ``device`` would only emulate it.

    Parameters
    ----------
    precision : {"fp32", "bf16"}
    device : str or torch.device, default="cpu"
    name : str, default="precision"
        The parameter's name in messages.

    Raises
    ------
    ValueError
    """
    if precision not in PRECISIONS:
        raise ValueError(f"{name} must be one of {PRECISIONS}, got {precision!r}.")
    if precision == "bf16" and not native_bf16(device):
        raise ValueError(
            f"{name}='bf16' needs native bfloat16 arithmetic (a CPU with "
            f"AVX512-BF16 or AMX, or a CUDA GPU with bfloat16); device "
            f"{str(device)!r} has none, where bfloat16 would be slower than "
            f"float32. Use {name}='fp32'."
        )


# -------------------------------------------------------------- weight files
def load_state_dict_file(path):
    """Read a state_dict file safely (``torch.load(weights_only=True)``).

    Parameters
    ----------
    path : str
        A file written by ``torch.save(module.state_dict(), path)``.

    Returns
    -------
    state : dict of str to torch.Tensor
    """
    if not os.path.isfile(path):
        raise ValueError(f"weights file {path!r} does not exist.")
    state = safe_load(path, "weights file", "a tensor state_dict")
    if not isinstance(state, dict) or not state or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(
            f"weights file {path!r} does not hold a state_dict (a mapping of "
            "parameter names to tensors)."
        )
    return state


def apply_state_dict(targets, state, path):
    """Load ``state`` strictly into the first of ``targets`` it fits.

    Parameters
    ----------
    targets : list of torch.nn.Module
        Candidates, e.g. the full network and its headless trunk.
    state : dict
    path : str
        For the error message.
    """
    errors = []
    for target in targets:
        try:
            target.load_state_dict(state, strict=True)
            return
        except RuntimeError as exc:
            errors.append(str(exc).splitlines()[0])
    raise ValueError(
        f"weights file {path!r} does not match the backbone's architecture: "
        f"{errors[0]}"
    )


# ------------------------------------------------------------------ backbone
class Backbone:
    """A frozen feature extractor with its preprocessing.

    Built by :func:`get_backbone`; this is ``EvoPruneClassifier.backbone_``.

    Parameters
    ----------
    name : str
        Registry or display name.
    module : torch.nn.Module
        Maps normalised ``(n, 3, S, S)`` images to ``(n, n_features)``.
    input_size : int
        Side length images are resized to.
    mean, std : tuple of float
        Per-channel normalisation applied to ``[0, 1]`` images.
    feature_map : callable, default=None
        ``feature_map(module, x)``: the last convolutional map (see
        :class:`BackboneSpec`).

    Attributes
    ----------
    n_features : int
        Width of the feature vector (measured by a probe forward pass).
    n_images_forwarded : int
        Images passed through the network by :meth:`extract` so far (not
        those served from a feature store).
    precision : {"fp32", "bf16"}
        Arithmetic of :meth:`extract`: float32, or bfloat16 autocast
        (``torch.autocast``; the features are returned as float32). Set by
        ``EvoPruneClassifier(precision=...)``; ``"fp32"`` by default.

    Examples
    --------
    >>> import numpy as np
    >>> from evoprune_sklearn import get_backbone
    >>> backbone = get_backbone("resnet18", weights=None, image_size=32)
    >>> X = np.zeros((2, 20, 20, 3), dtype=np.uint8)
    >>> backbone.extract(X).shape
    (2, 512)
    """

    precision = "fp32"  # a class default: also for backbones pickled before 0.3
    _memory = None  # the feature store of extract calls that name none (see caching)

    def __init__(self, name, module, input_size, mean, std, feature_map=None):
        self.name = name
        self.module = module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.input_size = int(input_size)
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.feature_map = feature_map
        self.n_images_forwarded = 0
        with torch.inference_mode():
            probe = torch.zeros(1, 3, self.input_size, self.input_size)
            try:
                out = self.module(self.normalize(probe))
            except RuntimeError as exc:
                raise ValueError(
                    f"image_size={self.input_size} is too small for backbone "
                    f"{name!r} ({str(exc).splitlines()[0]}); use a larger image_size."
                ) from exc
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            raise ValueError(
                f"backbone {name!r} must map (n, 3, S, S) images to a 2-D (n, "
                f"n_features) tensor, got "
                f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}"
                "; end the network with global pooling and flattening."
            )
        self.n_features = int(out.shape[1])

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

    def last_conv_map(self, images):
        """The last convolutional map ``(n, K, h, w)`` of ``[0, 1]`` images.

        Parameters
        ----------
        images : torch.Tensor of shape (n, 3, H, W)
            Resized to ``input_size`` first when needed.

        Returns
        -------
        fmap : torch.Tensor
        """
        x = self.normalize(resize_batch(images, self.input_size))
        with torch.no_grad():
            if self.feature_map is not None:
                return self.feature_map(self.module, x)
            return pooled_input_map(self.module, x, self.name)

    def _autocast(self, device):
        device = torch.device(device)
        if self.precision == "bf16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def caching(self, memory):
        """Use the feature store ``memory`` in every :meth:`extract` call inside.

        So that the objectives' own extractions during a fit (the ODIN
        objective's OoD images) use the estimator's ``memory=`` too.

        Parameters
        ----------
        memory : None, str, path-like or joblib.Memory
        """
        self._memory = memory
        try:
            yield self
        finally:
            del self._memory

    def extract(self, X, *, batch_size=64, device="cpu", verbose=0, desc="features",
                memory=None):
        """Features of every image, one forward pass each.

        Images and convolution weights go through the network in
        :data:`torch.channels_last` memory format (on the CPU and CUDA),
        with batch norms folded into the convolutions where the module
        offers ``fused()`` (:func:`inference_module`; the module itself is
        not changed), under bfloat16 autocast when ``precision="bf16"``. On a CPU the
        features do not depend on the number of torch threads: each batch
        runs single-threaded and ``torch.get_num_threads()`` batches run at
        once.

        Parameters
        ----------
        X : Images or ndarray
            The images (an array is validated as :class:`~evoprune_sklearn._images.Images`).
        batch_size : int, default=64
        device : str or torch.device, default="cpu"
        verbose : int, default=0
            Show a progress bar when positive.
        desc : str, default="features"
            Progress bar label.
        memory : None, str, path-like or joblib.Memory, default=None
            A feature store: features of images extracted before by this
            network (same weights, input size, precision and device type)
            are read from it, the others extracted and added (see
            ``EvoPruneClassifier(memory=...)``). None uses the store of an
            enclosing :meth:`caching` block, if any.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features), dtype float32
        """
        X = Images.of(X)
        store = open_store(self._memory if memory is None else memory, self, device)
        if store is None:
            return self._forward(X, batch_size, device, verbose, desc)
        digests = X.row_digests()
        out, found = store.lookup(digests)
        missing = np.flatnonzero(~found)
        if len(missing) == 0:
            return out
        todo = X if len(missing) == len(X) else X.take(missing)
        done = [0]

        def keep(stop, feats):
            # Stored as it goes: an interrupted extraction keeps its work.
            if stop - done[0] >= CHUNK_ROWS or stop == len(missing):
                store.add([digests[i] for i in missing[done[0]:stop]], feats[done[0]:stop])
                done[0] = stop

        out[missing] = self._forward(todo, batch_size, device, verbose, desc, keep)
        return out

    def _forward(self, X, batch_size, device, verbose, desc, on_batch=None):
        n = len(X)
        out = np.empty((n, self.n_features), dtype=np.float32)
        fast = torch.device(device).type in ("cpu", "cuda")
        # channels-last weights and images, batch norms folded where the
        # module can: the same values (within float32 rounding of the NCHW
        # forward), faster convolutions
        module = inference_module(self.module)
        module.to(device, memory_format=torch.channels_last if fast
                  else torch.contiguous_format)
        batches = X.batches(batch_size, size=self.input_size, device=device,
                            channels_last=fast)
        if verbose:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc=f"backbone {self.name}: {desc}", unit="batch",
                           total=-(-n // batch_size))

        def forward(batch):
            # autocast and inference mode are per thread: entered where it runs
            with torch.inference_mode(), self._autocast(device):
                return module(self.normalize(batch[2])).float().cpu().numpy()

        def keep(start, stop, feats):
            out[start:stop] = feats
            self.n_images_forwarded += stop - start
            if on_batch is not None:
                on_batch(stop, out)

        if torch.device(device).type != "cpu":
            for batch in batches:
                keep(batch[0], batch[1], forward(batch))
            return out
        # On a CPU each batch runs on one thread and the batches run side by
        # side: a convolution's sums are then the same whatever the thread
        # count (split across threads they are not, and the features would
        # differ in their last bits), and it is no slower.
        with deterministic_arithmetic() as scope:
            window = []
            for batch in itertools.chain(batches, [None]):  # None: flush
                if batch is not None:
                    window.append(batch)
                if window and (batch is None or len(window) >= scope.n_threads):
                    for (start, stop, _), feats in zip(window, scope.map(forward, window)):
                        keep(start, stop, feats)
                    window = []
        return out

    def __getstate__(self):
        state = self.__dict__.copy()
        state["module"] = self.module.to("cpu")
        return state

    def __setstate__(self, state):
        state.setdefault("feature_map", None)  # pickled before 0.2
        self.__dict__.update(state)


class _Normalized(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.body = backbone.module
        self.register_buffer("mean", torch.tensor(backbone.mean)[:, None, None])
        self.register_buffer("std", torch.tensor(backbone.std)[:, None, None])

    def forward(self, x):
        return self.body((x - self.mean) / self.std)


def pooled_input_map(module, x, name="backbone"):
    """The input of ``module``'s last adaptive average pool for images ``x``.

    The default ``feature_map`` of a :class:`BackboneSpec`.
    """
    pools = [m for m in module.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    if not pools:
        raise ValueError(
            f"pixel_method='feature_map' needs a backbone that ends in an "
            f"adaptive average pool or a spec with feature_map=; {name!r} has "
            "neither. Use pixel_method='gradient'."
        )
    captured = {}
    handle = pools[-1].register_forward_hook(
        lambda m, inp, out: captured.setdefault("map", inp[0])
    )
    try:
        module(x)
    finally:
        handle.remove()
    return captured["map"]
