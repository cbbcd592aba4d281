"""Arrays users give on the command line: ``NAME=FILE.npy``, or ``FILE.npz`` (every array in it, by key)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphkit.errors import GraphkitError


def load_arrays(items: list[str]) -> dict[str, np.ndarray]:
    """name -> array for each ``NAME=FILE.npy`` or ``FILE.npz``; never unpickles."""
    out: dict[str, np.ndarray] = {}
    for item in items:
        name, sep, path = item.partition("=")
        try:
            if not sep and item.endswith(".npz"):
                with np.load(item, allow_pickle=False) as data:
                    out.update({k: data[k] for k in data.files})
            elif sep:
                out[name] = np.load(path, allow_pickle=False)
            else:
                raise GraphkitError(f"'{item}' is not NAME=FILE.npy or FILE.npz")
        except (OSError, ValueError) as exc:
            raise GraphkitError(f"cannot read {path or item}: {exc}", Path(path or item)) from None
    return out
