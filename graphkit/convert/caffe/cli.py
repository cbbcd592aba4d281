"""``graphkit caffe2tf``: the thin click command over graphkit.convert.caffe.caffe2tf."""

from __future__ import annotations

from typing import cast

import click

from graphkit.cliutil import common, emit_json, human_bytes, progress, shape_options, tolerance_options


@click.command("caffe2tf", epilog="""\b
Examples:
  graphkit caffe2tf deploy.prototxt weights.caffemodel model.pb
  graphkit caffe2tf det1.prototxt det1.caffemodel pnet.pb --input-shape data=1,3,480,640 --layout nhwc
  graphkit caffe2tf ssd.prototxt ssd.caffemodel ssd.pb --outputs mbox_loc,mbox_conf_flatten,mbox_priorbox
""")
@click.argument("prototxt", type=click.Path())
@click.argument("caffemodel", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--layout", type=click.Choice(["nchw", "nhwc"]), default="nchw", show_default=True,
              help="nchw: input and 4-D outputs in Caffe's NCHW (one Transpose each); nhwc: none.")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=N,C,H,W",
              help="Override an input's shape (e.g. a fully convolutional net at another size).")
@click.option("--outputs", multiple=True, metavar="BLOB", help="Stop at these blobs (e.g. before DetectionOutput).")
@click.option("--text", is_flag=True, default=None, help="Write text format (also when OUT ends in .pbtxt).")
@click.option("--verify", is_flag=True, help="Compare with OpenCV's Caffe importer on a random input (needs "
              "opencv-python-headless<5 and TensorFlow).")
@tolerance_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@common
def caffe2tf_cmd(prototxt: str, caffemodel: str, out: str, layout: str, input_shapes: tuple[str, ...],
                 outputs: tuple[str, ...], text: bool | None, verify: bool, rtol: float, atol: float,
                 as_json: bool, quiet: bool) -> None:
    """Convert a Caffe deploy prototxt and caffemodel to a frozen TensorFlow GraphDef, without TensorFlow.

    The body runs NHWC (TF's CPU layout) with weights permuted at conversion time; Caffe's padding, pooling
    rounding and flatten order are reproduced exactly. Every layer that cannot be converted is listed before
    anything is written.
    """
    from graphkit.convert.caffe import Layout, caffe2tf
    from graphkit.io.spec import split_names
    from graphkit.runtime.difference import Check

    shapes = shape_options(input_shapes, "NAME=N,C,H,W")
    with progress("writing", quiet) as bar:
        report = caffe2tf(prototxt, caffemodel, out, layout=cast(Layout, layout), input_shapes=shapes or None,
                          outputs=split_names(outputs) or None, text=text, progress=bar,
                          verify=verify and Check(rtol=rtol, atol=atol))
    if as_json:
        emit_json(report.__dict__)
        return
    click.echo(f"wrote {report.output_path} ({human_bytes(report.bytes_written)})")
    click.echo("  inputs: " + ", ".join(f"{i['name']} {i['shape']}" for i in report.inputs))
    click.echo("  outputs: " + ", ".join(f"{o['name']} {o['shape']}" for o in report.outputs))
    click.echo(f"  layers converted: {report.layers_converted}; nodes: {report.nodes}; "
               f"weights: {human_bytes(report.weight_bytes)}")
    for d in report.verified:
        click.echo(f"  verified {d.output} against OpenCV: {d.describe()}")
    if report.dropped:
        click.echo(f"  training-only layers dropped: {', '.join(report.dropped)}")
