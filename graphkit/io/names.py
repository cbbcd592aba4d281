"""Name functions shared by the commands that rename (graph nodes, checkpoint keys)."""

from __future__ import annotations

import re
from collections.abc import Callable

from graphkit.errors import GraphkitError


def renamer(strip_prefix: str | None = None, add_prefix: str | None = None,
            replace: list[tuple[str, str]] | None = None) -> Callable[[str], str]:
    """The name function: strip the prefix (where present), then each REGEX=REPL, then add the prefix."""
    patterns = []
    for pattern, repl in replace or []:
        try:
            patterns.append((re.compile(pattern), repl))
        except re.error as exc:
            raise GraphkitError(f"--replace '{pattern}': not a regular expression ({exc})") from None

    def rename(name: str) -> str:
        if strip_prefix and name.startswith(strip_prefix):
            name = name[len(strip_prefix):]
        for regex, repl in patterns:
            name = regex.sub(repl, name)
        return (add_prefix or "") + name

    return rename
