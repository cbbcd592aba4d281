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


def renamed_keys(names: list[str], rename: Callable[[str], str], reserved: frozenset[str] = frozenset()) -> dict[
        str, str]:
    """Each checkpoint key under its new name; two keys ending with one name, an empty name or a
    ``reserved`` one are errors (the first five listed)."""
    new = {name: rename(name) for name in names}
    clashes: dict[str, list[str]] = {}
    for old, target in new.items():
        clashes.setdefault(target, []).append(old)
    bad = {target: olds for target, olds in clashes.items() if len(olds) > 1}
    if bad:
        shown = "; ".join(f"{', '.join(olds)} -> {target}" for target, olds in list(bad.items())[:5])
        raise GraphkitError(f"two tensors would get one name: {shown}")
    empty = [old for old, target in new.items() if not target or target in reserved]
    if empty:
        raise GraphkitError(f"the rename gives {empty[0]!r} an empty or reserved name")
    return new
