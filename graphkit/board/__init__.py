"""``graphkit tensorboard``: a model's graph as a TensorBoard event file, without TensorFlow.

Large constants are written without their values (dtype and shape kept): TensorBoard's graph view shows
structure, and a graph with its weights can exceed what TensorBoard loads.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from graphkit.io import load
from graphkit.io.events import write_graph_events
from graphkit.proto import graph_pb2

KEEP_VALUES_BELOW = 1 << 10  # constant values up to 1 KiB stay (shapes, small vectors): useful when reading


@dataclass
class BoardReport:
    event_file: str
    run_dir: str
    logdir: str
    nodes: int
    stripped_constants: int
    command: str


def tensorboard(model_path: str | os.PathLike[str], logdir: str | os.PathLike[str], *, run: str | None = None,
                tags: list[str] | None = None) -> BoardReport:
    """Write the graph of ``model_path`` (any format graphkit loads) into a new run folder under ``logdir``."""
    model = load(model_path, tags=tags, verify=False)
    graph = model.require_graph()
    gd = graph_pb2.GraphDef()
    gd.CopyFrom(graph.graph_def)
    stripped = 0
    for node in gd.node:
        tensor = node.attr["value"].tensor if node.op == "Const" and "value" in node.attr else None
        if tensor is not None and (node.name in graph.external
                                   or len(tensor.tensor_content) > KEEP_VALUES_BELOW):
            tensor.ClearField("tensor_content")
            stripped += 1
    name = run or f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(model.path).name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = write_graph_events(logdir, name, gd)
    return BoardReport(str(path), str(path.parent), str(logdir), len(gd.node), stripped,
                       f"tensorboard --logdir {logdir}")
