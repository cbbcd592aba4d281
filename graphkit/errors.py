"""User-facing errors.

A :class:`GraphkitError` is a problem with the user's input or request: the CLI prints it as one line
(``error: <file>: <what>; <fix>``) and exits 1. Anything else is a bug and gets a traceback (with --debug).
"""

from __future__ import annotations

import os


class GraphkitError(Exception):
    """A clear, one-line, user-facing error: names the file, the node and the fix."""

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path else message)
