"""Reading torch files without running their code: one ``torch.load`` for the package.

Weight files and checkpoints are read with ``torch.load(weights_only=True)``
on the CPU: a file can hold tensors, containers and numbers, never code, so
opening a file from elsewhere is safe. Every failure becomes a ValueError
naming the file and what it was expected to hold.
"""

import torch

__all__ = ["safe_load"]


def safe_load(path, kind, expected, advice=""):
    """``torch.load(path, map_location="cpu", weights_only=True)``, errors named.

    Parameters
    ----------
    path : str
        The file.
    kind : str
        What the file is, for the error (``"weights file"``).
    expected : str
        What it should hold, for the error (``"a tensor state_dict"``).
    advice : str, default=""
        Appended to the error: what the user can do.

    Returns
    -------
    obj : object
        What the file holds (tensors on the CPU).

    Raises
    ------
    ValueError
        When torch cannot read the file, or reading it would need code to be
        unpickled.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ValueError(
            f"{kind} {path!r} could not be read as {expected} "
            f"({type(exc).__name__}: {first}).{' ' + advice if advice else ''}"
        ) from exc
