"""The ``graphkit`` command: a root click group; each command parses options and calls a library function.

Errors: a GraphkitError prints one line (``error: <file>: <what>; <fix>``) and exits 1; usage errors exit
2 (click); anything else is a bug: one line too, and the traceback with --debug.
"""

from __future__ import annotations

import click

from graphkit import __version__
from graphkit.cliutil import GraphkitGroup, _set_debug


@click.group(cls=GraphkitGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def _register() -> None:
    from graphkit.board.cli import tensorboard_cmd
    from graphkit.convert.caffe.cli import caffe2tf_cmd
    from graphkit.convert.cli import convert_cmd
    from graphkit.freeze.cli import freeze_cmd
    from graphkit.inspect.cli import inspect_cmd
    from graphkit.runtime.cli import compare_cmd, run_cmd
    from graphkit.surgery.cli import COMMANDS

    cli.add_command(inspect_cmd)
    cli.add_command(freeze_cmd)
    for command in COMMANDS:
        cli.add_command(command)
    cli.add_command(caffe2tf_cmd)
    cli.add_command(tensorboard_cmd)
    cli.add_command(run_cmd)
    cli.add_command(compare_cmd)
    cli.add_command(convert_cmd)


_register()


def main() -> None:
    import gc

    # graph-sized work allocates millions of small objects that live to the end: collect rarely
    gc.set_threshold(200_000, 20, 100)
    cli(prog_name="graphkit")


if __name__ == "__main__":
    main()
