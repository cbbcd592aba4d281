"""``graphkit diff``: the thin click command over graphkit.diff.diff."""

from __future__ import annotations

import click

from graphkit.cliutil import common, emit_json


@click.command("diff", epilog="""\b
Examples:
  graphkit diff step-100.meta step-200.meta          # what the training loop added to the graph
  graphkit diff model.ckpt-1000 model.ckpt-2000      # which tensors moved most
  graphkit diff frozen.pb pruned.pb --nodes --json
""")
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--nodes", "show_nodes", is_flag=True, help="List every node and tensor that differs.")
@click.option("--tag", "tags", multiple=True, help="SavedModel meta graph tags (default: serve).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@common
def diff_cmd(a: str, b: str, show_nodes: bool, tags: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """What changed from A to B: nodes added, removed, renamed (same op, attrs and inputs up to the
    rename) or changed (op, inputs, device, attrs), constants with other values, functions and signatures
    added, removed or changed, checkpoint tensors that differ (the max absolute difference, largest
    first). A and B: any two graphs, meta graphs, SavedModels or checkpoints, or two Caffe deploy
    prototxts (their caffemodels beside them compared blob by blob). A summary by top-level name scope
    comes first. Exits 0 when equal and 1 when different, as diff does (an error also exits 1, with its
    one line on stderr)."""
    from graphkit.diff import diff
    from graphkit.io.scan import scanner_from_environment

    report = diff(a, b, tags=list(tags) or None, scanner=scanner_from_environment())
    if as_json:
        emit_json(report.__dict__)
    else:
        _show(report, show_nodes)
    if not report.equal:
        raise click.exceptions.Exit(1)


def _show(report: object, show_nodes: bool) -> None:
    from graphkit.diff import DiffReport

    assert isinstance(report, DiffReport)
    if report.equal:
        click.echo(f"{report.a} and {report.b} are the same")
        return
    what = "layers" if report.kind == "caffe" else "nodes"
    counts = [f"{len(report.added)} {what} added", f"{len(report.removed)} removed", f"{len(report.changed)} changed",
              f"{len(report.constants)} {'blobs' if report.kind == 'caffe' else 'constants'} changed"]
    if report.renamed:
        counts.insert(2, f"{len(report.renamed)} renamed")
    functions = (report.functions_added, report.functions_removed, report.functions_changed)
    if any(functions):
        counts.append("functions: " + ", ".join(f"{len(rows)} {kind}" for rows, kind in
                                                zip(functions, ("added", "removed", "changed"), strict=True)))
    if report.signatures_added or report.signatures_removed or report.signatures_changed:
        counts.append(f"signatures: {len(report.signatures_added)} added, {len(report.signatures_removed)} removed, "
                      f"{len({c.signature for c in report.signatures_changed})} changed")
    if report.tensors or report.tensors_added or report.tensors_removed:
        counts.append(f"checkpoint: {len(report.tensors)} tensors differ, {len(report.tensors_added)} added, "
                      f"{len(report.tensors_removed)} removed")
    click.echo(f"{report.a} -> {report.b}: " + ", ".join(counts))
    for line in report.scopes:
        click.echo(f"  {line}")
    if report.added and len(report.removed) == 0 and not report.changed:
        click.echo("  (only additions: if a training loop makes these, call graph.finalize() before it to catch it)")
    limit = None if show_nodes else 10
    for title, rows in (("added", report.added), ("removed", report.removed)):
        if rows and show_nodes:
            click.echo(f"{title}:")
            click.echo("\n".join(f"  {n}" for n in rows))
    if report.renamed and show_nodes:
        click.echo("renamed:")
        click.echo("\n".join(f"  {r.a} -> {r.b} ({r.op})" for r in report.renamed))
    if report.changed and show_nodes:
        click.echo("changed:")
        click.echo("\n".join(f"  {c.name} ({c.op}): {', '.join(c.changed)}" for c in report.changed))
    for title, names in (("functions added", report.functions_added), ("functions removed", report.functions_removed),
                         ("functions changed", report.functions_changed),
                         ("signatures added", report.signatures_added),
                         ("signatures removed", report.signatures_removed)):
        if names:
            click.echo(f"{title}: {', '.join(names)}")
    for change in report.signatures_changed:
        click.echo(f"signature {change.signature}: {change.part}: {change.a or '(none)'} -> {change.b or '(none)'}")
    for title, tensor_rows in (("constants", report.constants), ("tensors", report.tensors)):
        if tensor_rows:
            click.echo(f"{title} that differ:")
            for t in tensor_rows[:limit]:
                how = f"max abs {t.max_abs:.3g}" if t.max_abs is not None else f"{t.a} -> {t.b}"
                click.echo(f"  {t.name}: {t.what} ({how})")
            if limit is not None and len(tensor_rows) > limit:
                click.echo(f"  ... {len(tensor_rows) - limit} more (--nodes lists all)")
