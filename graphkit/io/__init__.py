"""The TF-free graph-IO core: every file graphkit reads or writes goes through here.

Names load lazily, so a command imports only the readers it uses (numpy only where tensors are decoded).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_LAZY = {
    "dtypes": "graphkit.io.dtypes",
    "Checkpoint": "graphkit.io.checkpoint",
    "TensorInfo": "graphkit.io.checkpoint",
    "open_checkpoint": "graphkit.io.checkpoint",
    "Graph": "graphkit.io.graph",
    "GraphIndex": "graphkit.io.graph",
    "TensorRef": "graphkit.io.graph",
    "parse_ref": "graphkit.io.graph",
    "topological_order": "graphkit.io.checks",
    "validate": "graphkit.io.checks",
    "Model": "graphkit.io.loader",
    "load": "graphkit.io.loader",
    "atomic_write": "graphkit.io.save",
    "check_output": "graphkit.io.save",
    "save_graph": "graphkit.io.save",
}

if TYPE_CHECKING:
    from graphkit.io import dtypes
    from graphkit.io.checkpoint import Checkpoint, TensorInfo, open_checkpoint
    from graphkit.io.checks import topological_order, validate
    from graphkit.io.graph import Graph, GraphIndex, TensorRef, parse_ref
    from graphkit.io.loader import Model, load
    from graphkit.io.save import atomic_write, check_output, save_graph


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        return module if name == "dtypes" else getattr(module, name)
    raise AttributeError(f"module 'graphkit.io' has no attribute {name!r}")


__all__ = [
    "Checkpoint", "Graph", "GraphIndex", "Model", "TensorInfo", "TensorRef", "atomic_write", "check_output", "dtypes",
    "load", "open_checkpoint", "parse_ref", "save_graph", "topological_order", "validate",
]
