"""How far one output is from another, by graphkit's one tolerance rule (``cliutil.RTOL``/``ATOL``):
``|a - b| <= atol + rtol * |a|``, numpy's allclose with A (the original, or the reference runtime) as the
reference. ``freeze --verify``, ``caffe2tf --verify``, ``convert`` and ``compare`` all use it. numpy only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from graphkit.errors import GraphkitError
from graphkit.io.shapes import format_shape


@dataclass
class Check:
    """How a ``--verify`` compares the result with the original: inputs given by input name (the rest
    random, seeded), the size of unknown dimensions of random inputs, and the tolerance of the one rule."""

    inputs: dict[str, np.ndarray] | None = None
    batch: int = 1
    rtol: float = 1e-5
    atol: float = 1e-5


def as_check(verify: bool | Check) -> Check | None:
    """A library function's ``verify=``: False (no check), True (the default :class:`Check`), or a Check."""
    if isinstance(verify, Check):
        return verify
    return Check() if verify else None


@dataclass
class Difference:
    """One output pair. Every field is always there; those that do not apply are None: ``problem`` is set
    when the shapes or dtypes differ (and no numbers are), the error numbers only for numeric outputs (a
    string output is equal or not),
    ``max_rel_to_max`` only where the caller measures against the reference's largest value (caffe2tf)."""

    output: str  # the name in A
    b: str  # the name in B
    shape_a: list[int]
    shape_b: list[int]
    dtype_a: str
    dtype_b: str
    ok: bool
    problem: str | None = None
    max_abs: float | None = None
    max_rel: float | None = None
    worst_index: list[int] | None = None
    worst_a: float | None = None
    worst_b: float | None = None
    max_rel_to_max: float | None = None

    def describe(self) -> str:
        """The difference in a few words, for a report line or an error."""
        if self.problem is not None:
            return self.problem
        if self.max_abs is None:
            return "equal" if self.ok else "different values"
        text = f"max abs {self.max_abs:.3g}"
        if self.max_rel is not None:
            text += f", max rel {self.max_rel:.3g}"
        if self.max_rel_to_max is not None:
            text += f" ({self.max_rel_to_max:.3g} of the largest value)"
        return text


def difference(name_a: str, x: np.ndarray, name_b: str, y: np.ndarray, rtol: float, atol: float) -> Difference:
    """How far B's value is from A's: max abs/rel error, the worst element and its values, or what makes
    the two incomparable (shape, dtype); non-numeric values (strings) are equal or not."""
    x, y = np.asarray(x), np.asarray(y)
    out = Difference(name_a, name_b, list(x.shape), list(y.shape), str(x.dtype), str(y.dtype), ok=False)
    if x.shape != y.shape or x.dtype != y.dtype:
        out.problem = f"{x.dtype}{format_shape(x.shape)} vs {y.dtype}{format_shape(y.shape)}"
        return out
    if x.dtype.kind not in "fciub":  # strings: equal or not, no error numbers
        out.ok = bool(np.array_equal(x, y))
        return out
    diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
    if not diff.size:
        out.ok, out.max_abs, out.max_rel = True, 0.0, 0.0
        return out
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
    scale = np.abs(x.astype(np.float64))
    rel = diff / np.maximum(scale, np.finfo(np.float64).tiny)
    out.ok = bool(np.all(diff <= atol + rtol * scale))
    out.max_abs, out.max_rel = float(diff.max()), float(rel.max())
    out.worst_index = [int(i) for i in worst]
    out.worst_a, out.worst_b = float(x[worst]), float(y[worst])
    return out


def refuse_differences(differences: Sequence[Difference], what: str, path: str, rtol: float, atol: float,
                       after: str = "nothing was written") -> None:
    """The one ``--verify`` failure: raise, naming ``path``, when any pair is over tolerance. ``what``:
    "the frozen graph differs from the original" and the like; ``after``: what became of the output."""
    bad = [d for d in differences if not d.ok]
    if bad:
        worst = ", ".join(f"{d.output}: {d.describe()}" for d in bad)
        raise GraphkitError(f"--verify: {what} over rtol {rtol} / atol {atol}: {worst}; {after}", path)
