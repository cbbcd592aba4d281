"""Edit a checkpoint without TensorFlow: keep a subset of its tensors and give them other names, as TF
users do with a Saver's ``var_list`` list or dict ("restore a subset", "the variables have different
names, e.g. because you added a scope prefix"), drop the optimizer's state, cast to 16-bit floats, merge
in a pre-trained sub-network. The weights are copied from the source's data files as stored (checked
against their CRC on the way); nothing is written when anything is wrong.

Order: ``keep`` globs (only matching keys stay; default all), then ``drop`` globs, then
``strip_optimizer``, then the rename -- ``strip_prefix``, each ``replace`` REGEX=REPL, ``add_prefix`` --
as ``graphkit rename`` renames nodes, then ``cast``; then ``merge``: the edited tensors are written with
every tensor of the other checkpoint they do not replace. Globs that match nothing, two keys ending with
one name and replaced tensors of another shape are errors, listed at once.

TF2 object-based checkpoints (``_CHECKPOINTABLE_OBJECT_GRAPH``) get their object graph rewritten with the
keys (:mod:`graphkit.io.objects`), so ``tf.train.Checkpoint.restore`` still works; a rename there must be a
move of objects (``--strip-prefix``/``--add-prefix`` of object names). ``graph``: a TF1 ``.meta`` whose
saver is made to match (:mod:`graphkit.io.saver`), written as ``OUT.meta``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from graphkit.errors import GraphkitError, about
from graphkit.io import crc, dtypes
from graphkit.io.bundle import BundleTensor, Part, copied, encoded, write_bundle
from graphkit.io.checkpoint import OBJECT_GRAPH_KEY, Checkpoint
from graphkit.io.checks import check_importable, unknown_ops_note
from graphkit.io.graph import FileSlice, Graph
from graphkit.io.loader import load
from graphkit.io.names import renamed_keys, renamer
from graphkit.io.objects import ObjectGraph, edit_object_graph, optimizer_keys, optimizer_nodes
from graphkit.io.save import check_output, save_graph
from graphkit.io.saver import retarget_saver_in_place, saver_keys
from graphkit.proto import meta_graph_pb2

if TYPE_CHECKING:
    import numpy as np

CastTarget = Literal["float16", "bfloat16"]
_CAST_CODES = {"float16": dtypes.DT_HALF, "bfloat16": dtypes.DT_BFLOAT16}
FLOATING = frozenset({dtypes.DT_FLOAT, dtypes.DT_DOUBLE, dtypes.DT_HALF, dtypes.DT_BFLOAT16})


@dataclass
class EditReport:
    """What edit-checkpoint did; the CLI prints it and tests assert it."""

    output_prefix: str
    kind: Literal["tf1", "tf2"]  # name-based, or object-based (its object graph rewritten)
    tensors_before: int  # the source's tensors (TF2: without the object graph)
    tensors_after: int  # tensors written, merged ones included
    kept: list[str] = field(default_factory=list)  # source keys written (under their new names)
    dropped: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)  # source key -> new key, for those that changed
    optimizer: list[str] = field(default_factory=list)  # keys strip_optimizer dropped (also in dropped)
    cast: list[str] = field(default_factory=list)  # output keys cast to ``cast_to``
    cast_to: str | None = None
    merged: list[str] = field(default_factory=list)  # keys of the merged checkpoint written as they were
    replaced: list[str] = field(default_factory=list)  # keys of the merged checkpoint the edited source replaced
    graph_out: str | None = None  # OUT.meta, when a graph was given
    saver_dropped: list[str] = field(default_factory=list)  # keys the graph's saver no longer restores
    notes: list[str] = field(default_factory=list)
    bytes_written: int = 0
    files: list[str] = field(default_factory=list)


def edit_checkpoint(src: str | os.PathLike[str], out: str | os.PathLike[str], *, keep: list[str] | None = None,
                    drop: list[str] | None = None, strip_optimizer: bool = False, strip_prefix: str | None = None,
                    add_prefix: str | None = None, replace: list[tuple[str, str]] | None = None,
                    cast: CastTarget | None = None, merge: str | os.PathLike[str] | None = None,
                    graph: str | os.PathLike[str] | None = None) -> EditReport:
    """Write the edited checkpoint at prefix ``out`` (``out.index`` + ``out.data-00000-of-00001``, and
    ``out.meta`` when ``graph`` is given)."""
    if cast is not None and cast not in _CAST_CODES:
        raise GraphkitError(f"--cast {cast}: give float16 or bfloat16")
    with about(src):
        ckpt = _open(src)
        tracked = ckpt.object_graph()
        names = [t.name for t in ckpt.tensors() if t.name != OBJECT_GRAPH_KEY]
        chosen = _select(names, keep or [], drop or [], src)
        state: list[str] = []
        if strip_optimizer:
            explicit = {n for n in chosen if any(fnmatch.fnmatchcase(n, g) and not _glob(g) for g in keep or [])}
            found = optimizer_keys(tracked) if tracked is not None else optimizer_state(
                chosen, {t.name: t.shape for t in ckpt.tensors()})
            state = [n for n in chosen if n in set(found) and n not in explicit]
            chosen = [n for n in chosen if n not in state]
            if not chosen:
                raise GraphkitError("nothing left to write: every tensor is optimizer state", src)
        edited_objects: ObjectGraph | None = None
        if tracked is not None:
            if replace:
                raise GraphkitError("--replace on a TF2 object-based checkpoint: TF2 restores by object path, "
                                    "not by key; move objects with --strip-prefix/--add-prefix, or rename "
                                    "the attribute in Python")
            edited = edit_object_graph(tracked, chosen, drop_nodes=optimizer_nodes(tracked) if state else (),
                                       strip_prefix=strip_prefix, add_prefix=add_prefix)
            edited_objects, new = edited.graph, edited.keys
        else:
            new = renamed_keys(chosen, renamer(strip_prefix, add_prefix, replace), frozenset({OBJECT_GRAPH_KEY}))
        tensors = [copied(ckpt, old, target) for old, target in new.items()]
        if edited_objects is not None:
            graph_bytes = edited_objects.SerializeToString(deterministic=True)
            tensors.append(BundleTensor.of(OBJECT_GRAPH_KEY, _scalar(graph_bytes)))
        report = EditReport(os.fspath(out), "tf2" if tracked is not None else "tf1", len(names), 0, kept=chosen,
                            dropped=[n for n in names if n not in new],
                            renamed={old: target for old, target in new.items() if old != target}, optimizer=state)
        inputs = list(ckpt.files)
        if merge is not None:
            other = _open(merge)
            inputs += other.files
            with about(merge):
                tensors += _merged(other, tensors, report, tracked is not None)
        if cast is not None:
            tensors = [_cast(t, cast, report) for t in tensors]
        new_meta = None
        meta_path = Path(f"{out}.meta")
        meta_inputs: list[str | os.PathLike[str]] = list(inputs)
        if graph is not None:
            if tracked is not None:
                raise GraphkitError("--graph is for TF1 name-based checkpoints; a TF2 checkpoint's object graph "
                                    "is rewritten with it")
            if cast is not None:
                raise GraphkitError("--graph with --cast: the graph's variables would no longer match the "
                                    "checkpoint's dtypes; cast the frozen graph instead")
            with about(graph):
                new_meta, model_graph = _retargeted_graph(graph, names, new, strip_optimizer, report)
            check_importable(new_meta.graph_def, graph, "the edited graph")
            report.notes += unknown_ops_note(new_meta.graph_def)
            meta_inputs.append(graph)
            check_output(meta_path, meta_inputs)
        files = write_bundle(out, tensors, inputs=inputs)
        if new_meta is not None:
            try:
                save_graph(Graph(new_meta.graph_def, model_graph.external), meta_path, inputs=meta_inputs,
                           meta_graph=new_meta, text=False)
            except BaseException:
                for written in files:
                    written.unlink(missing_ok=True)
                raise
            files.append(meta_path)
            report.graph_out = os.fspath(meta_path)
        report.tensors_after = len(tensors) - (edited_objects is not None)
        report.bytes_written = sum(f.stat().st_size for f in files)
        report.files = [os.fspath(f) for f in files]
        return report


def _open(path: str | os.PathLike[str]) -> Checkpoint:
    with about(path):
        ckpt = load(path, meta=False).checkpoint  # the tensors alone: a damaged .meta beside them is not ours
        if ckpt is None:
            raise GraphkitError("not a checkpoint (give its prefix, .index file or folder)", path)
        return ckpt


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


def _merged(other: Checkpoint, edited: list[BundleTensor], report: EditReport, tf2: bool) -> list[BundleTensor]:
    """The other checkpoint's tensors the edited ones do not replace; a replaced one must have the
    replacement's shape and dtype (every mismatch listed)."""
    if tf2 or other.object_graph() is not None:
        raise GraphkitError("--merge of TF2 object-based checkpoints: their object graphs would have to be "
                            "merged, which graphkit does not do; merge TF1 name-based checkpoints")
    ours = {t.name: t for t in edited}
    clashes = []
    for info in other.tensors():
        mine = ours.get(info.name)
        if mine is None:
            continue
        if (dtypes.base(mine.dtype), mine.shape) != (dtypes.base(info.dtype), info.shape):
            clashes.append(f"{info.name}: {dtypes.name(mine.dtype)}{list(mine.shape)} would replace "
                           f"{dtypes.name(info.dtype)}{list(info.shape)}")
        report.replaced.append(info.name)
    if clashes:
        raise GraphkitError(f"{len(clashes)} merged tensors differ in shape or dtype: " + "; ".join(clashes[:5]))
    report.merged = [t.name for t in other.tensors() if t.name not in ours]
    return [copied(other, name) for name in report.merged]


def _cast(tensor: BundleTensor, target: CastTarget, report: EditReport) -> BundleTensor:
    """A floating tensor cast to ``target`` (rounded to nearest even, as TF's Cast), part by part."""
    code = _CAST_CODES[target]
    if dtypes.base(tensor.dtype) not in FLOATING or dtypes.base(tensor.dtype) == code:
        return tensor
    report.cast.append(tensor.name)
    report.cast_to = target
    return BundleTensor(tensor.name, code, tensor.shape, [
        Part(p.shape, _cast_bytes(tensor, p, code), slice=p.slice) for p in tensor.parts])


def _cast_bytes(tensor: BundleTensor, part: Part, code: int) -> Callable[[], tuple[bytes, int]]:
    def make() -> tuple[bytes, int]:
        import numpy as np

        if isinstance(part.data, FileSlice):
            raw = part.data.read()
            if part.crc32c is not None and crc.mask(crc.crc32c(raw)) != part.crc32c:
                raise GraphkitError(f"CRC mismatch in tensor '{tensor.name}': the source data file is corrupt; "
                                    "nothing was written", part.data.path)
        else:
            raw = part.data()[0]
        values = np.frombuffer(raw, dtype=dtypes.to_numpy(tensor.dtype).newbyteorder("<")).reshape(part.shape)
        return encoded(values.astype(dtypes.to_numpy(code)), code)

    return make


def _scalar(value: bytes) -> np.ndarray:
    import numpy as np

    array = np.empty((), dtype=object)
    array[()] = value
    return array


def _retargeted_graph(graph: str | os.PathLike[str], names: list[str], new: dict[str, str],
                      strip_optimizer: bool, report: EditReport) -> tuple[meta_graph_pb2.MetaGraphDef, Graph]:
    """The ``.meta`` with its saver matching the edited checkpoint: keys renamed, dropped keys gone (and,
    with ``strip_optimizer``, the optimizer slots the saver has even where the checkpoint lacks them --
    the "Saver made after the optimizer" case)."""
    model = load(graph)
    if model.meta_graph is None or model.graph is None:
        raise GraphkitError("--graph needs a .meta file (a MetaGraphDef with a saver)", graph)
    meta = model.meta_graph
    have = set(names)
    saved = saver_keys(meta)
    slots = set(optimizer_state(saved, {})) if strip_optimizer else set()
    missing = [k for k in saved if k not in have and k not in slots]
    if missing:
        raise GraphkitError(f"the graph's saver restores {len(missing)} keys the checkpoint lacks "
                            f"({', '.join(missing[:3])}); give the graph this checkpoint was saved from, or "
                            "--strip-optimizer if they are optimizer slots")
    mapping: dict[str, str | None] = {k: new.get(k) for k in saved}
    edit = retarget_saver_in_place(meta, mapping)  # the loaded .meta is not used otherwise
    report.saver_dropped = edit.dropped
    return meta, model.graph


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
