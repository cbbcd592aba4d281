"""The thin click commands over graphkit.surgery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from graphkit.cliutil import assignments, common, emit_json, human_bytes, progress, replace_pairs
from graphkit.io.shapes import format_shape
from graphkit.surgery.core import SurgeryReport


def _shared(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")(func)
    func = click.option("--text", is_flag=True, default=None,
                        help="Write text format (also when OUT ends in .pbtxt).")(func)
    func = click.option("--tag", "tags", multiple=True, help="SavedModel meta graph tags (default: serve).")(func)
    return common(func)


def _show(report: SurgeryReport, as_json: bool) -> None:
    if as_json:
        emit_json(report.__dict__)
        return
    click.echo(f"wrote {report.output_path} ({human_bytes(report.bytes_written)})")
    if report.checkpoint_files:
        click.echo(f"  checkpoint: {', '.join(report.checkpoint_files)} (keys renamed; the saver reads them)")
    click.echo(f"  nodes: {report.nodes_before} -> {report.nodes_after} ({len(report.removed)} removed, "
               f"{len(report.added)} added, {len(report.rewritten)} rewritten)")
    if report.inputs:
        click.echo("  inputs: " + ", ".join(f"{i['name']} {i['dtype']}{format_shape(i['shape'])}"
                                            for i in report.inputs))
    if report.outputs:
        click.echo("  outputs: " + ", ".join(report.outputs))
    for note in report.notes:
        click.echo(f"  note: {note}")


OUTPUT_HELP = "OUT: .pb/.pbtxt GraphDef, .meta MetaGraphDef, or a new folder (SavedModel input)."


@click.command("prune", epilog=f"""\b
{OUTPUT_HELP}
Examples:
  graphkit prune frozen.pb small.pb --outputs softmax
  graphkit prune frozen.pb cut.pb --outputs softmax --inputs Mul:0 --input-shape Mul:0=?,299,299,3
  graphkit prune model.ckpt.meta infer.pb --outputs logits --strip-training
""")
@click.argument("model", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--outputs", multiple=True, metavar="NAME", help="Output nodes to keep (default: the likely outputs).")
@click.option("--inputs", multiple=True, metavar="TENSOR[:DTYPE][DIMS]",
              help="Cut here: the tensor becomes a Placeholder (dtype/shape from its producer unless given).")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=DIMS",
              help="Shape of a cut input, e.g. x=?,224,224,3.")
@click.option("--strip-training", is_flag=True, help="Also drop CheckNumerics, Identity pass-throughs, Assert/Print.")
@_shared
def prune_cmd(model: str, out: str, outputs: tuple[str, ...], inputs: tuple[str, ...], input_shapes: tuple[str, ...],
              strip_training: bool, tags: tuple[str, ...], text: bool | None, as_json: bool, quiet: bool) -> None:
    """Keep only what the outputs need (TF's extract_sub_graph: data, control and colocation inputs).

    With --inputs the graph is also cut at those tensors, like TF's strip_unused: each becomes a Placeholder
    and everything above it that only fed it goes away.
    """
    from graphkit.io.scan import scanner_from_environment
    from graphkit.surgery import prune

    with progress("writing", quiet) as bar:
        report = prune(model, out, outputs=list(outputs), inputs=list(inputs),
                       input_shapes=assignments(input_shapes, "NAME=DIMS", "--input-shape"),
                       strip_training=strip_training, tags=list(tags) or None, text=text,
                       scanner=scanner_from_environment(), progress=bar)
    _show(report, as_json)


@click.command("remap-input", epilog=f"""\b
{OUTPUT_HELP}
Examples:
  graphkit remap-input inception.pb float_in.pb --placeholder 'Mul:0=input:float32[?,299,299,3]'
  graphkit remap-input model.pb out.pb --constant keep_prob=one.npy
  graphkit remap-input model.pb out.pb --map dropout/mul:0=fc1/Relu:0
""")
@click.argument("model", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--placeholder", "placeholders", multiple=True, metavar="OLD=NAME[:DTYPE][DIMS]",
              help="Replace tensor OLD by a new Placeholder (DIMS like ?,299,299,3).")
@click.option("--map", "maps", multiple=True, metavar="OLD=NEW",
              help="Rewire OLD's readers to tensor NEW (^OLD=^NEW for control).")
@click.option("--constant", "constants", multiple=True, metavar="OLD=FILE.npy", help="Replace OLD by a Const.")
@click.option("--outputs", multiple=True, metavar="NAME", help="Outputs to keep (default: the likely outputs).")
@_shared
def remap_cmd(model: str, out: str, placeholders: tuple[str, ...], maps: tuple[str, ...], constants: tuple[str, ...],
              outputs: tuple[str, ...], tags: tuple[str, ...], text: bool | None, as_json: bool, quiet: bool) -> None:
    """Replace tensors of a graph, like tf.import_graph_def(input_map=...): what only fed them is removed.

    As in TF, a key nothing reads is an error, and so is a replacement whose dtype differs from what the
    old tensor's readers take.
    """
    from graphkit.io.arrays import load_arrays
    from graphkit.io.scan import scanner_from_environment
    from graphkit.surgery import remap_input

    arrays = load_arrays([f"{k}={v}" for k, v in assignments(constants, "OLD=FILE.npy", "--constant").items()])
    with progress("writing", quiet) as bar:
        report = remap_input(model, out,
                             placeholders=assignments(placeholders, "OLD=NAME:DTYPE[DIMS]", "--placeholder"),
                             maps=assignments(maps, "OLD=NEW", "--map"), constants=arrays, outputs=list(outputs),
                             tags=list(tags) or None, text=text, scanner=scanner_from_environment(),
                             progress=bar)
    _show(report, as_json)


@click.command("set-batch", epilog=f"""\b
{OUTPUT_HELP}
Examples:
  graphkit set-batch frozen.pb dynamic.pb              batch dimension unknown
  graphkit set-batch frozen.pb batch8.pb --size 8
""")
@click.argument("model", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--size", type=int, help="Fix the batch to N (default: unknown).")
@click.option("--inputs", multiple=True, metavar="NAME",
              help="Inputs to change (default: those with a batch: rank >= 2, no ExpandDims adding one, the same B "
                   "as the others; the rest are listed).")
@_shared
def set_batch_cmd(model: str, out: str, size: int | None, inputs: tuple[str, ...], tags: tuple[str, ...],
                  text: bool | None, as_json: bool, quiet: bool) -> None:
    """Make dim 0 of the inputs unknown (or --size N), and the constants that hard-code the old batch
    (Reshape shapes, Fill/Tile/BroadcastTo shapes, slice bounds, splat constants) follow. What cannot be proved
    safe is listed by node name."""
    from graphkit.surgery import set_batch

    with progress("writing", quiet) as bar:
        report = set_batch(model, out, size=size, inputs=list(inputs), tags=list(tags) or None, text=text,
                           progress=bar)
    _show(report, as_json)


@click.command("rename", epilog=f"""\b
{OUTPUT_HELP}
Examples:
  graphkit rename frozen.pb clean.pb --strip-prefix import/
  graphkit rename frozen.pb net.pb --add-prefix net/
  graphkit rename saved_model/ renamed_model/ --replace '^tower_0/=gpu/'
  graphkit rename model.ckpt-1000.meta net.meta --add-prefix net/ --checkpoint-out net.ckpt
""")
@click.argument("model", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--strip-prefix", help="Remove this prefix where names have it (e.g. import/).")
@click.option("--add-prefix", help="Add this prefix to every name.")
@click.option("--replace", "replace", multiple=True, metavar="REGEX=REPL", help="Python re.sub on each name.")
@click.option("--checkpoint-out", type=click.Path(), metavar="CKPT", help="Also write the TF1 checkpoint beside "
              "the .meta with its keys renamed the same way, and make the saver read them (OUT must be a .meta).")
@_shared
def rename_cmd(model: str, out: str, strip_prefix: str | None, add_prefix: str | None, replace: tuple[str, ...],
               checkpoint_out: str | None, tags: tuple[str, ...], text: bool | None, as_json: bool,
               quiet: bool) -> None:
    """Rename nodes consistently: names, data and control inputs, colocations, and a MetaGraphDef's or
    SavedModel's signatures, collections and saver. Two nodes ending with one name is an error. The
    saver keeps reading the old checkpoint keys (as import_graph_def's prefix leaves them) unless
    --checkpoint-out writes a renamed checkpoint."""
    from graphkit.surgery import rename

    with progress("writing", quiet) as bar:
        report = rename(model, out, strip_prefix=strip_prefix, add_prefix=add_prefix, replace=replace_pairs(replace),
                        tags=list(tags) or None, text=text, progress=bar, checkpoint_out=checkpoint_out)
    _show(report, as_json)


@click.command("splice", epilog=f"""\b
{OUTPUT_HELP}
Examples:
  graphkit splice preprocess.pb model.pb out.pb --connect normalized:0=input:0
  graphkit splice a.pb b.pb out.pb --connect features:0=x:0 --prefix-b head/
""")
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--connect", multiple=True, required=True, metavar="A_TENSOR=B_TENSOR",
              help="B reads A's tensor instead of its own (names as in each file).")
@click.option("--prefix-a", help="Prefix A's node names.")
@click.option("--prefix-b", help="Prefix B's node names.")
@_shared
def splice_cmd(a: str, b: str, out: str, connect: tuple[str, ...], prefix_a: str | None, prefix_b: str | None,
               tags: tuple[str, ...], text: bool | None, as_json: bool, quiet: bool) -> None:
    """Compose two graphs: A feeds B (import_graph_def's input_map across graphs). All of A is kept; B loses
    what only fed the connected tensors. A name in both graphs is an error unless prefixes separate them."""
    from graphkit.surgery import splice

    with progress("writing", quiet) as bar:
        report = splice(a, b, out, connect=assignments(connect, "A_TENSOR=B_TENSOR", "--connect"), prefix_a=prefix_a,
                        prefix_b=prefix_b, tags=list(tags) or None, text=text, progress=bar)
    _show(report, as_json)


