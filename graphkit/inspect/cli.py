"""``graphkit inspect``: the thin click command over graphkit.inspect."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click
import numpy as np

from graphkit.cliutil import common, emit_json, working
from graphkit.inspect import render
from graphkit.inspect.summary import (
    checkpoint_tensors,
    function_tree,
    list_nodes,
    op_counts,
    summarize,
    tensor_value,
)
from graphkit.io import Model, load


@click.command("inspect", epilog="""\b
Examples:
  graphkit inspect frozen.pb                     summary: inputs, likely outputs, ops, weights
  graphkit inspect model.ckpt-1000               checkpoint + its .meta: variables vs checkpoint
  graphkit inspect model.ckpt-1000 --tensors     the checkpoint's tensors (like inspect_checkpoint)
  graphkit inspect model.ckpt-1000 --tensor conv1/weights
  graphkit inspect saved_model/ --tag serve      a SavedModel's signatures
  graphkit inspect graph.pbtxt --nodes --match 'conv1/*' --op Conv2D
  graphkit inspect saved_model/ --nodes --op Conv2D   finds nodes inside functions too
  graphkit inspect saved_model/ --functions            the call tree (signature -> model -> If/While bodies)
  graphkit inspect frozen.pb --json | jq .outputs
  graphkit inspect deploy.prototxt --caffemodel weights.caffemodel
  graphkit inspect frozen.pb --target tflite      ops TFLite cannot run (before deploying)
""")
@click.argument("path", type=click.Path())
@click.option("--nodes", "view", flag_value="nodes", help="List nodes (name, op, inputs).")
@click.option("--ops", "view", flag_value="ops", help="The op histogram alone.")
@click.option("--tensors", "view", flag_value="tensors", help="List the checkpoint's tensors.")
@click.option("--functions", "view", flag_value="functions",
              help="The function call tree: which node calls which library function (If/While bodies, calls).")
@click.option("--tensor", "tensor", metavar="NAME", help="Print one checkpoint tensor (or Const node) value.")
@click.option("--match", metavar="GLOB", help="With --nodes: only names matching GLOB (e.g. 'conv1/*').")
@click.option("--op", "op_type", metavar="TYPE", help="With --nodes: only nodes of this op type.")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="SavedModel meta graph tags (default: serve).")
@click.option("--all", "show_all", is_flag=True, help="Do not shorten long lists.")
@click.option("--caffemodel", type=click.Path(), help="Caffe: the weights (default: the .caffemodel beside it).")
@click.option("--target", type=click.Choice(["tf", "tflite", "onnx"]),
              help="List the ops this target cannot run, with node names; exit 1 if there are any (needs TF; "
                   "onnx needs tf2onnx).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (schema in the README).")
@common
def inspect_cmd(path: str, view: str | None, tensor: str | None, match: str | None, op_type: str | None,
                tags: tuple[str, ...], show_all: bool, caffemodel: str | None, target: str | None, as_json: bool,
                quiet: bool) -> None:
    """Show what a model holds: format, inputs, likely outputs, variables, ops, signatures.

    PATH is a GraphDef (.pb or .pbtxt), a MetaGraphDef (.meta), a checkpoint (prefix, .index file, or a
    folder with a 'checkpoint' file), a SavedModel folder, a Caffe deploy .prototxt (with its .caffemodel
    found beside it or given with --caffemodel), or an .onnx / .tflite model (inputs, outputs, ops,
    weights). The format is detected from the content.
    """
    if (match or op_type) and view not in (None, "nodes"):
        raise click.UsageError("--match and --op go with --nodes")
    from graphkit.io.caffe import is_caffe_prototxt
    from graphkit.io.foreign import ONNX, TFLITE, foreign_format

    if is_caffe_prototxt(path):
        _inspect_caffe(path, caffemodel, show_all, as_json)
        return
    other = foreign_format(path) if os.path.isfile(path) else None
    if other in (ONNX, TFLITE):
        if view is not None or tensor is not None or target is not None:
            raise click.UsageError(f"an {other} model shows its summary only (no --nodes, --tensor or --target)")
        _inspect_foreign(path, other == ONNX, as_json)
        return
    model = load(path, tags=list(tags) or None)
    if target is not None:
        _inspect_target(model, path, target, as_json, quiet)
    elif tensor is not None:
        value = tensor_value(model, tensor)
        emit_json(_value_json(tensor, value)) if as_json else click.echo(render.value_text(tensor, value))
    else:
        _inspect_view(model, "nodes" if view is None and (match or op_type) else view, match, op_type, show_all,
                      as_json)


def _inspect_caffe(path: str, caffemodel: str | None, show_all: bool, as_json: bool) -> None:
    from graphkit.convert.caffe import describe_caffe
    from graphkit.inspect.caffe import caffe_text
    from graphkit.io.caffe import find_caffemodel

    info = describe_caffe(path, caffemodel or find_caffemodel(path))
    emit_json(info) if as_json else click.echo(caffe_text(info, show_all))


def _inspect_foreign(path: str, onnx: bool, as_json: bool) -> None:
    from graphkit.runtime.foreign import describe_onnx, describe_tflite

    info = describe_onnx(path) if onnx else describe_tflite(path)
    emit_json(info) if as_json else click.echo(render.foreign_text(info))


def _inspect_target(model: Model, path: str, target: str, as_json: bool, quiet: bool) -> None:
    """--target: the ops the target cannot run; exit 1 when there are any (so CI can gate on it)."""
    from typing import cast

    from graphkit.inspect.targets import target_check
    from graphkit.runtime.targets import Target

    if model.graph is None:
        raise click.UsageError("--target needs a graph (a checkpoint alone has none)")
    with working(f"checking for {target}", quiet):
        missing = target_check(model, cast(Target, target))  # click.Choice(TARGETS) checked it
    emit_json({"target": target, "unsupported": missing}) if as_json else click.echo(
        render.target_text(path, target, missing))
    if missing:
        raise click.exceptions.Exit(1)


def _inspect_view(model: Model, view: str | None, match: str | None, op_type: str | None, show_all: bool,
                  as_json: bool) -> None:
    """The summary, or one listing (--nodes, --ops, --functions, --tensors)."""
    data: Any
    text: Callable[[Any], str]
    if view == "nodes":
        data, text = list_nodes(model, match, op_type), render.nodes_text
    elif view == "ops":
        data, text = op_counts(model), render.ops_text
    elif view == "functions":
        data, text = function_tree(model), render.functions_text
    elif view == "tensors":
        if model.checkpoint is None:
            raise click.UsageError("--tensors needs a checkpoint (or a SavedModel with variables)")
        data, text = checkpoint_tensors(model.checkpoint), render.tensors_text
    else:
        data = summarize(model)
        emit_json(data) if as_json else click.echo(render.summary_text(data, 10**9 if show_all else 20))
        return
    emit_json(data) if as_json else click.echo(text(data))


def _value_json(name: str, value: np.ndarray) -> dict:
    out: dict = {"name": name, "dtype": render.dtype_text(value), "shape": list(value.shape)}
    if value.dtype != object and value.size and value.dtype.kind in "fiub":
        if value.strides and not any(value.strides):  # a splat's view: one value, never expanded
            one = float(value.reshape(-1)[0])
            out.update(min=one, max=one, mean=one, splat=True)
        else:
            numeric = value.astype(np.float64)
            out.update(min=float(numeric.min()), max=float(numeric.max()), mean=float(numeric.mean()))
    out["values"] = value.tolist() if value.size <= 100_000 else None
    if out["values"] is None:
        out["truncated"] = True
    return out
