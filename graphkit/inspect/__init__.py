"""``graphkit inspect``: summaries, node and op listings, checkpoint listings and values."""

from __future__ import annotations

import os

from graphkit.inspect.summary import (
    checkpoint_tensors,
    list_nodes,
    op_counts,
    summarize,
    tensor_value,
)
from graphkit.io import load


def inspect(path: str | os.PathLike[str], *, tags: list[str] | None = None) -> dict:
    """Load ``path`` (any supported format) and return its summary (see README for the schema)."""
    return summarize(load(path, tags=tags))


__all__ = ["checkpoint_tensors", "inspect", "list_nodes", "op_counts", "summarize", "tensor_value"]
