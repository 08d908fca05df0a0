"""Save and load a fitted estimator without pickle: safetensors plus JSON.

One file in the `safetensors <https://huggingface.co/docs/safetensors>`_
format holds every array and tensor of the fitted estimator; its header
metadata holds a JSON document describing the parameters and every fitted
attribute, and a SHA-256 checksum of both. Loading parses JSON and raw
little-endian numbers only, and rebuilds objects from a fixed list of this
package's own classes, so a file cannot run code when it is loaded (unlike
pickle, joblib or ``torch.load(weights_only=False)``).

The writer is generic over fitted attributes: every attribute of the
estimator that is not a parameter is written, whatever its name, as long as
its value is built from JSON values (None, bool, int, float, str),
lists, tuples, dicts, numpy arrays and scalars, torch tensors, paths,
``numpy.random.RandomState``, ``joblib.Memory`` (by its location) and the
package classes listed in
``_CLASSES``. Any other type raises a TypeError naming the attribute: nothing
is silently dropped.

Layout of the JSON document (``metadata["evoprune"]``)::

    {"format": ..., "format_version": 1, "package_version": "...",
     "class": "EvoPruneClassifier", "params": <node>, "attributes": <node>}

A node is a JSON null, bool, int, str or list of nodes, or an object whose
``"$"`` member names its type (``"float"``, ``"tuple"``, ``"dict"``,
``"ndarray"``, ``"tensor"``, ``"object"``, ...); arrays name a key of the
safetensors file instead of holding their data.
"""

import dataclasses
import hashlib
import inspect
import json
import math
import numbers
import os
import pathlib
import tempfile
import types
import warnings

import joblib
import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

from . import callbacks
from ._backbones import Backbone, get_backbone, validate_backbone_args
from ._background import Background
from ._engines import TrainingConfig
from ._front import Member, ParetoFront
from ._images import ImageSpec
from ._version import __version__
from .objectives import Objective, get_objective
from .objectives._registry import registry_name

__all__ = ["FORMAT", "FORMAT_VERSION", "save_estimator", "load_estimator"]

FORMAT = "evoprune_sklearn.estimator"
FORMAT_VERSION = 1
# dtype kinds safetensors stores natively: bool, signed/unsigned int, float
_NUMERIC_KINDS = "biuf"


# The package classes a file may name (nothing else is ever built).
_CLASSES = {c.__name__: c for c in (Member, ParetoFront, Background, ImageSpec,
                                    TrainingConfig)}


def _callback_class(name):
    """The search callback class of this package called ``name``, or None.

    Only the classes defined in :mod:`evoprune_sklearn.callbacks` qualify;
    a user's own callback class is code, which a file never names.
    """
    cls = getattr(callbacks, name, None) if isinstance(name, str) else None
    if (inspect.isclass(cls) and issubclass(cls, callbacks.SearchCallback)
            and cls.__module__ == callbacks.__name__):
        return cls
    return None


# ------------------------------------------------------------------- writing
class _Writer:
    """Turns Python values into JSON nodes, collecting arrays on the side."""

    def __init__(self):
        self.arrays = {}
        self.classes = _CLASSES

    def _array_key(self, array):
        key = f"a{len(self.arrays)}"
        array = np.asarray(array)
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        self.arrays[key] = np.ascontiguousarray(array)
        return key

    def _fail(self, value, where, why=""):
        hint = ""
        if where.startswith("parameter"):
            hint = (" A parameter only matters for refitting: set it to a "
                    "storable value with set_params before saving, or")
        raise TypeError(
            f"Cannot save {where}: a {type(value).__module__}.{type(value).__qualname__} "
            f"value{why}. save() stores JSON values, lists, tuples, dicts, numpy "
            "arrays and scalars, torch tensors, paths, RandomState, the "
            "package's own fitted classes and search callbacks, and refuses "
            f"anything else rather than dropping it.{hint or ''}"
            f"{' use' if hint else ' Use'} pickle for such an estimator (see the "
            "reliability page of the documentation)."
        )

    def encode(self, value, where):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.generic):
            return self._scalar(value, where)
        if isinstance(value, numbers.Integral) and type(value) is int:
            return value
        if type(value) is float:
            return value if math.isfinite(value) else {"$": "float", "v": repr(value)}
        if type(value) is list:
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if type(value) is tuple:
            return {"$": "tuple",
                    "v": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if type(value) in (dict, types.MappingProxyType):  # a Member's objectives
            return {"$": "dict", "v": [
                [self.encode(k, f"{where} key {k!r}"), self.encode(v, f"{where}[{k!r}]")]
                for k, v in value.items()
            ]}
        if type(value) is np.ndarray:
            return self._ndarray(value, where)
        if isinstance(value, torch.Tensor):
            return self._tensor(value, where)
        if isinstance(value, os.PathLike):
            return {"$": "path", "v": os.fspath(value)}
        if type(value) is joblib.Memory:  # memory=: a feature store, by its location
            location = value.location
            return {"$": "memory",
                    "v": None if location is None else os.fspath(location)}
        if type(value) is np.random.RandomState:
            return {"$": "RandomState",
                    "v": self.encode(value.get_state(legacy=True), f"{where}.state")}
        if type(value) is Backbone:
            return self._backbone(value, where)
        if isinstance(value, Objective):
            return self._objective(value, where)
        name = type(value).__name__
        if self.classes.get(name) is type(value):
            return self._object(value, name, where)
        if _callback_class(name) is type(value):
            # A parameter like its estimator: stored by its own parameters.
            return {"$": "callback", "class": name,
                    "v": self.encode(value.get_params(deep=False), where)}
        self._fail(value, where)

    def _objective(self, value, where):
        # Stored as its registered name and parameters (plus what it learned
        # in a fit): a file names no class, so an unregistered one is refused.
        name = registry_name(value)
        if name is None:
            raise TypeError(
                f"Cannot save {where}: the objective class "
                f"{type(value).__module__}.{type(value).__qualname__} is not "
                "registered. save() stores an objective as its registered name "
                "and parameters; register the class with "
                "evoprune_sklearn.objectives.register_objective(name, cls) "
                "(also before load), or use pickle for such an estimator."
            )
        fitted = {k: v for k, v in vars(value).items()
                  if k.endswith("_") and not k.startswith("_")}
        return {"$": "objective", "name": name,
                "params": self.encode(value.get_params(deep=False), f"{where}.params"),
                "fitted": self.encode(fitted, f"{where} fitted attributes")}

    def _scalar(self, value, where):
        if value.dtype.kind not in _NUMERIC_KINDS + "U":
            self._fail(value, where, f" of dtype {value.dtype}")
        item = value.item()
        if isinstance(item, float) and not math.isfinite(item):
            item = repr(item)
        return {"$": "scalar", "dtype": value.dtype.str, "v": item}

    def _ndarray(self, value, where):
        kind = value.dtype.kind
        if kind in _NUMERIC_KINDS:
            return {"$": "ndarray", "key": self._array_key(value)}
        if kind in "US":
            return {"$": "text_array", "dtype": value.dtype.str, "shape": list(value.shape),
                    "v": value.ravel().tolist() if kind == "U"
                    else [b.decode("latin-1") for b in value.ravel().tolist()]}
        if kind == "O":
            return {"$": "object_array", "shape": list(value.shape),
                    "v": [self.encode(v, f"{where}[{i}]")
                          for i, v in enumerate(value.ravel().tolist())]}
        self._fail(value, where, f" of dtype {value.dtype}")

    def _tensor(self, value, where):
        if type(value) is not torch.Tensor and not isinstance(value, torch.nn.Parameter):
            self._fail(value, where)
        t = value.detach().cpu()
        try:
            array = t.numpy()
        except TypeError:
            self._fail(value, where, f" of dtype {t.dtype}")
        return {"$": "tensor", "key": self._array_key(array),
                "parameter": isinstance(value, torch.nn.Parameter),
                "requires_grad": bool(value.requires_grad)}

    def _module_state(self, module):
        return {k: self._array_key(v.detach().cpu().numpy())
                for k, v in module.state_dict().items()}

    def _object(self, value, name, where):
        if dataclasses.is_dataclass(value):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            return {"$": "dataclass", "class": name,
                    "v": self.encode(fields, f"{where}")}
        state = dict(vars(value))
        node = {"$": "object", "class": name}
        node["v"] = self.encode(state, where)
        return node

    def _backbone(self, value, where):
        state = dict(vars(value))
        module = state.pop("module")
        # code, not data: the registry gives it back from the name at load time
        state.pop("feature_map", None)
        return {"$": "backbone", "name": value.name, "input_size": value.input_size,
                "module": self._module_state(module), "v": self.encode(state, where)}


def _digest(text, arrays):
    h = hashlib.sha256(text.encode("utf-8"))
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"|{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_estimator(path, class_name, params, attributes):
    """Write an estimator's parameters and fitted state to ``path``.

    The implementation of :meth:`EvoPruneClassifier.save`: the estimator
    hands its parameters and its fitted attributes as plain dicts; this
    module never reads the estimator itself.

    Parameters
    ----------
    path : str or path-like
        The file to write (atomically: a crash keeps any previous file).
    class_name : str
        The estimator's class name, checked at load time.
    params : dict
        ``get_params(deep=False)``.
    attributes : dict
        Every fitted attribute, by name.

    Raises
    ------
    TypeError
        When a value is of a type the format cannot store; its name is in
        the message.
    """
    writer = _Writer()
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "class": class_name,
        "params": {k: writer.encode(v, f"parameter {k!r}") for k, v in sorted(params.items())},
        "attributes": {
            k: writer.encode(v, f"fitted attribute {k!r}")
            for k, v in sorted(attributes.items())
        },
    }
    text = json.dumps(doc, allow_nan=False, sort_keys=True)
    metadata = {"format": FORMAT, "evoprune": text,
                "sha256": _digest(text, writer.arrays)}
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".evoprune-", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        save_file(writer.arrays, tmp, metadata=metadata)
        os.replace(tmp, path)  # atomic: a crash keeps any previous file whole
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ------------------------------------------------------------------- reading
class _Reader:
    """Turns JSON nodes back into values; refuses anything unexpected."""

    def __init__(self, arrays, path):
        self.arrays = arrays
        self.path = path
        self.classes = _CLASSES

    def _bad(self, what):
        raise ValueError(
            f"{self.path!r} is not a valid evoprune_sklearn model file: {what}."
        )

    def _array(self, key):
        if not isinstance(key, str) or key not in self.arrays:
            self._bad(f"array {key!r} is missing")
        return self.arrays[key]

    def decode(self, node):
        if node is None or isinstance(node, (bool, str, int)):
            return node
        if isinstance(node, float):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict) or "$" not in node:
            self._bad(f"unexpected value {str(node)[:80]!r}")
        tag = node["$"]
        handler = getattr(self, f"_decode_{tag}", None) if isinstance(tag, str) else None
        if handler is None:
            self._bad(f"unknown type tag {tag!r}")
        try:
            return handler(node)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ValueError) and "not a valid evoprune_sklearn" in str(exc):
                raise
            self._bad(f"malformed {tag!r} entry ({type(exc).__name__}: {exc})")

    def _decode_float(self, node):
        if node["v"] not in ("nan", "inf", "-inf"):
            self._bad(f"bad float {node['v']!r}")
        return float(node["v"])

    def _decode_tuple(self, node):
        return tuple(self.decode(v) for v in node["v"])

    def _decode_dict(self, node):
        out = {}
        for k, v in node["v"]:
            key = self.decode(k)
            if isinstance(key, (list, dict, np.ndarray)):
                self._bad(f"unhashable dict key {k!r}")
            out[key] = self.decode(v)
        return out

    def _decode_scalar(self, node):
        dtype = np.dtype(node["dtype"])
        if dtype.kind not in _NUMERIC_KINDS + "U":
            self._bad(f"bad scalar dtype {node['dtype']!r}")
        v = node["v"]
        if isinstance(v, str) and dtype.kind == "f":
            v = self._decode_float({"v": v})
        return dtype.type(v)

    def _decode_ndarray(self, node):
        return np.array(self._array(node["key"]))  # a writable copy, off the file

    def _decode_text_array(self, node):
        dtype = np.dtype(node["dtype"])
        if dtype.kind not in "US":
            self._bad(f"bad text array dtype {node['dtype']!r}")
        values = node["v"] if dtype.kind == "U" else [s.encode("latin-1") for s in node["v"]]
        return np.array(values, dtype=dtype).reshape(node["shape"])

    def _decode_object_array(self, node):
        values = [self.decode(v) for v in node["v"]]
        out = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):  # item by item: no broadcasting of lists
            out[i] = v
        return out.reshape(node["shape"])

    def _decode_tensor(self, node):
        t = torch.from_numpy(np.array(self._array(node["key"])))
        if node.get("parameter"):
            return torch.nn.Parameter(t, requires_grad=bool(node.get("requires_grad")))
        return t.requires_grad_(bool(node.get("requires_grad")))

    def _decode_path(self, node):
        if not isinstance(node["v"], str):
            self._bad("bad path")
        return pathlib.Path(node["v"])

    def _decode_memory(self, node):
        if node["v"] is not None and not isinstance(node["v"], str):
            self._bad("bad memory")
        return joblib.Memory(node["v"], verbose=0)

    def _decode_RandomState(self, node):
        rs = np.random.RandomState()
        rs.set_state(self.decode(node["v"]))
        return rs

    def _cls(self, name):
        cls = self.classes.get(name) if isinstance(name, str) else None
        if cls is None:
            self._bad(f"unknown class {name!r}")
        return cls

    def _decode_callback(self, node):
        cls = _callback_class(node["class"])
        params = self.decode(node["v"])
        if cls is None or not isinstance(params, dict):
            self._bad(f"unknown callback class {node['class']!r}")
        return cls(**params)

    def _decode_objective(self, node):
        name, params, fitted = node["name"], self.decode(node["params"]), self.decode(
            node["fitted"])
        if not isinstance(params, dict) or not isinstance(fitted, dict):
            self._bad(f"bad objective {name!r} entry")
        try:
            objective = get_objective(name)
        except ValueError as exc:
            raise ValueError(
                f"{self.path!r} uses the objective {name!r}, which is not "
                "registered in this session; register it with "
                "evoprune_sklearn.objectives.register_objective before load."
            ) from exc
        objective.set_params(**params)
        for key, value in fitted.items():
            if not (isinstance(key, str) and key.endswith("_") and not key.startswith("_")):
                self._bad(f"bad fitted attribute {key!r} of objective {name!r}")
            setattr(objective, key, value)
        return objective

    def _decode_dataclass(self, node):
        cls = self._cls(node["class"])
        fields = self.decode(node["v"])
        if not dataclasses.is_dataclass(cls) or not isinstance(fields, dict):
            self._bad(f"bad {node['class']} entry")
        return cls(**fields)

    def _decode_object(self, node):
        cls = self._cls(node["class"])
        state = self.decode(node["v"])
        if dataclasses.is_dataclass(cls) or not isinstance(state, dict) or not all(
            isinstance(k, str) for k in state
        ):
            self._bad(f"bad {node['class']} entry")
        obj = cls.__new__(cls)  # a package class: no user code, no __init__ side effects
        obj.__dict__.update(state)
        return obj

    def _module_state(self, keys):
        if not isinstance(keys, dict):
            self._bad("bad module state")
        return {k: torch.from_numpy(np.array(self._array(v))) for k, v in keys.items()}

    def _decode_backbone(self, node):
        name = node["name"]
        validate_backbone_args(name, None)  # a registry name, never a path or code
        # The architecture from its registry name with no pretrained weights
        # (nothing is downloaded), then the saved weights.
        backbone = get_backbone(name, weights=None, image_size=int(node["input_size"]))
        try:
            backbone.module.load_state_dict(self._module_state(node["module"]), strict=True)
        except RuntimeError as exc:
            self._bad(f"the backbone weights do not fit {name!r} ({str(exc).splitlines()[0]})")
        state = self.decode(node["v"])
        if not isinstance(state, dict):
            self._bad("bad backbone entry")
        backbone.__dict__.update(state)
        return backbone


def _read_file(path):
    try:
        with safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # the Rust reader raises its own error type
        raise ValueError(
            f"{path!r} is not an evoprune_sklearn model file: it cannot be read as "
            f"safetensors ({exc}). load() reads only files written by save(); a "
            "pickle or joblib file must be read with pickle, and only when you "
            "trust its source."
        ) from None
    if metadata.get("format") != FORMAT or "evoprune" not in metadata:
        raise ValueError(
            f"{path!r} is a safetensors file but not an evoprune_sklearn model file "
            "(its header has no evoprune_sklearn metadata); load() reads only files "
            "written by EvoPruneClassifier.save()."
        )
    text = metadata["evoprune"]
    if metadata.get("sha256") != _digest(text, arrays):
        raise ValueError(
            f"{path!r} was modified or corrupted after it was saved: its checksum "
            "does not match its content. Refusing to load it."
        )
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path!r} holds malformed metadata ({exc}).") from None
    return doc, arrays


def load_estimator(path, class_name, param_names):
    """Read a file written by :func:`save_estimator`.

    The implementation of :meth:`EvoPruneClassifier.load`: returns the
    parameters and the fitted attributes as plain dicts, from which the
    estimator class builds the estimator; this module never builds or reads
    the estimator itself. The members' skorch heads are rebuilt, on the CPU
    when the file was saved on a device this machine lacks (the stored
    ``_device`` and ``_config`` then say so).

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_estimator`.
    class_name : str
        The class the file must hold.
    param_names : iterable of str
        The parameters this version of the class has.

    Returns
    -------
    params : dict
    attributes : dict

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    ValueError
        When the file is not one :func:`save_estimator` wrote, was altered,
        or holds another class or unknown parameters.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at {path!r}.")
    doc, arrays = _read_file(path)
    reader = _Reader(arrays, path)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        reader._bad("its metadata is not an estimator document")
    version = doc.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path!r} was written in file format version {version!r} by "
            f"evoprune_sklearn {doc.get('package_version')!r}; this version "
            f"({__version__}) reads format {FORMAT_VERSION} at most. Upgrade "
            "evoprune_sklearn to load it."
        )
    if doc.get("class") != class_name:
        raise ValueError(
            f"{path!r} holds a {doc.get('class')!r}, not a {class_name}."
        )
    if doc.get("package_version") != __version__:
        warnings.warn(
            f"{path!r} was saved by evoprune_sklearn {doc.get('package_version')} "
            f"and is loaded by {__version__}; check its predictions.",
            UserWarning,
            stacklevel=3,
        )
    params, attributes = doc.get("params"), doc.get("attributes")
    if not isinstance(params, dict) or not isinstance(attributes, dict):
        reader._bad("parameters or attributes are missing")
    params = {k: reader.decode(v) for k, v in params.items()}
    unknown = sorted(set(params) - set(param_names))
    if unknown:
        reader._bad(
            f"it sets parameter(s) {unknown} that {class_name} "
            f"{__version__} does not have"
        )
    state = {}
    for name, node in attributes.items():
        if not isinstance(name, str) or name in params or name.startswith("__"):
            reader._bad(f"bad attribute name {name!r}")
        state[name] = reader.decode(node)
    return params, state
