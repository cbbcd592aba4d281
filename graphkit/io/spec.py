"""The one parser for tensor specs (``name:float32[?,224,224,3]``) and dimension lists (``?,299,299,3``).

Every command that takes a new input's name, dtype or shape uses it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from graphkit.errors import GraphkitError
from graphkit.io import dtypes
from graphkit.io.graph import TensorRef, parse_ref

_SPEC = re.compile(r"^(?P<name>[^\[\]]+?)(?::(?P<dtype>[A-Za-z][A-Za-z0-9_]*))?(?:\[(?P<dims>[^\[\]]*)\])?$")


@dataclass(frozen=True)
class TensorSpec:
    """A tensor reference with an optional dtype and shape (-1 = unknown dim; None = not given)."""

    ref: TensorRef
    dtype: int | None = None
    shape: tuple[int, ...] | None = None

    @property
    def name(self) -> str:
        return self.ref.node


def parse_dims(text: str) -> tuple[int, ...]:
    """``?,299,299,3`` / ``[-1,299,299,3]`` / ``N,C,H,W`` numbers -> dims; ``?`` or ``-1`` is unknown; ``[]`` or
    an empty string is a scalar."""
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    if not body.strip():
        return ()
    dims = []
    for part in body.replace("x", ",").split(","):
        part = part.strip()
        if part in ("?", "-1", "None", "none"):
            dims.append(-1)
        elif part.isdigit():
            dims.append(int(part))
        else:
            raise GraphkitError(f"'{text}' is not a shape (expected dims like ?,224,224,3; '?' or -1 = unknown)")
    return tuple(dims)


def parse_spec(text: str) -> TensorSpec:
    """``NAME[:PORT][:DTYPE][[DIMS]]``, e.g. ``input:float32[?,299,299,3]``, ``DecodeJpeg:0``, ``x[1,8]``."""
    match = _SPEC.match(text.strip())
    if not match:
        raise GraphkitError(f"'{text}' is not a tensor spec (expected NAME[:DTYPE][DIMS], e.g. "
                            "input:float32[?,224,224,3])")
    code = dtypes.from_name(match["dtype"]) if match["dtype"] else None
    shape = parse_dims(match["dims"]) if match["dims"] is not None else None
    ref = parse_ref(match["name"])
    if ref.control:
        raise GraphkitError(f"'{text}': a tensor spec names a tensor, not a control input (^NAME)")
    return TensorSpec(ref, code, shape)


def split_names(items: Iterable[str] | None) -> list[str]:
    """Names or specs given repeated or comma-separated (``a,b`` or ``--x a --x b``); commas inside
    ``[...]`` dims belong to the spec."""
    out: list[str] = []
    for item in items or []:
        depth, start = 0, 0
        for i, ch in enumerate(item):
            depth += (ch == "[") - (ch == "]")
            if ch == "," and depth == 0:
                out.append(item[start:i])
                start = i + 1
        out.append(item[start:])
    return [p.strip() for p in out if p.strip()]


def split_assignment(text: str, what: str) -> tuple[str, str]:
    """``KEY=VALUE`` (as in ``--map OLD=NEW``), both sides non-empty."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise GraphkitError(f"'{text}' is not {what}")
    return key.strip(), value.strip()
