"""``graphkit optimize``: the thin click command over graphkit.optimize.optimize."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from graphkit.cliutil import (
    common,
    emit_json,
    human_bytes,
    input_option,
    load_input_option,
    progress,
    tolerance_options,
    working,
)

if TYPE_CHECKING:
    from graphkit.runtime.difference import Check


@click.command("optimize", epilog="""\b
Passes, in this order: strip-training, constants, dead-branches, fold-constants, fold-batch-norms, fuse,
dedupe, cleanup.
Examples:
  graphkit optimize frozen.pb inference.pb --verify
  graphkit optimize frozen.pb for_opencv.pb --target opencv --constant is_training=false
  graphkit optimize frozen.pb small.pb --fold-defaults --outputs softmax
  graphkit optimize frozen.pb folded.pb --passes fold-constants,cleanup
""")
@click.argument("model", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--passes", multiple=True, metavar="LIST", help="Run only these passes (comma list; default all).")
@click.option("--inputs", multiple=True, metavar="NAME", help="Tensors that stay inputs: never folded, even with "
              "--fold-defaults (repeat or use commas).")
@click.option("--outputs", multiple=True, metavar="NAME", help="Output node or tensor names (default: every clear "
              "output).")
@click.option("--constant", "constants", multiple=True, metavar="NAME=VALUE", help="Fix an input to a value "
              "(true/false, a number, a comma list, or NAME=FILE.npy); its branches then fold.")
@click.option("--fold-defaults", is_flag=True, help="Every PlaceholderWithDefault whose default is a constant "
              "becomes it (is_training, keep_prob), as optimize_for_inference's users did by hand.")
@click.option("--target", type=click.Choice(["tf", "tflite", "onnx", "opencv"]), default="tf", show_default=True,
              help="Who reads the result: tf fuses Conv2D/MatMul+BiasAdd(+Relu) into TF's fused ops (what "
                   "Grappler does at run time); tflite, onnx and opencv keep standard ops.")
@click.option("--max-folded-bytes", type=int, default=10 << 20, show_default=True,
              help="A folded constant larger than this (and than its inputs) stays unfolded, as Grappler's.")
@click.option("--text", is_flag=True, default=None, help="Write text format (also when OUT ends in .pbtxt).")
@click.option("--verify", is_flag=True, help="Run the original and the result in TensorFlow; compare every output.")
@click.option("--batch", type=int, default=1, show_default=True, help="With --verify: size of unknown dims.")
@input_option("input_files", "With --verify: feed this input")
@tolerance_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@common
def optimize_cmd(model: str, out: str, passes: tuple[str, ...], inputs: tuple[str, ...], outputs: tuple[str, ...],
                 constants: tuple[str, ...], fold_defaults: bool, target: str, max_folded_bytes: int,
                 text: bool | None, verify: bool, batch: int, input_files: tuple[str, ...], rtol: float,
                 atol: float, as_json: bool, quiet: bool) -> None:
    """Make a frozen graph inference-ready, without TensorFlow: strip training nodes, fix inputs to
    constants, drop branches a constant predicate never takes, fold constants and batch norms (into the
    convolution's weights where they can), fuse for TF, merge duplicates and remove what the outputs do
    not need. Each pass reports what it changed; --verify checks the result against the original in TF.
    """
    from contextlib import nullcontext

    from graphkit.io.scan import scanner_from_environment
    from graphkit.optimize import optimize

    with working("optimizing and verifying", quiet) if verify else nullcontext(), \
            progress("writing", quiet or verify) as bar:
        report = optimize(model, out, passes=list(passes) or None, inputs=list(inputs), outputs=list(outputs),
                          constants=_constants(constants), fold_defaults=fold_defaults,
                          target=target,  # type: ignore[arg-type]
                          max_folded_bytes=max_folded_bytes, text=text, scanner=scanner_from_environment(),
                          progress=bar,
                          verify=verify and _check(input_files, batch, rtol, atol))
    if as_json:
        emit_json(report.__dict__)
        return
    click.echo(f"wrote {report.output_path} ({human_bytes(report.bytes_written)}): {report.nodes_before} -> "
               f"{report.nodes_after} nodes")
    for step in report.passes:
        if step.changes or step.nodes_before != step.nodes_after:
            shown = "; ".join(step.changes[:3]) + (f" (+{len(step.changes) - 3})" if len(step.changes) > 3 else "")
            click.echo(f"  {step.name}: {step.nodes_before} -> {step.nodes_after} nodes" + (f": {shown}" if shown
                                                                                             else ""))
    for d in report.verified:
        click.echo(f"  verified {d.output}: {d.describe()}")
    for note in report.notes:
        click.echo(f"  note: {note}")


def _constants(given: tuple[str, ...]) -> dict:
    if not given:
        return {}  # (without importing numpy)
    from graphkit.io.arrays import load_arrays

    return load_arrays(list(given))


def _check(input_files: tuple[str, ...], batch: int, rtol: float, atol: float) -> Check:
    from graphkit.runtime.difference import Check

    return Check(load_input_option(input_files), batch, rtol, atol)
