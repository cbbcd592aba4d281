"""The TF-free graph-IO core: every file graphkit reads or writes goes through here."""

from graphkit.io import dtypes
from graphkit.io.checkpoint import Checkpoint, TensorInfo, open_checkpoint
from graphkit.io.graph import Graph, GraphIndex, TensorRef, parse_ref, topological_order, validate
from graphkit.io.loader import Model, load
from graphkit.io.save import atomic_write, check_output, save_graph

__all__ = [
    "Checkpoint", "Graph", "dtypes", "GraphIndex", "Model", "TensorInfo", "TensorRef", "atomic_write", "check_output",
    "load", "open_checkpoint", "parse_ref", "save_graph", "topological_order", "validate",
]
