"""graphkit: TensorFlow model graphs — inspect, freeze, prune, remap, convert — with a TF-free core.

The library mirrors the command line: every command is a function with the same options. Where a command's
name is also its subpackage's (inspect, freeze, convert, diff, optimize), the function lives in it:
``graphkit.inspect.inspect``, ``graphkit.freeze.freeze``, ``graphkit.optimize.optimize``...; the others are
here too (``graphkit.prune``, ``graphkit.caffe2tf``, ``graphkit.edit_checkpoint``...). TensorFlow is never
imported by ``import graphkit``; only functions that run graphs import it, lazily.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load": "graphkit.io",
    "save_graph": "graphkit.io",
    "GraphkitError": "graphkit.errors",
    "prune": "graphkit.surgery",
    "remap_input": "graphkit.surgery",
    "set_batch": "graphkit.surgery",
    "rename": "graphkit.surgery",
    "splice": "graphkit.surgery",
    "caffe2tf": "graphkit.convert.caffe",
    "tensorboard": "graphkit.board",
    "edit_checkpoint": "graphkit.ckpt",
    "run": "graphkit.runtime.runner:run_model",
    "compare": "graphkit.runtime.runner",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, _, attr = _LAZY[name].partition(":")
        return getattr(importlib.import_module(module), attr or name)
    raise AttributeError(f"module 'graphkit' has no attribute {name!r}")


__all__ = sorted(_LAZY)
