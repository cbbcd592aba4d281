"""``graphkit diff A B``: what changed between two models graphkit reads (the work is in ``compare.py``)."""

from graphkit.diff.compare import DiffReport, NodeChange, Renamed, SignatureChange, TensorChange, diff

__all__ = ["DiffReport", "NodeChange", "Renamed", "SignatureChange", "TensorChange", "diff"]
