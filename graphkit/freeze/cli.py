"""``graphkit freeze``: the thin click command over graphkit.freeze.freeze."""

from __future__ import annotations

from contextlib import nullcontext

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
from graphkit.freeze import freeze


@click.command("freeze", epilog="""\b
Examples:
  graphkit freeze model.ckpt-1000 frozen.pb --outputs softmax
  graphkit freeze train_dir/ frozen.pbtxt                      every clear output by default
  graphkit freeze --graph graph.pbtxt --checkpoint model.ckpt-1000 frozen.pb --outputs logits
  graphkit freeze saved_model/ frozen.pb --signature serving_default
  graphkit freeze keras_export/ frozen.pb --verify             TF2 SavedModel: inputs/outputs named by key
  graphkit freeze saved_model/ frozen.pb --outputs y --no-inline
  graphkit freeze model.ckpt frozen.pb --outputs out --skip-variables 'embedding/*'
""")
@click.argument("paths", nargs=-1, metavar="[SRC] OUT", type=click.Path())
@click.option("--outputs", multiple=True, metavar="NAME", help="Output node or tensor names (repeat or use commas).")
@click.option("--graph", "graph", type=click.Path(), help="GraphDef/MetaGraphDef to freeze (with --checkpoint).")
@click.option("--checkpoint", type=click.Path(), help="Checkpoint holding the variables' values.")
@click.option("--signature", help="SavedModel signature whose outputs are the outputs (default: serving_default).")
@click.option("--inline/--no-inline", default=True, show_default=True,
              help="TF2 SavedModels: inline (Stateful)PartitionedCall into a flat graph, as TF's "
                   "convert_variables_to_constants_v2 does; If/While/Case and _implements calls stay functions.")
@click.option("--tag", "tags", multiple=True, help="SavedModel meta graph tags (default: serve).")
@click.option("--keep-variables", multiple=True, metavar="GLOB", help="Freeze only these variables (names or globs).")
@click.option("--skip-variables", multiple=True, metavar="GLOB", help="Leave these variables as variables.")
@click.option("--keep-devices", is_flag=True, help="Keep device placements (cleared by default, as freeze_graph does).")
@click.option("--text", is_flag=True, default=None, help="Write text format (also when OUT ends in .pbtxt).")
@click.option("--verify", is_flag=True, help="Run original (restored) and frozen graph in TensorFlow; compare outputs.")
@click.option("--batch", type=int, default=1, show_default=True, help="With --verify: size of unknown dims.")
@input_option("input_files", "With --verify: feed this input")
@tolerance_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@common
def freeze_cmd(paths: tuple[str, ...], outputs: tuple[str, ...], graph: str | None, checkpoint: str | None,
               signature: str | None, tags: tuple[str, ...], keep_variables: tuple[str, ...],
               skip_variables: tuple[str, ...], keep_devices: bool, text: bool | None, verify: bool, batch: int,
               input_files: tuple[str, ...], rtol: float, atol: float, inline: bool, as_json: bool,
               quiet: bool) -> None:
    """Turn a checkpoint-backed graph into a frozen GraphDef (variables become constants), without TensorFlow.

    SRC is a checkpoint (prefix, .index, or folder with a 'checkpoint' file) with its .meta, a .meta file,
    or a SavedModel folder (TF1, or TF2: tf.saved_model.save, Keras model.export); or give --graph and
    --checkpoint. Like TF's freeze_graph, the graph is first pruned to what the outputs need, and devices
    are cleared. Variables read inside tf.cond/tf.while_loop functions are frozen there too.

    A TF2 SavedModel's signature (--signature) becomes a graph whose Placeholders are named by its input
    keys and whose outputs are Identity nodes named by its output keys (--outputs picks some of those keys).
    """
    from graphkit.runtime.difference import Check

    src, out = _src_and_out(paths, graph)
    # --verify runs TensorFlow for seconds with no bytes to count: a status line with the elapsed time
    with working("freezing and verifying", quiet) if verify else nullcontext(), \
            progress("freezing", quiet or verify) as bar:
        report = freeze(src, out, outputs=list(outputs), graph=graph, checkpoint=checkpoint, signature=signature,
                        tags=list(tags) or None, keep_variables=list(keep_variables),
                        skip_variables=list(skip_variables), keep_devices=keep_devices, text=text or None,
                        inline=inline, progress=bar,
                        verify=verify and Check(load_input_option(input_files), batch, rtol, atol))
    if as_json:
        emit_json(report.__dict__)
        return
    click.echo(f"wrote {report.output_path} ({human_bytes(report.bytes_written)})")
    if report.signature:
        click.echo(f"  signature {report.signature}: inputs {_keys(report.input_names)}; "
                   f"outputs {_keys(report.output_names)}")
        if report.inlined:
            click.echo(f"  calls inlined: {len(report.inlined)}")
        if report.init_op:
            click.echo(f"  hash tables kept: run '{report.init_op}' once before inference")
        for kept in report.kept_calls:
            click.echo(f"  call kept: {kept}")
    else:
        click.echo(f"  outputs: {', '.join(report.outputs)}")
    click.echo(f"  nodes: {report.nodes_before} -> {report.nodes_after}")
    click.echo(f"  variables frozen: {len(report.frozen)} ({human_bytes(report.weight_bytes)})")
    if report.specialized:
        click.echo(f"  functions specialized: {', '.join(report.specialized)}")
    if report.dropped_updates:
        click.echo(f"  state updates dropped: {', '.join(report.dropped_updates)} (a frozen graph has no state)")
    for d in report.verified:
        click.echo(f"  verified {d.output}: {d.describe()}")
    if report.kept_variables:
        click.echo(f"  left as variables: {', '.join(report.kept_variables)} (the output still needs a checkpoint)")
    for note in report.notes:
        click.echo(f"  note: {note}")


def _keys(mapping: dict[str, str]) -> str:
    """``key`` where a node took the signature key's name, ``key -> node`` where it could not."""
    return ", ".join(k if k == v else f"{k} -> {v}" for k, v in mapping.items())


def _src_and_out(paths: tuple[str, ...], graph: str | None) -> tuple[str | None, str]:
    """SRC OUT, or OUT alone with --graph (then --checkpoint names the weights)."""
    if len(paths) == 2:
        return paths[0], paths[1]
    if len(paths) == 1 and graph is not None:
        return None, paths[0]
    if not paths:
        raise click.UsageError("Missing argument 'OUT' (the frozen graph to write).")
    if len(paths) == 1:
        raise click.UsageError("Missing argument 'OUT': give SRC OUT, or --graph GRAPH --checkpoint CKPT OUT.")
    raise click.UsageError(f"Got {len(paths)} paths; give SRC OUT (or OUT alone with --graph).")
