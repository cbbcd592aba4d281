"""What every layer handler uses: the layer's error, its parameters, its blobs checked against the shapes
the layer needs, and channel-wise constants shaped to broadcast against a stored tensor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from graphkit.convert.caffe.builder import Builder, Tensor
from graphkit.errors import GraphkitError
from graphkit.io.caffe import CaffeLayer

Handler = Callable[[Builder, CaffeLayer, list[Tensor]], list[Tensor]]


class LayerError(GraphkitError):
    """A problem with one layer: the message names the layer and its type."""

    def __init__(self, layer: CaffeLayer, message: str) -> None:
        super().__init__(f"layer '{layer.name}' ({layer.type}): {message}")


def axis_of(layer: CaffeLayer, axis: int, rank: int) -> int:
    """Caffe's ``CanonicalAxisIndex`` (blob.hpp): ``-rank <= axis < rank``, else the layer is refused, as
    Caffe's CHECK refuses it."""
    if not -rank <= axis < rank:
        raise LayerError(layer, f"axis {axis} is out of range for a {rank}-D blob (Caffe allows {-rank}..{rank - 1})")
    return axis % rank


def param(layer: CaffeLayer, name: str) -> Any:
    """The layer's ``name`` parameter message (V1 and V2 layers share the field names)."""
    return getattr(layer.params, name)


def blob(layer: CaffeLayer, index: int, shape: tuple[int, ...]) -> np.ndarray:
    """Blob ``index`` reshaped to ``shape``; Caffe's legacy 4-D shapes (leading 1s) are accepted, any other
    difference is the classic prototxt/caffemodel mismatch."""
    if layer.blobs is None:  # shapes only: no caffemodel
        return np.broadcast_to(np.float32(0), shape)
    if index >= len(layer.blobs):
        have = f"{len(layer.blobs)} blob(s)" if layer.blobs else "no weights in the caffemodel"
        raise LayerError(layer, f"needs blob {index} of shape {list(shape)} but has {have}; is this the caffemodel "
                                "trained with this prototxt?")
    data = layer.blobs[index]
    squeezed = tuple(d for d in data.shape if d != 1)
    if data.shape != shape and squeezed != tuple(d for d in shape if d != 1):
        raise LayerError(layer, f"blob {index} has shape {list(data.shape)} in the caffemodel but the prototxt "
                                f"needs {list(shape)}; the prototxt and caffemodel do not match")
    return np.asarray(data, dtype=np.float32).reshape(shape)


def channel_const(b: Builder, name: str, values: np.ndarray, x: Tensor, axis: int = 1) -> str:
    """A Const holding per-``axis`` values (Caffe axis), shaped to broadcast against ``x`` as stored."""
    shape = [1] * x.rank
    stored = x.stored_axis(axis)
    shape[stored] = values.size
    if stored == x.rank - 1 or values.size == 1:
        shape = [values.size] if values.size > 1 else []
    return b.const(name, values.astype(np.float32).reshape(shape))
