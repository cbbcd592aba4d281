"""``graphkit optimize``: a frozen graph made inference-ready, TF-free -- the passes of TF's
``optimize_for_inference``, the Graph Transform Tool's ``fold_constants``/``fold_batch_norms``/
``remove_nodes``/``merge_duplicate_nodes`` and Grappler's constant folding, arithmetic and remapping, on the
file. Each pass is a function of its own module returning a new graph (``Pass``); they run in the order of
:data:`PASSES`, each reporting what it changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from graphkit.errors import GraphkitError, about
from graphkit.io import Graph, GraphIndex, load, parse_ref, save_graph
from graphkit.io.checks import check_importable, unknown_ops_note
from graphkit.io.passes import sort_topologically_in_place
from graphkit.io.roles import VARIABLE_OPS, default_outputs
from graphkit.io.save import Progress, check_output
from graphkit.io.spec import split_names
from graphkit.optimize.batchnorm import fold_batch_norms
from graphkit.optimize.branches import dead_branches, fold_inputs
from graphkit.optimize.cleanup import cleanup, dedupe, strip_training
from graphkit.optimize.context import MAX_FOLDED_BYTES, TARGETS, Context, Pass, Target, short_value
from graphkit.optimize.fold import fold_constants
from graphkit.optimize.fuse import fuse

if TYPE_CHECKING:
    import numpy as np

    from graphkit.runtime.difference import Check, Difference

PASSES: dict[str, Pass] = {
    "strip-training": strip_training,
    "constants": fold_inputs,
    "dead-branches": dead_branches,
    "fold-constants": fold_constants,
    "fold-batch-norms": fold_batch_norms,
    "fuse": fuse,
    "dedupe": dedupe,
    "cleanup": cleanup,
}


@dataclass
class PassReport:
    name: str
    nodes_before: int
    nodes_after: int
    changes: list[str] = field(default_factory=list)  # one line per thing changed


@dataclass
class OptimizeReport:
    output_path: str
    target: str
    outputs: list[str]
    nodes_before: int = 0
    nodes_after: int = 0
    passes: list[PassReport] = field(default_factory=list)
    constants: dict[str, str] = field(default_factory=dict)  # input -> the value it was fixed to
    verified: list[Difference] = field(default_factory=list)  # per output, with verify
    notes: list[str] = field(default_factory=list)
    bytes_written: int = 0


def optimize(
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    passes: list[str] | None = None,
    inputs: list[str] | None = None,
    outputs: list[str] | None = None,
    constants: dict[str, np.ndarray] | None = None,
    fold_defaults: bool = False,
    target: Target = "tf",
    max_folded_bytes: int = MAX_FOLDED_BYTES,
    verify: bool | Check = False,
    text: bool | None = None,
    progress: Progress | None = None,
) -> OptimizeReport:
    """Optimize the frozen graph at ``model_path`` for inference and write it to ``out``.

    ``passes``: a subset of :data:`PASSES` (run in that order; default all). ``inputs``: tensors that stay
    inputs (never folded, even a PlaceholderWithDefault with ``fold_defaults``). ``outputs``: what the
    result computes (default: every clear output, as other commands). ``constants``: inputs fixed to
    values. ``target``: the consumer -- ``tf`` fuses into TF's fused ops; ``tflite``, ``onnx`` and ``opencv``
    keep standard ops. ``verify``: run the original and the result in TensorFlow on the same inputs and
    compare every output (a :class:`~graphkit.runtime.difference.Check`, or True for the default one)."""
    from graphkit.runtime.difference import as_check

    if target not in TARGETS:
        raise GraphkitError(f"--target {target}: give one of {', '.join(TARGETS)}")
    chosen = list(PASSES) if passes is None else _check_passes(passes)
    check = as_check(verify)
    with about(model_path):
        model = load(model_path)
        graph = model.require_graph("give a frozen GraphDef (graphkit freeze makes one)")
        check_output(out, model.files)
        variables = [n.name for n in graph.graph_def.node if n.op in VARIABLE_OPS]
        if variables:
            raise GraphkitError(f"the graph has variables ({', '.join(variables[:3])}); optimize works on frozen "
                                "graphs: run graphkit freeze first")
        index = GraphIndex(graph.graph_def)
        wanted = [parse_ref(n).node for n in split_names(outputs)] or default_outputs(index, model.meta_graph,
                                                                                       model.path)
        for name in wanted:
            index.node(name)
        specs = [n for n in split_names(inputs) if "[" in n or n.count(":") > 1 or (":" in n and not
                                                                                   n.rsplit(":", 1)[1].isdigit())]
        if specs:
            raise GraphkitError(f"--inputs {specs[0]}: optimize takes the names of inputs to keep; to cut the graph "
                                "at a tensor, run graphkit prune --inputs SPEC first")
        kept_inputs = {parse_ref(n).node for n in split_names(inputs)}
        for name in kept_inputs:
            index.node(name)
        ctx = Context(wanted, kept_inputs, dict(constants or {}), fold_defaults, target, max_folded_bytes)
        report = OptimizeReport(os.fspath(out), target, wanted, nodes_before=len(graph.graph_def.node))
        result = graph
        for name in chosen:
            before = len(result.graph_def.node)
            result, changes = PASSES[name](result, ctx)
            report.passes.append(PassReport(name, before, len(result.graph_def.node), changes))
        if sort_topologically_in_place(result.graph_def):  # new nodes were appended: every reader gets order
            report.notes.append("nodes reordered so that each comes after its inputs")
        report.constants = {k: short_value(v) for k, v in ctx.constants.items()}
        report.nodes_after = len(result.graph_def.node)
        checked = GraphIndex(result.graph_def)
        check_importable(checked, model.path, "the optimized graph")
        report.notes += unknown_ops_note(checked)
        report.bytes_written = save_graph(result, out, inputs=model.files, text=text, progress=progress)
        if check is not None:
            try:
                _verify(graph, result, report, ctx, check)
            except BaseException:
                os.unlink(out)  # a result that does not compute the same is not left behind
                raise
        return report


def _check_passes(passes: list[str]) -> list[str]:
    names = [p for item in passes for p in item.split(",") if p.strip()]
    unknown = [p for p in names if p not in PASSES]
    if unknown:
        raise GraphkitError(f"unknown pass {', '.join(unknown)}; the passes are {', '.join(PASSES)}")
    return [p for p in PASSES if p in names]


def _verify(original: Graph, result: Graph, report: OptimizeReport, ctx: Context, check: Check) -> None:
    """Both graphs in TF on the same inputs (the constants fed to the original's placeholders)."""
    from graphkit import runtime
    from graphkit.io.roles import graph_inputs
    from graphkit.io.save import materialize
    from graphkit.runtime.difference import difference, refuse_differences

    feeds = runtime.random_feeds(graph_inputs(result.graph_def), check.batch, 0, check.inputs)
    original_feeds = dict(feeds)
    for name, value in ctx.constants.items():
        original_feeds[f"{name}:0"] = value
    theirs = runtime.run_graph_def(materialize(original).SerializeToString(), original_feeds, ctx.outputs,
                                   report.output_path)
    ours = runtime.run_graph_def(materialize(result).SerializeToString(), feeds, ctx.outputs, report.output_path)
    report.verified = [difference(o, a, o, b, check.rtol, check.atol)
                       for o, a, b in zip(ctx.outputs, theirs, ours, strict=True)]
    refuse_differences(report.verified, "the optimized graph differs from the original", report.output_path,
                       check.rtol, check.atol)


__all__ = ["PASSES", "OptimizeReport", "PassReport", "optimize"]
