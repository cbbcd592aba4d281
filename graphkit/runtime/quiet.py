"""TensorFlow's chatter, off only when asked: ``graphkit`` (the CLI) asks; a library caller chooses.

TF writes C++ start-up notes (absl, oneDNN, CUDA stubs) and dozens of log lines per failed run straight to
file descriptor 2, which no Python setting silences, and Python deprecation notes about graphkit's own
calls. With :func:`quiet_tensorflow` on, TF's log level is set to errors and fd 2 is sent to /dev/null
while TF is imported and while a session runs (graphkit's own errors are raised, not printed, so nothing
the user needs is lost). Off, TensorFlow speaks as it always does. No dependencies."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

_QUIET = False


def quiet_tensorflow(on: bool = True) -> None:
    """Keep TensorFlow's own output off stderr from now on (``on=False``: let it speak again)."""
    global _QUIET
    _QUIET = on
    if on:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def is_quiet() -> bool:
    return _QUIET


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """With :func:`quiet_tensorflow` on, file descriptor 2 goes to /dev/null meanwhile; else nothing."""
    if not _QUIET:
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
