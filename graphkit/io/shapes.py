"""TensorShapeProto <-> tuples (``-1`` an unknown dimension, None an unknown rank); no numpy."""

from __future__ import annotations

from graphkit.proto import tensor_shape_pb2


def shape_of(proto: tensor_shape_pb2.TensorShapeProto) -> tuple[int, ...] | None:
    """Dimensions of a shape proto (-1 for unknown dims); None for unknown rank."""
    if proto.unknown_rank:
        return None
    return tuple(int(d.size) for d in proto.dim)


def shape_proto(shape: tuple[int, ...] | list[int] | None) -> tensor_shape_pb2.TensorShapeProto:
    proto = tensor_shape_pb2.TensorShapeProto()
    if shape is None:
        proto.unknown_rank = True
    else:
        for size in shape:
            proto.dim.add().size = int(size)
    return proto


def format_shape(shape: tuple[int, ...] | list[int] | None) -> str:
    if shape is None:
        return "<unknown>"
    return "[" + ",".join("?" if d < 0 else str(d) for d in shape) + "]"
