"""``graphkit tensorboard``: the thin click command over graphkit.board.tensorboard."""

from __future__ import annotations

import click

from graphkit.cliutil import common, emit_json


@click.command("tensorboard", epilog="""\b
Examples:
  graphkit tensorboard frozen.pb --logdir runs/
  graphkit tensorboard model.ckpt-1000 --logdir runs/ --run before-surgery
""")
@click.argument("model", type=click.Path())
@click.option("--logdir", required=True, type=click.Path(), help="TensorBoard log folder (created if needed).")
@click.option("--run", help="Run folder name (default: model name + time; never an existing folder).")
@click.option("--tag", "tags", multiple=True, help="SavedModel meta graph tags (default: serve).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@common
def tensorboard_cmd(model: str, logdir: str, run: str | None, tags: tuple[str, ...], as_json: bool,
                    quiet: bool) -> None:
    """Write a model's graph as a TensorBoard event file in a new run folder under --logdir, without
    TensorFlow, and print the command that shows it. A new folder each time keeps old events from mixing with
    new ones (TensorBoard overlays every event file of a run)."""
    from graphkit.board import tensorboard

    report = tensorboard(model, logdir, run=run, tags=list(tags) or None)
    if as_json:
        emit_json(report.__dict__)
        return
    click.echo(f"wrote {report.event_file} ({report.nodes} nodes; values of {report.stripped_constants} large "
               "constants left out)")
    click.echo(f"view it with: {report.command}")
