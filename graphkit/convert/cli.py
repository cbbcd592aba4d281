"""``graphkit convert``: the thin click command over graphkit.convert.convert."""

from __future__ import annotations

import click

from graphkit.cliutil import (
    common,
    emit_json,
    input_option,
    load_input_option,
    saved_model_options,
    tolerance_options,
    working,
)


@click.command("convert", epilog="""\b
Examples:
  graphkit convert frozen.pb model.onnx                        inputs/every clear output by default
  graphkit convert model.ckpt-1000 model.tflite --outputs softmax   frozen first
  graphkit convert deploy.prototxt model.onnx --caffemodel w.caffemodel   Caffe -> TF -> ONNX
""")
@click.argument("src", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--caffemodel", type=click.Path(), help="Caffe weights (default: the .caffemodel beside SRC).")
@click.option("--inputs", multiple=True, metavar="NAME", help="Input placeholders (default: every Placeholder).")
@click.option("--outputs", multiple=True, metavar="NAME",
              help="Outputs (default: the signature's, the Caffe net's, else every clear output of the graph).")
@click.option("--opset", type=int, help="ONNX opset (default: tf2onnx's).")
@click.option("--batch", type=int, default=1, show_default=True,
              help="Batch for unknown dims (TFLite needs fixed shapes; also the check's inputs).")
@click.option("--no-verify", is_flag=True, help="Skip the comparison with TensorFlow.")
@input_option("inputs_given", "With the check: feed this input")
@tolerance_options
@saved_model_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@common
def convert_cmd(src: str, out: str, caffemodel: str | None, inputs: tuple[str, ...], outputs: tuple[str, ...],
                opset: int | None, batch: int, no_verify: bool, inputs_given: tuple[str, ...], rtol: float,
                atol: float, signature: str | None, tags: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """Convert any model graphkit reads to ONNX (tf2onnx) or TFLite (TF's converter), by OUT's extension.

    Checkpoints and SavedModels (TF1 and TF2) are frozen first, Caffe models converted first. The result is
    checked against TensorFlow on random (or --input) inputs with onnxruntime / the TFLite interpreter before
    it is written, unless --no-verify.
    """
    from graphkit.convert import convert
    from graphkit.io.spec import split_names

    with working(f"converting to {out}", quiet):
        report = convert(src, out, caffemodel=caffemodel, inputs=split_names(inputs) or None,
                         outputs=split_names(outputs) or None, opset=opset, batch=batch, verify=not no_verify,
                         rtol=rtol, atol=atol, given=load_input_option(inputs_given), signature=signature,
                         tags=list(tags) or None)
    if as_json:
        emit_json(report.__dict__)
        return
    via = f" (via {', '.join(report.via)})" if report.via else ""
    click.echo(f"wrote {report.output_path} ({report.bytes_written:,} bytes){via}")
    click.echo(f"  inputs: {', '.join(report.inputs)}; outputs: {', '.join(report.outputs)}")
    for d in report.verified:
        click.echo(f"  verified {d.output} against TensorFlow: {d.describe()}")
