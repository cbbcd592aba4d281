"""Edit a V2 checkpoint without TensorFlow: keep a subset of its tensors and give them other names, as
TF users do with a Saver's ``var_list`` list or dict ("restore a subset", "the variables have different
names, e.g. because you added a scope prefix"). The weights are copied from the source's data files as
stored (checked against their CRC on the way); nothing is written when anything is wrong.

Order: ``keep`` globs (only matching keys stay; default all), then ``drop`` globs, then
``strip_optimizer`` (:func:`optimizer_state`), then the rename -- ``strip_prefix``, each ``replace``
REGEX=REPL, ``add_prefix`` -- as ``graphkit rename`` renames nodes.
Globs that match nothing and two keys ending with one name are errors, listed at once. TF2 object-based
checkpoints (with ``_CHECKPOINTABLE_OBJECT_GRAPH``) are refused for now: their object graph would have to
change with the keys.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field

from graphkit.errors import GraphkitError, about
from graphkit.io.bundle import copied, write_bundle
from graphkit.io.checkpoint import OBJECT_GRAPH_KEY
from graphkit.io.loader import load
from graphkit.io.names import renamer


@dataclass
class EditReport:
    """What edit-checkpoint did; the CLI prints it and tests assert it."""

    output_prefix: str
    tensors_before: int
    tensors_after: int
    kept: list[str] = field(default_factory=list)  # source keys written (under their new names)
    dropped: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)  # source key -> new key, for those that changed
    optimizer: list[str] = field(default_factory=list)  # keys strip_optimizer dropped (also in dropped)
    bytes_written: int = 0
    files: list[str] = field(default_factory=list)


def edit_checkpoint(src: str | os.PathLike[str], out: str | os.PathLike[str], *, keep: list[str] | None = None,
                    drop: list[str] | None = None, strip_optimizer: bool = False, strip_prefix: str | None = None,
                    add_prefix: str | None = None, replace: list[tuple[str, str]] | None = None) -> EditReport:
    """Write the edited checkpoint at prefix ``out`` (``out.index`` + ``out.data-00000-of-00001``)."""
    with about(src):
        model = load(src, meta=False)  # the tensors alone: a damaged .meta beside them is not our business
        ckpt = model.checkpoint
        if ckpt is None:
            raise GraphkitError("not a checkpoint (give its prefix, .index file or folder)", src)
        if ckpt.version != 2:
            raise GraphkitError("a V1 checkpoint: only V2 checkpoints (.index + .data files) can be edited", src)
        names = [t.name for t in ckpt.tensors()]
        if OBJECT_GRAPH_KEY in names:
            raise GraphkitError("a TF2 object-based checkpoint: editing it needs its object graph rewritten, "
                                "which graphkit does not do yet; edit the TF1 name-based checkpoint instead", src)
        chosen = _select(names, keep or [], drop or [], src)
        state: list[str] = []
        if strip_optimizer:
            shapes = {t.name: t.shape for t in ckpt.tensors()}
            kept_by_name = {n for n in chosen if any(fnmatch.fnmatchcase(n, g) and not _glob(g) for g in keep or [])}
            state = [n for n in optimizer_state(chosen, shapes) if n not in kept_by_name]
            chosen = [n for n in chosen if n not in state]
            if not chosen:
                raise GraphkitError("nothing left to write: every tensor is optimizer state", src)
        rename = renamer(strip_prefix, add_prefix, replace)
        new = {name: rename(name) for name in chosen}
        clashes: dict[str, list[str]] = {}
        for old, target in new.items():
            clashes.setdefault(target, []).append(old)
        bad = {target: olds for target, olds in clashes.items() if len(olds) > 1}
        if bad:
            shown = "; ".join(f"{', '.join(olds)} -> {target}" for target, olds in list(bad.items())[:5])
            raise GraphkitError(f"two tensors would get one name: {shown}", src)
        empty = [old for old, target in new.items() if not target]
        if empty:
            raise GraphkitError(f"the rename leaves {empty[0]!r} with an empty name", src)
        files = write_bundle(out, [copied(ckpt, old, target) for old, target in new.items()], inputs=ckpt.files)
        return EditReport(os.fspath(out), len(names), len(chosen), kept=chosen,
                          dropped=[n for n in names if n not in new],
                          renamed={old: target for old, target in new.items() if old != target}, optimizer=state,
                          bytes_written=sum(f.stat().st_size for f in files), files=[os.fspath(f) for f in files])


def _select(names: list[str], keep: list[str], drop: list[str], src: str | os.PathLike[str]) -> list[str]:
    """The keys ``keep`` (default: all) and not ``drop``; every glob must match something."""
    unmatched = [g for g in [*keep, *drop] if not any(fnmatch.fnmatchcase(n, g) for n in names)]
    if unmatched:
        raise GraphkitError(f"no tensor matches {', '.join(repr(g) for g in unmatched)} (see graphkit inspect "
                            "--tensors)", src)
    chosen = [n for n in names if not keep or any(fnmatch.fnmatchcase(n, g) for g in keep)]
    chosen = [n for n in chosen if not any(fnmatch.fnmatchcase(n, g) for g in drop)]
    if not chosen:
        raise GraphkitError("nothing left to write: --keep/--drop leave no tensor", src)
    return chosen


# the slot names TF1's optimizers give their per-variable state (tf.compat.v1.train.*Optimizer's
# _get_or_make_slot(var, ..., slot_name, self._name): a variable "<var>/<optimizer name>[_N]")
_SLOT = re.compile(r"^(?P<var>.+)/(Adam|Momentum|RMSProp|Adagrad|AdagradDA|Adadelta|Ftrl|ProximalAdagrad|"
                   r"ProximalGradientDescent|Adamax|Nadam)(_\d+)?$")
# the optimizers' non-slot state, and the step counter
_OPTIMIZER_SCALARS = frozenset({"beta1_power", "beta2_power", "global_step"})


def optimizer_state(names: list[str], shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """The keys that are optimizer state: a slot is ``<var>/<optimizer>[_N]`` where ``<var>`` is a key of
    the checkpoint with the same shape (so a variable that merely ends in "/Adam" is not taken for one);
    Adam's ``beta1_power``/``beta2_power`` count when Adam slots exist, ``global_step`` always."""
    present = set(names)
    slots = []
    for name in names:
        match = _SLOT.match(name)
        if match and match["var"] in present and shapes.get(match["var"]) == shapes.get(name):
            slots.append(name)
    adam = any(re.search(r"/Adam(_\d+)?$", s) for s in slots)
    scalars = [n for n in names if n == "global_step" or (adam and n in ("beta1_power", "beta2_power"))]
    return slots + [n for n in scalars if n not in slots and n in _OPTIMIZER_SCALARS]


def _glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")
