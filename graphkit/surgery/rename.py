"""``graphkit rename``: strip, add or regex-replace node-name prefixes, consistently everywhere a name lives."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from graphkit.errors import GraphkitError, about
from graphkit.io import Graph, parse_ref
from graphkit.io.graph import TensorRef, attr_text
from graphkit.io.names import renamed_keys, renamer
from graphkit.io.save import Progress, check_output
from graphkit.proto import graph_pb2, meta_graph_pb2
from graphkit.surgery.core import SurgeryReport, finish, loaded_names, open_graph

if TYPE_CHECKING:
    from graphkit.io.bundle import BundleTensor
    from graphkit.io.loader import Model


def rename_graph(gd: graph_pb2.GraphDef, rename: Callable[[str], str]) -> graph_pb2.GraphDef:
    """A renamed copy: node names, data and control inputs, ``_class`` colocations and while-loop frame names.
    Function names in the library are left alone (as import_graph_def's prefix does). Collisions and empty
    names are errors listing the nodes."""
    new_names: dict[str, str] = {}
    taken: dict[str, str] = {}
    clashes = []
    for node in gd.node:
        new = rename(node.name)
        if not new or new.endswith("/") or ":" in new or new.startswith("^"):
            raise GraphkitError(f"renaming '{node.name}' gives '{new}', which is not a valid node name")
        if new in taken:
            clashes.append(f"'{taken[new]}' and '{node.name}' -> '{new}'")
        taken[new] = node.name
        new_names[node.name] = new
    if clashes:
        raise GraphkitError(f"renaming makes names collide: {'; '.join(clashes[:5])}"
                            + (f" (+{len(clashes) - 5} more)" if len(clashes) > 5 else ""))
    out = graph_pb2.GraphDef()
    out.CopyFrom(gd)
    for node in out.node:
        node.name = new_names[node.name]
        inputs = []
        for text in node.input:
            ref = parse_ref(text)
            inputs.append(str(TensorRef(new_names.get(ref.node, ref.node), ref.port, ref.control)))
        del node.input[:]
        node.input.extend(inputs)
        if "_class" in node.attr:
            entries = [b"loc:@" + new_names.get(attr_text(e[5:]), attr_text(e[5:])).encode() if e.startswith(b"loc:@")
                       else e for e in node.attr["_class"].list.s]
            del node.attr["_class"].list.s[:]
            node.attr["_class"].list.s.extend(entries)
        if node.op in ("Enter", "RefEnter") and "frame_name" in node.attr:
            node.attr["frame_name"].s = rename(attr_text(node.attr["frame_name"].s)).encode()
    return out


def rename(
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    strip_prefix: str | None = None,
    add_prefix: str | None = None,
    replace: list[tuple[str, str]] | None = None,
    tags: list[str] | None = None,
    text: bool | None = None,
    progress: Progress | None = None,
    checkpoint_out: str | os.PathLike[str] | None = None,
) -> SurgeryReport:
    """Rename nodes (``--strip-prefix import/``, ``--add-prefix P/``, ``--replace REGEX=REPL``) in the graph
    and in a MetaGraphDef's/SavedModel's signatures, collections and saver.

    ``checkpoint_out``: also write the model's TF1 checkpoint with its keys renamed the same way (a
    prefix), and make the saver read those keys, so the renamed ``.meta`` and the new checkpoint are a
    pair -- and a ``Saver()`` over the renamed variables finds its keys. Without it the renamed graph's
    saver still reads the old keys from the old checkpoint."""
    if not (strip_prefix or add_prefix or replace):
        raise GraphkitError("nothing to rename: give --strip-prefix, --add-prefix or --replace")
    with about(model_path):  # a malformed reference in the graph names the file
        model = open_graph(model_path, tags)
        assert model.graph is not None
        fn = renamer(strip_prefix, add_prefix, replace)
        gd = rename_graph(model.graph.graph_def, fn)
        external = {fn(k): v for k, v in model.graph.external.items()}
        report = SurgeryReport("rename")
        report.rewritten = [n.name for n, m in zip(model.graph.graph_def.node, gd.node, strict=True)
                            if n.name != m.name]
        if not report.rewritten:
            report.notes.append("no node name changed")
        if checkpoint_out is None:
            return finish(model, Graph(gd, external), out, report, before=loaded_names(model), text=text,
                          progress=progress, rename=fn)
        gd, tensors, ckpt_files = _renamed_checkpoint(model, gd, fn, out, checkpoint_out)
    from graphkit.io.bundle import write_bundle

    written = write_bundle(checkpoint_out, tensors, inputs=ckpt_files)
    try:
        with about(model_path):
            done = finish(model, Graph(gd, external), out, report, before=loaded_names(model), text=text,
                          progress=progress, rename=fn)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    done.checkpoint_files = [os.fspath(p) for p in written]
    done.bytes_written += sum(p.stat().st_size for p in written)
    return done


def _renamed_checkpoint(model: Model, gd: graph_pb2.GraphDef, fn: Callable[[str], str],
                        out: str | os.PathLike[str], checkpoint_out: str | os.PathLike[str]) -> tuple[
                            graph_pb2.GraphDef, list[BundleTensor], list[Path]]:
    """The renamed graph with its saver reading the renamed keys, and the checkpoint's tensors under them."""
    from graphkit.io.bundle import copied
    from graphkit.io.checkpoint import open_checkpoint
    from graphkit.io.loader import attach_checkpoint
    from graphkit.io.saver import retarget_saver_in_place

    attach_checkpoint(model, verify=False)
    if model.checkpoint is None or model.meta_graph is None or model.format == "savedmodel":
        raise GraphkitError("--checkpoint-out needs a TF1 checkpoint and its .meta (give the .meta or the "
                            "checkpoint's prefix)")
    if not str(out).endswith(".meta"):
        raise GraphkitError("--checkpoint-out: write the renamed graph as a .meta, which carries the saver "
                            "that reads the new checkpoint", out)
    ckpt = open_checkpoint(model.checkpoint.prefix)  # CRCs checked this time: its tensors are copied
    if ckpt.object_graph() is not None:
        raise GraphkitError("--checkpoint-out: a TF2 object-based checkpoint's keys are object paths, not "
                            "node names; use graphkit edit-checkpoint", ckpt.prefix)
    keys = renamed_keys([t.name for t in ckpt.tensors()], fn)
    for suffix in (".index", ".data-00000-of-00001"):
        check_output(f"{checkpoint_out}{suffix}", ckpt.files)
    meta = meta_graph_pb2.MetaGraphDef()
    meta.saver_def.CopyFrom(model.meta_graph.saver_def)
    meta.saver_def.restore_op_name = fn(meta.saver_def.restore_op_name)
    meta.graph_def.CopyFrom(gd)
    retarget_saver_in_place(meta, dict(keys))
    return meta.graph_def, [copied(ckpt, old, new) for old, new in keys.items()], list(ckpt.files)
