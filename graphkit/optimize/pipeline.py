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
from graphkit.io import load, parse_ref, save_graph
from graphkit.io.checks import check_importable, unknown_ops_note
from graphkit.io.graph import collector_paused
from graphkit.io.passes import topological_order
from graphkit.io.roles import VARIABLE_OPS, default_outputs
from graphkit.io.save import Progress, check_output
from graphkit.io.scan import TableIndex, write_table
from graphkit.io.spec import split_names
from graphkit.optimize.batchnorm import fold_batch_norms_in_place
from graphkit.optimize.branches import dead_branches_in_place, fold_inputs_in_place
from graphkit.optimize.cleanup import cleanup_in_place, dedupe_in_place, strip_training_in_place
from graphkit.optimize.context import (
    MAX_FOLDED_BYTES,
    TARGETS,
    Context,
    Pass,
    Target,
    Work,
    WorkPass,
    alone,
    short_value,
)
from graphkit.optimize.fold import fold_constants_in_place
from graphkit.optimize.fuse import fuse_in_place

if TYPE_CHECKING:
    import numpy as np

    from graphkit.runtime.difference import Check, Difference

IN_PLACE: dict[str, WorkPass] = {
    "strip-training": strip_training_in_place,
    "constants": fold_inputs_in_place,
    "dead-branches": dead_branches_in_place,
    "fold-constants": fold_constants_in_place,
    "fold-batch-norms": fold_batch_norms_in_place,
    "fuse": fuse_in_place,
    "dedupe": dedupe_in_place,
    "cleanup": cleanup_in_place,
}
# each pass as a function of a graph returning a new one (the library's; the pipeline runs IN_PLACE's on one
# Work, so a 100,000-node graph is indexed once and its unchanged nodes are never parsed)
PASSES: dict[str, Pass] = {name: alone(fn) for name, fn in IN_PLACE.items()}


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
    scanner: bool = True,
    progress: Progress | None = None,
) -> OptimizeReport:
    """Optimize the frozen graph at ``model_path`` for inference and write it to ``out``.

    ``passes``: a subset of :data:`PASSES` (run in that order; default all). ``inputs``: tensors that stay
    inputs (never folded, even a PlaceholderWithDefault with ``fold_defaults``). ``outputs``: what the
    result computes (default: every clear output, as other commands). ``constants``: inputs fixed to
    values. ``target``: the consumer -- ``tf`` fuses into TF's fused ops; ``tflite``, ``onnx`` and ``opencv``
    keep standard ops. ``verify``: run the original and the result in TensorFlow on the same inputs and
    compare every output (a :class:`~graphkit.runtime.difference.Check`, or True for the default one).
    ``scanner``: as for prune -- a binary GraphDef is read through the compiled scanner, its unchanged
    nodes copied as bytes (False: the protobuf path; the same result)."""
    from graphkit.surgery.core import open_indexed

    if target not in TARGETS:
        raise GraphkitError(f"--target {target}: give one of {', '.join(TARGETS)}")
    chosen = list(PASSES) if passes is None else _check_passes(passes)
    check = None
    if verify:
        from graphkit.runtime.difference import as_check  # (numpy and TF only when verifying)

        check = as_check(verify)
    with about(model_path):
        with collector_paused():  # (graph-sized tables, no cycles among them; TF's verify runs after)
            opened = open_indexed(model_path, None, out, text=text, fast=scanner,
                                  fix="give a frozen GraphDef (graphkit freeze makes one)")
            model, index = opened.model, opened.index
            check_output(out, model.files)
            variables = index.of_ops(VARIABLE_OPS)
            if variables:
                raise GraphkitError(f"the graph has variables ({', '.join(variables[:3])}); optimize works on "
                                    "frozen graphs: run graphkit freeze first")
            wanted = [parse_ref(n).node for n in split_names(outputs)] or default_outputs(index, model.meta_graph,
                                                                                           model.path)
            for name in wanted:
                index.node(name)
            specs = [n for n in split_names(inputs) if "[" in n or n.count(":") > 1 or (":" in n and not
                                                                                       n.rsplit(":", 1)[1].isdigit())]
            if specs:
                raise GraphkitError(f"--inputs {specs[0]}: optimize takes the names of inputs to keep; to cut the "
                                    "graph at a tensor, run graphkit prune --inputs SPEC first")
            kept_inputs = {parse_ref(n).node for n in split_names(inputs)}
            for name in kept_inputs:
                index.node(name)
            ctx = Context(wanted, kept_inputs, dict(constants or {}), fold_defaults, target, max_folded_bytes)
            report = OptimizeReport(os.fspath(out), target, wanted, nodes_before=len(index.inputs))
            work = Work(index, model.graph.external if model.graph is not None else {})
            for name in chosen:
                before = len(work.index.inputs)
                changes = IN_PLACE[name](work, ctx)
                report.passes.append(PassReport(name, before, len(work.index.inputs), changes))
            order = topological_order(work.index)  # new nodes were appended: every reader gets order
            if order is not None:
                report.notes.append("nodes reordered so that each comes after its inputs")
            report.constants = {k: short_value(v) for k, v in ctx.constants.items()}
            report.nodes_after = len(work.index.inputs)
            check_importable(work.index, model.path, "the optimized graph")
            report.notes += unknown_ops_note(work.index)
            if isinstance(work.index, TableIndex):
                report.bytes_written = write_table(work.index, out, order=order, progress=progress)
            else:
                report.bytes_written = save_graph(work.ordered_graph(order), out, inputs=model.files, text=text,
                                                  progress=progress)
        if check is not None:
            try:
                _verify(model.path, report, ctx, check)
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


def _verify(original_path: str | os.PathLike[str], report: OptimizeReport, ctx: Context, check: Check) -> None:
    """The input and the file written, both in TF, on the same inputs (the constants fed to the original's
    placeholders)."""
    from graphkit import runtime
    from graphkit.io.roles import graph_inputs
    from graphkit.io.save import materialize
    from graphkit.runtime.difference import difference, refuse_differences

    original = load(original_path).require_graph()
    result = load(report.output_path).require_graph()
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
