"""``graphkit run`` and ``graphkit compare``: thin click commands over graphkit.runtime.runner."""

from __future__ import annotations

from typing import Any

import click

from graphkit.cliutil import (
    assignments,
    common,
    emit_json,
    input_option,
    load_input_option,
    saved_model_options,
    shape_options,
    tolerance_options,
    working,
)
from graphkit.errors import GraphkitError


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


@click.command("run", epilog="""\b
Examples:
  graphkit run frozen.pb                                  random inputs, the likely output
  graphkit run frozen.pb --input x=image.npy --outputs softmax --save out.npz
  graphkit run model.ckpt-1000 --input is_training=false --input keep_prob=1.0
  graphkit run saved_model/ --signature serving_default --batch 4 --json
  graphkit run model.ckpt-1000 --outputs logits           variables restored from the checkpoint
  graphkit run model.onnx                                  through onnxruntime
""")
@click.argument("model", type=click.Path())
@input_option()
@click.option("--outputs", "--output", "outputs", multiple=True, metavar="NAME",
              help="Outputs (default: the signature's, else every clear output of the graph).")
@saved_model_options
@click.option("--batch", type=int, default=1, show_default=True, help="Size of unknown dims of random inputs.")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=DIMS", help="Shape of a random input.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random inputs.")
@click.option("--save", type=click.Path(), help="Write the outputs (and inputs, as input:NAME) to an .npz.")
@click.option("--allow-unsafe-ops", is_flag=True, help="Run graphs with file-system or code-running ops.")
@click.option("--json", "as_json", is_flag=True, help="Print the outputs' summary as JSON.")
@common
def run_cmd(model: str, inputs: tuple[str, ...], outputs: tuple[str, ...], signature: str | None,
            tags: tuple[str, ...], batch: int, input_shapes: tuple[str, ...], seed: int, save: str | None,
            allow_unsafe_ops: bool, as_json: bool, quiet: bool) -> None:
    """Run a model once and print each output's name, shape, dtype, min/max/mean.

    MODEL is any format graphkit reads (frozen GraphDef, checkpoint with its graph, SavedModel signature) or
    an .onnx file. Inputs not given are random by dtype and shape (--batch and --input-shape for unknown
    dims). Graphs whose outputs need file-system or code-running ops (ReadFile, WriteFile, PyFunc...) are
    refused unless --allow-unsafe-ops.
    """
    import numpy as np

    from graphkit.io.spec import split_names
    from graphkit.runtime.runner import make_feeds, open_runnable, run, summarize_values

    runnable = open_runnable(model, signature=signature, tags=list(tags) or None,
                             outputs=split_names(outputs) or None, allow_unsafe_ops=allow_unsafe_ops)
    feeds = make_feeds(runnable, load_input_option(inputs), batch=batch, seed=seed, shapes=shape_options(input_shapes))
    if runnable.left_out and not quiet:
        click.echo(f"note: outputs {', '.join(runnable.outputs)}; not taken: {'; '.join(runnable.left_out[:5])}"
                   " (name outputs with --outputs)", err=True)
    with working("running", quiet):
        values = run(runnable, feeds)  # run_model in two steps: the feeds are saved and described too
    if save:
        from graphkit.io.save import atomic_write

        with atomic_write(save, [model]) as fh:
            arrays: dict[str, Any] = {**values, **{f"input:{k}": v for k, v in feeds.items()}}
            np.savez(fh, **arrays)
    summary = summarize_values(values)
    if as_json:
        emit_json({"model": model, "inputs": summarize_values(feeds), "outputs": summary})
        return
    for entry in summary:
        click.echo(f"{entry['name']}  {entry['dtype']}{entry['shape']}  min {_fmt(entry.get('min'))}  "
                   f"max {_fmt(entry.get('max'))}  mean {_fmt(entry.get('mean'))}")


@click.command("compare", epilog="""\b
Examples:
  graphkit compare model.ckpt-1000 frozen.pb --rtol 1e-6      a freeze changed nothing
  graphkit compare frozen.pb model.onnx --pair softmax=prob
  graphkit compare a.pb b.pb --input x=batch.npy --json
""")
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@input_option("inputs", "Feed this input to both")
@click.option("--pair", "pairs", multiple=True, metavar="A_OUT=B_OUT", help="Compare these outputs (default: by name).")
@tolerance_options
@click.option("--batch", type=int, default=1, show_default=True, help="Size of unknown dims of random inputs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random inputs.")
@saved_model_options
@click.option("--allow-unsafe-ops", is_flag=True, help="Run graphs with file-system or code-running ops.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@common
def compare_cmd(a: str, b: str, inputs: tuple[str, ...], pairs: tuple[str, ...], rtol: float, atol: float,
                batch: int, seed: int, signature: str | None, tags: tuple[str, ...], allow_unsafe_ops: bool,
                as_json: bool, quiet: bool) -> None:
    """Run two models on the same inputs and compare every output pair: max abs/rel error, the worst
    element, dtype and shape. Exits 1 when any pair is over tolerance (|a - b| <= atol + rtol * |a|, numpy's
    allclose with A as the reference)."""
    from graphkit.runtime.runner import compare

    paired = assignments(pairs, "A_OUT=B_OUT", "--pair")
    with working("comparing", quiet):
            result = compare(a, b, given=load_input_option(inputs), pairs=paired or None, rtol=rtol, atol=atol,
                         batch=batch, seed=seed, signature=signature, tags=list(tags) or None,
                         allow_unsafe_ops=allow_unsafe_ops)
    if as_json:
        emit_json(result.__dict__)
    else:
        for r in result.results:
            status = "ok" if r.ok else "DIFFERENT"
            head = r.output + (f" ~ {r.b}" if r.b != r.output else "")
            if r.problem is not None:
                click.echo(f"{status:9s} {head}: {r.problem}")
            else:
                worst = f" at {r.worst_index} ({r.worst_a:.6g} vs {r.worst_b:.6g})" if r.worst_index is not None \
                    else ""
                click.echo(f"{status:9s} {head}: max abs {_fmt(r.max_abs)}, max rel {_fmt(r.max_rel)}{worst}")
    if not result.ok:
        raise GraphkitError(f"outputs differ over rtol {rtol} / atol {atol}", b)
