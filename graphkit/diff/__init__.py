"""``graphkit diff A B``: what changed between two models graphkit reads (the work is in ``compare.py``)."""

from graphkit.diff.compare import DiffReport, NodeChange, TensorChange, diff

__all__ = ["DiffReport", "NodeChange", "TensorChange", "diff"]
