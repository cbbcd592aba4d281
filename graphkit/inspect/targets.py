"""``inspect --target``: the ops of what would be deployed that a target cannot run.

A model with variables (a checkpoint, a SavedModel) is deployed frozen, so it is frozen first (TF-free,
into a temporary folder): TFLite and tf2onnx take frozen graphs only, and a TF2 SavedModel's ops live in
its functions. The check itself (runtime/targets.py) covers the main graph and every library function."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from graphkit.io import Model, load

if TYPE_CHECKING:
    from graphkit.runtime.targets import Target


def target_check(model: Model, target: Target) -> dict[str, dict]:
    """op type -> {nodes, note} for the ops ``target`` cannot run in ``model`` (frozen first if it has
    variables; its default signature or clear output, as freeze picks them)."""
    from graphkit.runtime.targets import unsupported_ops

    assert model.graph is not None
    if model.checkpoint is None or target == "tf":
        return unsupported_ops(model.graph, target)
    from graphkit.freeze import freeze

    with tempfile.TemporaryDirectory(prefix="graphkit-") as tmp:
        path = Path(tmp) / "frozen.pb"
        report = freeze(model.path, path, tags=model.tags or None)
        frozen = load(path)
        assert frozen.graph is not None
        return unsupported_ops(frozen.graph, target, outputs=report.outputs)
