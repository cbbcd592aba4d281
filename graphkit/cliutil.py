"""Pieces every graphkit command shares: the error policy, common options, JSON output."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import click

from graphkit.errors import GraphkitError
from graphkit.text import human_bytes, one_line  # noqa: F401 -- the commands' formatting, re-exported

_DEBUG = "graphkit.debug"


class GraphkitGroup(click.Group):
    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        import os

        if os.environ.get("NO_COLOR"):  # https://no-color.org: no ANSI colour, even on a terminal
            extra["color"] = False
        return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        from graphkit.runtime.quiet import quiet_tensorflow

        quiet_tensorflow()  # the CLI's output is graphkit's: TF's notes would bury it (a library caller chooses)
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except GraphkitError as exc:
            if ctx.meta.get(_DEBUG):
                raise
            click.echo(click.style("error: ", fg="red", bold=True) + one_line(str(exc)), err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:  # stdout closed early (| head): the work is done, nothing more to say
            import os
            import sys

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            ctx.exit(141)
        except Exception as exc:
            if ctx.meta.get(_DEBUG):
                raise
            what = f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"
            click.echo(click.style("error: ", fg="red", bold=True) + one_line(what), err=True)
            ctx.exit(1)


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[_DEBUG] = True
    return value


def common(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command takes."""
    func = click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
                        help="Show the traceback of an error.")(func)
    func = click.option("-q", "--quiet", is_flag=True, help="No progress bar or notes on stderr.")(func)
    return func


# One tolerance rule for every check (freeze --verify, caffe2tf --verify, compare, convert):
# |a - b| <= atol + rtol * |a|, numpy's allclose with A (the original) as the reference.
RTOL = 1e-5
ATOL = 1e-5


def tolerance_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--rtol`` and ``--atol``, the same defaults and meaning in every command."""
    func = click.option("--atol", type=float, default=ATOL, show_default=True,
                        help="Absolute tolerance: |a - b| <= atol + rtol * |a|.")(func)
    func = click.option("--rtol", type=float, default=RTOL, show_default=True,
                        help="Relative tolerance (A, the original, is the reference).")(func)
    return func


def input_option(dest: str = "inputs", what: str = "Feed this input") -> Callable[..., Any]:
    """``--input``, the same in every command that runs a graph (io/arrays.py); ``dest`` names the
    parameter it fills."""
    return click.option("--input", dest, multiple=True, metavar="NAME=FILE.npy|FILE.npz|NAME=VALUE",
                        help=f"{what}: an .npy, every array of an .npz by name, or a literal "
                             "(is_training=false, keep_prob=1.0, thresholds=0.6,0.7,0.7).")


def saved_model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--signature`` and ``--tag`` for every command that reads a SavedModel."""
    func = click.option("--tag", "tags", multiple=True, help="SavedModel meta graph tags (default: serve).")(func)
    func = click.option("--signature", help="SavedModel signature (default: serving_default).")(func)
    return func


def load_input_option(items: tuple[str, ...]) -> dict:
    """The arrays of ``--input``; a bad one is a usage error of --input."""
    from graphkit.io.arrays import load_arrays

    try:
        return load_arrays(list(items))
    except GraphkitError as exc:
        raise click.BadParameter(exc.message, param_hint="--input") from None


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


class ProgressBar:
    """A one-line bar on a terminal's stderr, drawn only once the work has taken ``delay`` seconds
    (so quick commands print nothing) and at most every ``interval`` seconds."""

    def __init__(self, label: str, stream: IO[str], delay: float = 1.0, interval: float = 0.1) -> None:
        self.label, self.stream, self.delay, self.interval = label, stream, delay, interval
        self.start = time.monotonic()
        self.last = 0.0
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.start < self.delay or (now - self.last < self.interval and done < total):
            return
        self.last = now
        frac = done / total if total else 1.0
        filled = int(frac * 30)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {frac:4.0%} "
                          f"{_mb(done)}/{_mb(total)} MB")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f}" if n >= 10e6 else f"{n / 1e6:.1f}"


@contextmanager
def progress(label: str, quiet: bool, stream: IO[str] | None = None) -> Iterator[Callable[[int, int], None] | None]:
    """The ``progress(done, total)`` callback for library functions: a bar when stderr is a terminal and
    not --quiet, else None."""
    stream = stream or sys.stderr
    if quiet or not stream.isatty():
        yield None
        return
    bar = ProgressBar(label, stream)
    try:
        yield bar
    finally:
        bar.close()


@contextmanager
def working(label: str, quiet: bool, stream: IO[str] | None = None, delay: float = 2.0) -> Iterator[None]:
    """A status line with the elapsed time on a terminal's stderr, for work with no byte count to show
    (TensorFlow running, converting): drawn once the work has taken ``delay`` seconds, redrawn each
    second, cleared at the end. Nothing when --quiet or stderr is not a terminal."""
    import threading

    stream = stream or sys.stderr
    if quiet or not stream.isatty():
        yield
        return
    import os

    start = time.monotonic()
    done = threading.Event()
    drawn = threading.Event()
    # a copy of the terminal's descriptor: TF's C++ notes are kept off fd 2 meanwhile (quiet_stderr)
    terminal = os.fdopen(os.dup(stream.fileno()), "w")

    def draw() -> None:
        if done.wait(delay):
            return
        while not done.is_set():
            terminal.write(f"\r{label} ... {time.monotonic() - start:.0f} s")
            terminal.flush()
            drawn.set()
            done.wait(1.0)

    thread = threading.Thread(target=draw, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if drawn.is_set():
            terminal.write("\r\033[K")
        terminal.close()


def replace_pairs(items: tuple[str, ...]) -> list[tuple[str, str]]:
    """``--replace REGEX=REPL`` options (split at the first ``=``), in order; a malformed one is a usage error."""
    pairs = []
    for item in items:
        regex, sep, repl = item.partition("=")
        if not sep or not regex:
            raise click.BadParameter(f"'{item}' is not REGEX=REPL", param_hint="--replace")
        pairs.append((regex, repl))
    return pairs


def assignments(items: tuple[str, ...], what: str, option: str) -> dict[str, str]:
    """``KEY=VALUE`` options (``--map OLD=NEW``...) as a dict; a malformed one is a usage error."""
    from graphkit.io.spec import split_assignment

    out = {}
    for item in items:
        try:
            key, value = split_assignment(item, what)
        except GraphkitError as exc:
            raise click.BadParameter(str(exc), param_hint=option) from None
        out[key] = value
    return out


def shape_options(items: tuple[str, ...], what: str = "NAME=DIMS",
                  option: str = "--input-shape") -> dict[str, tuple[int, ...]]:
    """``NAME=DIMS`` options (``x=?,224,224,3``) parsed with the one dims parser; a bad one is a usage error."""
    from graphkit.io.spec import parse_dims

    out = {}
    for name, dims in assignments(items, what, option).items():
        try:
            out[name] = parse_dims(dims)
        except GraphkitError as exc:
            raise click.BadParameter(str(exc), param_hint=option) from None
    return out
