"""Arrays users give on the command line, the same in every command that runs a graph (``--input``):

- ``NAME=FILE.npy``: that array;
- ``FILE.npz``: every array in it, by key (``NAME=FILE.npz`` takes the one array it holds);
- ``NAME=VALUE``: a literal -- ``true``/``false``, an integer, a float, or a comma list of them
  (``is_training=false``, ``keep_prob=1.0``, ``thresholds=0.6,0.7,0.7``).

Files are never unpickled."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphkit.errors import GraphkitError

FORMS = "NAME=FILE.npy, FILE.npz or NAME=VALUE"


def load_arrays(items: list[str]) -> dict[str, np.ndarray]:
    """name -> array for each item (the forms above)."""
    out: dict[str, np.ndarray] = {}
    for item in items:
        name, sep, value = item.partition("=")
        path = value if sep else item
        try:
            if not sep and item.endswith(".npz"):
                with np.load(item, allow_pickle=False) as data:
                    out.update({k: data[k] for k in data.files})
            elif sep and value.endswith(".npz"):
                with np.load(value, allow_pickle=False) as data:
                    if len(data.files) != 1:
                        raise GraphkitError(f"{value} holds {len(data.files)} arrays ({', '.join(data.files)}); "
                                            f"give FILE.npz alone to feed them by name", Path(value))
                    out[name] = data[data.files[0]]
            elif sep and (value.endswith(".npy") or Path(value).is_file()):
                out[name] = np.load(value, allow_pickle=False)
            elif sep and name:
                out[name] = literal(value, name)
            else:
                raise GraphkitError(f"'{item}' is not {FORMS}")
        except (OSError, ValueError) as exc:
            raise GraphkitError(f"cannot read {path}: {exc}", Path(path)) from None
    return out


def literal(text: str, name: str) -> np.ndarray:
    """``true``/``false``, an int, a float, or a comma list of one kind, as a numpy value."""
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    if not parts:
        raise GraphkitError(f"--input {name}= gives no value")
    if all(p.lower() in ("true", "false") for p in parts):
        values: list = [p.lower() == "true" for p in parts]
        dtype: type = np.bool_
    else:
        try:
            values, dtype = [int(p) for p in parts], np.int32
        except ValueError:
            try:
                values, dtype = [float(p) for p in parts], np.float32
            except ValueError:
                raise GraphkitError(f"--input {name}={text}: not a file, and not a number, true/false or a comma "
                                    f"list of them ({FORMS})") from None
    array: np.ndarray = np.asarray(values, dtype=dtype)
    return array.reshape(()) if len(parts) == 1 and "," not in text else array
