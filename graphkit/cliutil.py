"""Pieces every graphkit command shares: the error policy, common options, JSON output."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from graphkit.errors import GraphkitError

_DEBUG = "graphkit.debug"


class GraphkitGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except GraphkitError as exc:
            if ctx.meta.get(_DEBUG):
                raise
            click.echo(click.style("error: ", fg="red", bold=True) + str(exc), err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            if ctx.meta.get(_DEBUG):
                raise
            click.echo(click.style("error: ", fg="red", bold=True)
                       + f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
                       err=True)
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
    raise TypeError(f"cannot serialise {type(value).__name__}")
