"""``graphkit edit-checkpoint``: the thin click command over graphkit.ckpt.edit_checkpoint."""

from __future__ import annotations

import click

from graphkit.cliutil import common, emit_json, human_bytes, replace_pairs


@click.command("edit-checkpoint", epilog="""\b
Examples:
  graphkit edit-checkpoint model.ckpt-1000 encoder.ckpt --keep 'encoder/*'
  graphkit edit-checkpoint model.ckpt-1000 renamed.ckpt --strip-prefix tower_0/ --add-prefix net/
  graphkit edit-checkpoint model.ckpt-1000 slim.ckpt --strip-optimizer
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
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@common
def edit_checkpoint_cmd(src: str, out: str, keep: tuple[str, ...], drop: tuple[str, ...], strip_optimizer: bool,
                        strip_prefix: str | None, add_prefix: str | None, replace: tuple[str, ...], as_json: bool,
                        quiet: bool) -> None:
    """Write a checkpoint holding a subset of SRC's tensors, under other names if asked, without
    TensorFlow: what a Saver's var_list list or dict does at restore time, done once on the files. OUT is
    the new checkpoint's prefix (OUT.index + OUT.data-00000-of-00001). Order: --keep, --drop,
    --strip-optimizer, then the rename (--strip-prefix, --replace, --add-prefix). The weights are copied as
    stored, their CRC checked.
    """
    from graphkit.ckpt import edit_checkpoint

    report = edit_checkpoint(src, out, keep=list(keep), drop=list(drop), strip_optimizer=strip_optimizer,
                             strip_prefix=strip_prefix,
                             add_prefix=add_prefix, replace=replace_pairs(replace))
    if as_json:
        emit_json(report.__dict__)
        return
    click.echo(f"wrote {report.output_prefix} ({human_bytes(report.bytes_written)}): {report.tensors_after} of "
               f"{report.tensors_before} tensors, {len(report.renamed)} renamed")
    if report.dropped:
        shown = ", ".join(report.dropped[:8]) + (f" (+{len(report.dropped) - 8})" if len(report.dropped) > 8 else "")
        click.echo(f"  dropped: {shown}")
