"""graphkit: TensorFlow model graphs — inspect, freeze, prune, remap, convert — with a TF-free core.

The library mirrors the command line: every command is a function here. TensorFlow is never imported
by ``import graphkit``; only functions that run graphs import it, lazily.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load": "graphkit.io",
    "save_graph": "graphkit.io",
    "inspect": "graphkit.inspect",
    "GraphkitError": "graphkit.errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graphkit' has no attribute {name!r}")


__all__ = sorted(_LAZY)
