"""The ``graphkit`` command: a root click group; each command parses options and calls a library function.

Errors: a GraphkitError prints one line (``error: <file>: <what>; <fix>``) and exits 1; usage errors exit
2 (click); anything else is a bug: one line too, and the traceback with --debug.
"""

from __future__ import annotations

import click

from graphkit import __version__
from graphkit.cliutil import GraphkitGroup, _set_debug

# command -> (module:attribute, one-line help). Commands are imported only when run, so `graphkit --help` and
# `graphkit <command> --help` never load the others (tests/test_cli.py checks every entry resolves).
COMMANDS = {
    "inspect": ("graphkit.inspect.cli:inspect_cmd", "What a model holds: inputs, outputs, variables, ops."),
    "freeze": ("graphkit.freeze.cli:freeze_cmd", "Checkpoint-backed graph to a frozen GraphDef (no TF)."),
    "prune": ("graphkit.surgery.cli:prune_cmd", "Keep what the outputs need; cut at inputs."),
    "remap-input": ("graphkit.surgery.cli:remap_cmd", "Replace tensors (import_graph_def's input_map)."),
    "set-batch": ("graphkit.surgery.cli:set_batch_cmd", "Make the batch dimension unknown, or fix it."),
    "rename": ("graphkit.surgery.cli:rename_cmd", "Strip, add or regex-replace node names everywhere."),
    "splice": ("graphkit.surgery.cli:splice_cmd", "Compose two graphs: A feeds B."),
    "caffe2tf": ("graphkit.convert.caffe.cli:caffe2tf_cmd", "Caffe model to a frozen TF GraphDef (no TF)."),
    "run": ("graphkit.runtime.cli:run_cmd", "Run a model on given or random inputs."),
    "compare": ("graphkit.runtime.cli:compare_cmd", "Run two models on the same inputs; compare outputs."),
    "convert": ("graphkit.convert.cli:convert_cmd", "Any model to ONNX or TFLite, verified."),
    "tensorboard": ("graphkit.board.cli:tensorboard_cmd", "A model's graph as a TensorBoard event file."),
    "edit-checkpoint": ("graphkit.ckpt.cli:edit_checkpoint_cmd", "A checkpoint's subset, renamed (no TF)."),
    "diff": ("graphkit.diff.cli:diff_cmd", "What changed between two models (no TF)."),
    "optimize": ("graphkit.optimize.cli:optimize_cmd", "Frozen graph made inference-ready: fold, fuse, clean (no TF)."),
}


class LazyGroup(GraphkitGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        import importlib

        module, attr = COMMANDS[name][0].split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, short) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="graphkit")
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
              help="Show the traceback of an error.")
def cli() -> None:
    """TensorFlow model graphs without the pain: inspect, freeze, prune, remap, convert.

    graphkit reads checkpoints, meta graphs, GraphDefs and SavedModels without TensorFlow.

    \b
    Example:
      graphkit inspect model.ckpt-1000          # inputs, likely outputs, variables
    """


def main() -> None:
    import gc

    # graph-sized work allocates millions of small objects that live to the end: collect rarely
    gc.set_threshold(200_000, 20, 100)
    cli(prog_name="graphkit")


if __name__ == "__main__":
    main()
