"""How graphkit writes things for people: sizes, and error lines that stay one line. No dependencies: the
library's reports and the CLI's output share it (``graphkit.cliutil`` re-exports it for the commands)."""

from __future__ import annotations

_CONTROL = {c: f"\\x{c:02x}" for c in [*range(32), 127]}


def human_bytes(n: int | None) -> str:
    """``n`` bytes as B, KB, MB or GB (binary multiples, one decimal); ``?`` for unknown."""
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def one_line(text: str) -> str:
    """``text`` with control characters (a newline in a damaged file's node name) escaped, so an error is
    one line a terminal shows as it is."""
    return text.translate(_CONTROL)
