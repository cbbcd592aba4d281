"""The root command: lazily loaded subcommands, fast --help that imports no command."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from graphkit.cli import COMMANDS, cli


def test_every_command_resolves_to_its_click_command(runner):
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert isinstance(command, click.Command) and command.name == name
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0 and "Examples:" in result.output, name


def test_root_help_imports_no_command_nor_numpy():
    code = ("import sys; from graphkit.cli import cli\n"
            "try:\n    cli(['--help'], prog_name='graphkit')\nexcept SystemExit:\n    pass\n"
            "loaded = [m for m in sys.modules if m.startswith(('numpy', 'graphkit.io', 'tensorflow'))]\n"
            "print('LOADED', loaded)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "LOADED []" in out and "tensorboard" in out


def test_unknown_command_is_a_usage_error(runner):
    result = runner.invoke(cli, ["freezee"])
    assert result.exit_code == 2


def test_library_names_stay_functions_whatever_is_imported():
    import importlib

    import graphkit

    for module in ("graphkit.inspect.summary", "graphkit.freeze", "graphkit.surgery.prune", "graphkit.board",
                   "graphkit.convert.caffe"):
        importlib.import_module(module)
    for name in ("prune", "remap_input", "set_batch", "rename", "splice", "caffe2tf", "tensorboard", "load"):
        assert callable(getattr(graphkit, name)), name
    from graphkit.freeze import freeze
    from graphkit.inspect import inspect

    assert callable(freeze) and callable(inspect)


def test_a_closed_stdout_is_not_an_internal_error(tmp_path):
    """``graphkit freeze ... | head -1``: the output is written; the closed pipe is no error to report."""
    import subprocess
    import sys

    from conftest import FIXTURES

    proc = subprocess.Popen([sys.executable, "-m", "graphkit", "freeze", str(FIXTURES / "tf2_module"),
                             str(tmp_path / "f.pb"), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # closed before graphkit writes its first line: every write meets EPIPE
    err = proc.stderr.read().decode()
    assert proc.wait() in (0, 141) and "internal error" not in err and "Traceback" not in err, err
    assert (tmp_path / "f.pb").stat().st_size > 0


def test_one_set_of_options(runner):
    """Issue 12.14: the same option names, meanings and defaults in every command."""
    import importlib

    from graphkit.cli import COMMANDS
    from graphkit.cliutil import ATOL, RTOL

    def command(name):
        module, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module), attr)

    def options(name):
        return {opt: p for p in command(name).params for opt in getattr(p, "opts", [])}

    for name in ("freeze", "caffe2tf", "compare", "convert"):
        opts = options(name)
        assert opts["--rtol"].default == RTOL and opts["--atol"].default == ATOL, name
    for name in ("run", "compare", "convert", "freeze"):
        assert "NAME=VALUE" in options(name)["--input"].metavar, name
    for name in ("run", "compare", "convert", "freeze", "inspect"):
        assert {"--signature", "--tag"} <= set(options(name)) or name == "inspect" and "--tag" in options(name), name
    assert "--outputs" in options("run") and "--output" in options("run")  # the old spelling still works


def test_input_literals_and_npz_everywhere(tf, runner, tmp_path):
    import numpy as np
    from conftest import FIXTURES, fixture_checkpoint

    src = fixture_checkpoint("cfv2_bn_adam")
    x = np.random.RandomState(0).randn(2, 6, 6, 2).astype(np.float32)
    np.savez(tmp_path / "feeds.npz", x=x)
    for flag in ("false", "true"):
        result = runner.invoke(cli, ["run", str(src), "--input", str(tmp_path / "feeds.npz"), "--input",
                                     f"is_training={flag}", "--outputs", "output", "--json", "--quiet"])
        assert result.exit_code == 0, str(result.stderr)
    result = runner.invoke(cli, ["freeze", str(src), str(tmp_path / "f.pb"), "--outputs", "output", "--verify",
                                 "--input", str(tmp_path / "feeds.npz"), "--input", "is_training=false", "--quiet"])
    assert result.exit_code == 0, str(result.stderr)
    result = runner.invoke(cli, ["convert", str(FIXTURES / "keras_cnn"), str(tmp_path / "k.onnx"), "--input",
                                 "nope=1.0", "--signature", "serve", "--quiet"])
    assert result.exit_code == 1 and "--input names nope, not an input" in result.stderr
    result = runner.invoke(cli, ["compare", str(FIXTURES / "keras_cnn"), str(FIXTURES / "keras_cnn"),
                                 "--signature", "serve", "--tag", "serve", "--quiet"])
    assert result.exit_code == 0, str(result.stderr)
    bad = runner.invoke(cli, ["run", str(src), "--input", "x=not-a-number", "--quiet"])
    assert bad.exit_code == 2 and "not a file, and not a number" in bad.stderr


def test_no_color_is_respected_even_on_a_terminal(runner, monkeypatch):
    """Issue 12.16: colour only on a terminal, and never with NO_COLOR."""
    from conftest import fixture_checkpoint

    args = ["inspect", str(fixture_checkpoint("mlp_ref"))]
    assert "\x1b[" in runner.invoke(cli, args, color=True).output  # a terminal: bold headings
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in runner.invoke(cli, args, color=True).output


def test_ml_dtypes_loads_only_for_its_dtypes():
    """Issue 12.16: ml_dtypes takes 0.5-0.8 s to import; inspecting a float32 model does not need it."""
    import subprocess
    import sys

    from conftest import FIXTURES, fixture_checkpoint

    code = ("import sys; from graphkit.inspect import inspect; inspect(sys.argv[1]); "
            "print('ml_dtypes' in sys.modules)")
    for path, expected in ((fixture_checkpoint("mlp_ref"), "False"), (FIXTURES / "dtypes" / "ckpt", "False")):
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected
    read = ("import sys; from graphkit.io.checkpoint import open_checkpoint; "
            "print(open_checkpoint(sys.argv[1]).read('bf16').dtype, 'ml_dtypes' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", read, str(FIXTURES / "dtypes" / "ckpt")], capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["bfloat16", "True"]


@pytest.mark.parametrize("args", [["convert", "keras_cnn", "OUT.tflite"], ["convert", "keras_cnn", "OUT.onnx"],
                                  ["run", "keras_cnn"], ["freeze", "keras_cnn", "OUT.pb", "--verify"]])
def test_quiet_silences_tensorflow_and_its_tools(tmp_path, args):
    """Issue 12.16: -q leaves stderr empty: no TF, tf2onnx or TFLite interpreter chatter."""
    import subprocess
    import sys

    from conftest import FIXTURES

    pytest.importorskip("tensorflow")
    argv = [str(FIXTURES / a) if a == "keras_cnn" else str(tmp_path / f"out{a[3:]}") if a.startswith("OUT.") else a
            for a in args]
    proc = subprocess.run([sys.executable, "-m", "graphkit", *argv, "-q"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_a_model_without_a_graph_gets_one_error_from_every_command(runner, tmp_path):
    """Issue 14.8: the "no graph here" error lived in six places, in six wordings; it is now
    Model.require_graph, so every command says the same thing, naming the file."""
    from conftest import FIXTURES

    ckpt = str(FIXTURES / "dtypes" / "ckpt")  # a checkpoint with no .meta beside it
    runs = [["inspect", ckpt, "--nodes"], ["inspect", ckpt, "--ops"], ["freeze", ckpt, str(tmp_path / "f.pb")],
            ["prune", ckpt, str(tmp_path / "p.pb")], ["tensorboard", ckpt, "--logdir", str(tmp_path / "logs")],
            ["run", ckpt]]
    for args in runs:
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith(f"error: {ckpt}: no graph here (a checkpoint without its .meta); "), args
    assert not list(tmp_path.iterdir())
