"""Graph surgery with TF's semantics, without TF: prune, remap-input, set-batch, rename, splice.

Each is a library function returning a :class:`SurgeryReport`; the click commands in ``cli.py`` are thin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graphkit.surgery.core import SurgeryReport
from graphkit.surgery.prune import prune
from graphkit.surgery.remap import remap_input
from graphkit.surgery.rename import rename
from graphkit.surgery.splice import splice

if TYPE_CHECKING:
    from graphkit.surgery.batch import set_batch


def __getattr__(name: str) -> Any:
    if name == "set_batch":  # the one surgery module that needs numpy: loaded on first use
        from graphkit.surgery.batch import set_batch

        return set_batch
    raise AttributeError(f"module 'graphkit.surgery' has no attribute {name!r}")


__all__ = ["SurgeryReport", "prune", "remap_input", "rename", "set_batch", "splice"]
