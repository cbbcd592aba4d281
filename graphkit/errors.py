"""User-facing errors.

A :class:`GraphkitError` is a problem with the user's input or request: the CLI prints it as one line
(``error: <file>: <what>; <fix>``) and exits 1. Anything else is a bug and gets a traceback (with --debug).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


class GraphkitError(Exception):
    """A clear, one-line, user-facing error: names the file, the node and the fix."""

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path else message)


@contextmanager
def about(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Errors raised inside without a file name get ``path``: every message names the file it is about."""
    try:
        yield
    except GraphkitError as exc:
        if exc.path is None and path is not None:
            raise _with_path(exc, path) from None
        raise


def _with_path(exc: GraphkitError, path: str | os.PathLike[str]) -> GraphkitError:
    exc.path = os.fspath(path)
    exc.args = (f"{exc.path}: {exc.message}",)
    return exc
