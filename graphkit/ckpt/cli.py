"""``graphkit edit-checkpoint``: the thin click command over graphkit.ckpt.edit_checkpoint."""

from __future__ import annotations

import click

from graphkit.ckpt.edit import CastTarget
from graphkit.cliutil import common, emit_json, human_bytes, replace_pairs


@click.command("edit-checkpoint", epilog="""\b
Examples:
  graphkit edit-checkpoint model.ckpt-1000 encoder.ckpt --keep 'encoder/*'
  graphkit edit-checkpoint model.ckpt-1000 renamed.ckpt --strip-prefix tower_0/ --add-prefix net/
  graphkit edit-checkpoint model.ckpt-1000 slim.ckpt --strip-optimizer --graph model.ckpt-1000.meta
  graphkit edit-checkpoint vgg_16.ckpt init.ckpt --add-prefix encoder/ --merge model_init.ckpt
  graphkit edit-checkpoint tf2_ckpt-5 weights.ckpt --strip-optimizer --cast float16
""")
@click.argument("src", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--keep", "keep", multiple=True, metavar="GLOB", help="Keep only the tensors matching (repeatable).")
@click.option("--drop", "drop", multiple=True, metavar="GLOB", help="Drop the tensors matching (repeatable).")
@click.option("--strip-optimizer", is_flag=True, help="Drop optimizer state: slots (<var>/Adam, /Momentum, "
              "/RMSProp...), beta1_power/beta2_power, global_step (unless --keep names it).")
@click.option("--strip-prefix", help="Remove this prefix where keys have it (as rename does for nodes).")
@click.option("--add-prefix", help="Add this prefix to every key.")
@click.option("--replace", "replace", multiple=True, metavar="REGEX=REPL", help="Python re.sub on each key.")
@click.option("--cast", type=click.Choice(["float16", "bfloat16"]), help="Cast floating tensors (float32, "
              "float64...) to this dtype, rounding to nearest even as TF's Cast does.")
@click.option("--merge", "merge", type=click.Path(), metavar="CKPT", help="Also write this checkpoint's "
              "tensors, as they are; where it has a key of the edited SRC, SRC's tensor replaces it (same shape "
              "and dtype required). For a pre-trained sub-network: SRC is the sub-network, --add-prefix puts it "
              "in its scope, CKPT is the bigger model's checkpoint.")
@click.option("--graph", "graph", type=click.Path(), metavar="G.meta", help="A TF1 .meta whose saver is made to "
              "match (renamed keys, dropped keys and their restore nodes), written as OUT.meta, so "
              "import_meta_graph + Saver.restore works with the pair.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@common
def edit_checkpoint_cmd(src: str, out: str, keep: tuple[str, ...], drop: tuple[str, ...], strip_optimizer: bool,
                        strip_prefix: str | None, add_prefix: str | None, replace: tuple[str, ...],
                        cast: CastTarget | None, merge: str | None, graph: str | None, as_json: bool,
                        quiet: bool) -> None:
    """Write a checkpoint holding a subset of SRC's tensors, under other names if asked, without
    TensorFlow: what a Saver's var_list list or dict does at restore time, done once on the files. OUT is
    the new checkpoint's prefix (OUT.index + OUT.data-00000-of-00001). Order: --keep, --drop,
    --strip-optimizer, then the rename (--strip-prefix, --replace, --add-prefix), --cast, --merge. The
    weights are copied as stored, their CRC checked.

    TF1 name-based checkpoints are edited by key. In TF2 object-based checkpoints the object graph is
    rewritten too, so tf.train.Checkpoint.restore still works: --strip-optimizer drops the optimizer's
    objects and slot variables, --strip-prefix/--add-prefix move objects (model/ becomes the root, or the
    root goes under net/); --replace is refused there.
    """
    from graphkit.ckpt import edit_checkpoint

    report = edit_checkpoint(src, out, keep=list(keep), drop=list(drop), strip_optimizer=strip_optimizer,
                             strip_prefix=strip_prefix, add_prefix=add_prefix, replace=replace_pairs(replace),
                             cast=cast, merge=merge, graph=graph)
    if as_json:
        emit_json(report.__dict__)
        return
    click.echo(f"wrote {report.output_prefix} ({human_bytes(report.bytes_written)}): {len(report.kept)} of "
               f"{report.tensors_before} tensors, {len(report.renamed)} renamed"
               + (f", {len(report.cast)} cast to {report.cast_to}" if report.cast else "")
               + (f", {len(report.merged)} merged in, {len(report.replaced)} replaced" if report.merged or
                  report.replaced else ""))
    if report.graph_out:
        click.echo(f"wrote {report.graph_out}: its saver matches"
                   + (f" ({len(report.saver_dropped)} keys no longer restored)" if report.saver_dropped else ""))
    if report.dropped:
        shown = ", ".join(report.dropped[:8]) + (f" (+{len(report.dropped) - 8})" if len(report.dropped) > 8 else "")
        click.echo(f"  dropped: {shown}")
    for note in report.notes:
        click.echo(f"  note: {note}")
