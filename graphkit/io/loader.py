"""``load(path)``: any TensorFlow artifact, detected from its content, read without TensorFlow.

Formats: binary or text GraphDef, MetaGraphDef (.meta), SavedModel directory, checkpoint (prefix,
``.index`` file, or a directory holding a ``checkpoint`` state file; V2 or legacy V1).
"""

from __future__ import annotations

import mmap
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Union

from google.protobuf import message, text_format

from graphkit.errors import GraphkitError
from graphkit.io.graph import FileSlice, Graph
from graphkit.io.protofile import strip_payloads
from graphkit.io.sstable import has_table_magic
from graphkit.io.wire import LEN, VARINT, WireError, iter_fields
from graphkit.proto import graph_pb2, meta_graph_pb2, saved_model_pb2

PathLike = Union[str, "os.PathLike[str]"]
STRIP_ABOVE = 16 << 20  # files larger than this are parsed with their weights left in the mmapped file
_DATA_FILE = re.compile(r"^(.*)\.data-\d{5}-of-\d{5}$")
_GRAPH_KEYS = {"node", "versions", "library", "version", "debug_info"}
_META_KEYS = {"meta_info_def", "graph_def", "saver_def", "collection_def", "signature_def", "asset_file_def",
              "object_graph_def"}
_SAVED_MODEL_KEYS = {"saved_model_schema_version", "meta_graphs"}
_CAFFE_KEYS = {"layer", "layers", "input", "input_dim", "input_shape", "force_backward"}

if TYPE_CHECKING:
    from graphkit.io.checkpoint import Checkpoint

Kind = str  # "GraphDef" | "MetaGraphDef" | "SavedModel"


ModelFormat = Literal["graphdef", "metagraph", "savedmodel", "checkpoint"]


@dataclass
class Model:
    """What ``load`` found. ``graph`` is the graph to work on (a MetaGraphDef's graph_def, shared)."""

    path: Path
    format: ModelFormat
    graph: Graph | None = None
    meta_graph: meta_graph_pb2.MetaGraphDef | None = None
    checkpoint: Checkpoint | None = None
    text: bool = False
    tags: list[str] = field(default_factory=list)
    all_tags: list[list[str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def file_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files if f.is_file())

    def require_graph(self, fix: str = "give the .meta, a SavedModel or a GraphDef") -> Graph:
        """The graph, or the one error every command gives for a model without one (a checkpoint whose
        .meta is missing), naming the file and ``fix``."""
        if self.graph is None:
            raise GraphkitError(f"no graph here (a checkpoint without its .meta); {fix}", self.path)
        if not self.graph.graph_def.node:
            raise GraphkitError(f"the {self.format} holds no nodes (an empty or damaged file?)", self.path)
        return self.graph


def load(path: PathLike, *, tags: list[str] | None = None, verify: bool = True, meta: bool = True) -> Model:
    """Load any supported artifact. Raises GraphkitError with a one-line reason when it cannot.
    ``meta=False``: a checkpoint without the .meta beside it (for work on its tensors alone)."""
    p = Path(path)
    try:
        kind = p.stat().st_mode
    except FileNotFoundError:
        kind = None
    except OSError as exc:  # a name too long, a loop of links, no permission on a folder on the way
        raise GraphkitError(f"cannot read: {exc.strerror}", p) from None
    if kind is not None and stat.S_ISDIR(kind):
        return _load_dir(p, tags, verify, meta)
    if kind is not None and not stat.S_ISREG(kind):  # a FIFO or device would block or never end
        raise GraphkitError("not a regular file or folder (a FIFO, socket or device); give a model file", p)
    if kind is None:
        from graphkit.io.checkpoint import v1_shards

        if is_file(Path(f"{p}.index")) or v1_shards(p):
            return _load_checkpoint(p, verify, meta)
        raise GraphkitError("no such file, directory or checkpoint prefix", p)
    prefix = _checkpoint_part(p)
    if prefix is not None:
        return _load_checkpoint(prefix, verify, meta)
    if p.name == "checkpoint" and _is_state_file(p):
        return _load_dir(p.parent, tags, verify, meta)
    return _load_proto_file(p, tags)


def attach_checkpoint(model: Model, verify: bool = True) -> None:
    """Give a ``.meta`` its checkpoint, when one was saved beside it under its prefix (``model.ckpt-3.meta``
    and ``model.ckpt-3.index``, as ``Saver.save`` writes them); in place."""
    from graphkit.io.checkpoint import open_checkpoint

    text = str(model.path)
    if model.format == "metagraph" and model.checkpoint is None and text.endswith(".meta"):
        prefix = text[: -len(".meta")]
        if os.path.exists(prefix + ".index"):
            model.checkpoint = open_checkpoint(prefix, verify)
            model.files += model.checkpoint.files


def is_file(p: Path) -> bool:
    """``p.is_file()`` that says False for names the system refuses (too long...) instead of raising."""
    try:
        return p.is_file()
    except OSError:
        return False


def is_proto_file(p: Path) -> bool:
    """Whether :func:`load` reads ``p`` as one protobuf file (GraphDef, MetaGraphDef, SavedModel), not as a
    part of a checkpoint or a checkpoint state file."""
    return p.is_file() and _checkpoint_part(p) is None and not (p.name == "checkpoint" and _is_state_file(p))


def _checkpoint_part(p: Path) -> Path | None:
    """The checkpoint prefix when the file ``p`` is a checkpoint's .index or data file (or a V1 table)."""
    if p.name.endswith(".index"):
        return Path(str(p)[: -len(".index")])
    data_match = _DATA_FILE.match(str(p))
    if data_match:
        return Path(data_match.group(1))
    return p if has_table_magic(p) else None


# ---- directories and checkpoints ------------------------------------------------------------------


def _load_dir(d: Path, tags: list[str] | None, verify: bool, meta: bool = True) -> Model:
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        if (d / name).is_file():
            return _load_saved_model(d / name, tags, verify)
    state = d / "checkpoint"
    if state.is_file():
        return _load_checkpoint(_prefix_from_state(state), verify, meta)
    indexes = sorted(d.glob("*.index"))
    if len(indexes) == 1:
        return _load_checkpoint(Path(str(indexes[0])[: -len(".index")]), verify, meta)
    listing = ", ".join(sorted(f.name for f in d.iterdir())[:8]) or "nothing"
    hint = "name one checkpoint prefix" if indexes else "give a model file or a SavedModel directory"
    raise GraphkitError(
        f"directory holds no model (no saved_model.pb, no checkpoint file; it has: {listing}); {hint}", d)


def _is_state_file(p: Path) -> bool:
    try:
        return "model_checkpoint_path" in p.read_text(errors="replace")[:4096]
    except OSError:
        return False


def _prefix_from_state(state: Path) -> Path:
    from graphkit.io.checkpoint import v1_shards

    text = state.read_text(errors="replace")
    match = re.search(r'^model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', text, re.M)
    if not match:
        raise GraphkitError("checkpoint state file names no model_checkpoint_path", state)
    named = Path(match.group(1))
    candidates = [named] if named.is_absolute() else [state.parent / named]
    candidates.append(state.parent / named.name)  # moved directories keep stale absolute paths
    for prefix in candidates:
        try:
            if is_file(Path(f"{prefix}.index")) or v1_shards(prefix):
                return prefix
        except OSError:  # a stale path with a component over the name limit: try the next
            continue
    existing = sorted(str(f.name)[: -len(".index")] for f in state.parent.glob("*.index"))
    found = f"prefixes here: {', '.join(existing)}" if existing else "no checkpoint is in this directory"
    raise GraphkitError(f"the state file names '{named}', which does not exist ({found}); pass a prefix", state)


def _load_checkpoint(prefix: Path, verify: bool, meta: bool = True) -> Model:
    from graphkit.io.checkpoint import open_checkpoint

    ckpt = open_checkpoint(prefix, verify)
    model = Model(path=prefix, format="checkpoint", checkpoint=ckpt, files=list(ckpt.files))
    meta_path = Path(f"{prefix}.meta")
    if meta and meta_path.is_file():
        parsed, text = _parse_file(meta_path, "MetaGraphDef")
        assert isinstance(parsed, _Parsed)
        model.meta_graph = parsed.message  # type: ignore[assignment]
        model.graph = parsed.graphs[0]
        model.files.append(meta_path)
    return model


def _load_saved_model(pb: Path, tags: list[str] | None, verify: bool, parsed: _Parsed | None = None,
                      text: bool = False) -> Model:
    from graphkit.io.checkpoint import open_checkpoint

    if parsed is None:
        parsed, text = _parse_file(pb, "SavedModel")
    saved: saved_model_pb2.SavedModel = parsed.message  # type: ignore[assignment]
    all_tags = [list(m.meta_info_def.tags) for m in saved.meta_graphs]
    if not saved.meta_graphs:
        raise GraphkitError("SavedModel has no meta graphs", pb)
    if tags:
        matches = [i for i, t in enumerate(all_tags) if set(t) == set(tags)]
    else:
        matches = [i for i, t in enumerate(all_tags) if "serve" in t] or (
            [0] if len(all_tags) == 1 else []
        )
    if not matches:
        offered = "; ".join(",".join(t) for t in all_tags)
        raise GraphkitError(f"no meta graph with tags {','.join(tags or ['serve'])} (it has: {offered}); use --tag", pb)
    i = matches[0]
    model = Model(path=pb.parent, format="savedmodel", meta_graph=saved.meta_graphs[i], graph=parsed.graphs[i],
                  text=text, tags=all_tags[i], all_tags=all_tags, files=[pb])
    prefix = pb.parent / "variables" / "variables"
    if Path(f"{prefix}.index").is_file():
        model.checkpoint = open_checkpoint(prefix, verify)
        model.files.extend(model.checkpoint.files)
    return model


# ---- single protobuf files ------------------------------------------------------------------------


@dataclass
class _Parsed:
    message: message.Message
    graphs: list[Graph]


def _load_proto_file(p: Path, tags: list[str] | None) -> Model:
    from graphkit.io.foreign import HINTS, foreign_format

    other = foreign_format(p)
    if other is not None:
        raise GraphkitError(f"this is {HINTS[other]}", p)
    parsed, text = _parse_file(p, None)
    kind = type(parsed.message).__name__
    if kind == "SavedModel":
        if not parsed.graphs:
            hint = "a SavedModel fingerprint; give the SavedModel folder" if p.name == "fingerprint.pb" else (
                "a protobuf, but not a GraphDef, MetaGraphDef or SavedModel")
            raise GraphkitError(f"not a TensorFlow graph: {hint}", p)
        return _load_saved_model(p, tags, True, parsed, text) if p.name.startswith("saved_model") else Model(
            path=p, format="savedmodel", graph=parsed.graphs[0], text=text, files=[p],
            meta_graph=parsed.message.meta_graphs[0],  # type: ignore[attr-defined]
        )
    if kind == "MetaGraphDef":
        return Model(path=p, format="metagraph", graph=parsed.graphs[0], text=text, files=[p],
                     meta_graph=parsed.message)  # type: ignore[arg-type]
    return Model(path=p, format="graphdef", graph=parsed.graphs[0], text=text, files=[p])


def _parse_file(p: Path, kind: Kind | None) -> tuple[_Parsed, bool]:
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise GraphkitError(f"cannot read: {exc.strerror}", p) from exc
    if size == 0:
        raise GraphkitError("empty file", p)
    if looks_like_text(head):
        return _parse_text(p, kind), True
    with open(p, "rb") as fh:
        buf: mmap.mmap | bytes = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size > STRIP_ABOVE else fh.read()
    if kind is None or kind == "SavedModel":  # a folder's saved_model.pb is checked too: it may be a GraphDef
        sniffed = sniff_binary(memoryview(buf), p)
        kind = kind or sniffed
    return _parse_binary(buf, kind, p), False


def looks_like_text(head: bytes) -> bool:
    if any(b < 0x20 and b not in (9, 10, 13) for b in head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut at the 4 KiB boundary
    return True


def _first_key(p: Path) -> str | None:
    with open(p, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip()
            if line:
                match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*[:{<]", line)
                return match.group(1) if match else None
    return None


def _parse_text(p: Path, kind: Kind | None) -> _Parsed:
    key = _first_key(p)
    if kind is None:
        if key in _GRAPH_KEYS:
            kind = "GraphDef"
        elif key in _META_KEYS:
            kind = "MetaGraphDef"
        elif key in _SAVED_MODEL_KEYS:
            kind = "SavedModel"
        elif key in _CAFFE_KEYS or key == "name":
            raise GraphkitError("this looks like a Caffe prototxt, not a TensorFlow graph (use caffe2tf)", p)
        else:
            raise GraphkitError(
                "text file is not a GraphDef, MetaGraphDef or SavedModel (its first field is "
                f"'{key or '?'}'; a text GraphDef starts with 'node {{')", p)
    msg = _new(kind)
    try:
        text_format.Parse(p.read_text(encoding="utf-8"), msg, allow_unknown_field=False)
    except text_format.ParseError as exc:
        raise GraphkitError(f"not a valid text {kind}: {exc}", p) from None
    except RecursionError:
        raise GraphkitError(f"not a valid text {kind}: nested too deeply to be a model", p) from None
    except UnicodeDecodeError as exc:
        raise GraphkitError(f"not a valid text {kind}: not UTF-8 ({exc.reason})", p) from None
    return _Parsed(msg, _check_graphs(msg, p))


def _new(kind: Kind) -> message.Message:
    return {"GraphDef": graph_pb2.GraphDef, "MetaGraphDef": meta_graph_pb2.MetaGraphDef,
            "SavedModel": saved_model_pb2.SavedModel}[kind]()


def sniff_binary(view: memoryview, p: Path) -> Kind:
    """Tell GraphDef, MetaGraphDef and SavedModel apart from their top-level fields."""
    counts: dict[tuple[int, int], int] = {}
    try:
        for i, (number, wire_type, *_rest) in enumerate(iter_fields(view, 0, len(view))):
            counts[(number, wire_type)] = counts.get((number, wire_type), 0) + 1
            if i >= 256:
                break
    except WireError:
        if p.name.startswith("saved_model"):
            return "SavedModel"  # its parser says what is wrong
        raise GraphkitError(
            "not a TensorFlow model: neither a binary protobuf (GraphDef, MetaGraphDef, SavedModel) nor text; "
            "the file may be truncated or corrupt", p) from None
    if p.name.startswith("saved_model"):
        if counts.get((1, LEN)):  # a SavedModel's field 1 is its schema version, a varint; GraphDef nodes are 1
            raise GraphkitError("holds a GraphDef's nodes, not a SavedModel, though it is named like one; "
                                "rename it (graph.pb) or give the SavedModel folder", p)
        return "SavedModel"
    if counts.get((1, VARINT)):
        return "SavedModel"
    if counts.get((1, LEN), 0) > 1 or counts.get((3, VARINT)):
        return "GraphDef"
    if counts.get((3, LEN)) or counts.get((6, LEN)) or counts.get((7, LEN)) or counts.get((4, LEN), 0) > 1:
        return "MetaGraphDef"
    return "MetaGraphDef" if p.suffix == ".meta" else "GraphDef"


def _parse_binary(buf: mmap.mmap | bytes, kind: Kind, p: Path) -> _Parsed:
    """Small files (bytes) parse as they are; large ones (mmap) with their weights left in the file."""
    msg = _new(kind)
    try:
        if isinstance(buf, bytes):
            msg.ParseFromString(buf)
            payloads: dict[tuple[int, int], tuple[int, int]] = {}
        else:
            stripped = strip_payloads(memoryview(buf), kind)
            msg.ParseFromString(stripped.data)
            payloads = stripped.payloads
    except (message.DecodeError, WireError) as exc:
        raise GraphkitError(f"not a valid binary {kind} (truncated or corrupt: {exc})", p) from None
    graphs = _check_graphs(msg, p)
    # file slices, not views of the mapping: writing them is a kernel copy that never maps the pages in
    for (g, n), (offset, length) in payloads.items():
        graphs[g].external[graphs[g].graph_def.node[n].name] = FileSlice(str(p), offset, length)
    return _Parsed(msg, graphs)


def _check_graphs(msg: message.Message, p: Path) -> list[Graph]:
    if isinstance(msg, saved_model_pb2.SavedModel):
        defs = [m.graph_def for m in msg.meta_graphs]
    elif isinstance(msg, meta_graph_pb2.MetaGraphDef):
        defs = [msg.graph_def]
    else:
        defs = [msg]  # type: ignore[list-item]
    for gd in defs:
        for i, node in enumerate(gd.node):
            if not node.name or not node.op or not PLAUSIBLE_OP.match(node.op):
                raise GraphkitError(
                    f"does not look like a TensorFlow graph: node #{i} has {'no name' if not node.name else 'a bad op'}"
                    " (wrong file type, or corrupt?)", p)
    return [Graph(gd) for gd in defs]


PLAUSIBLE_OP = re.compile(r"^[A-Za-z_][A-Za-z0-9_>.]*$")  # what a TF op name looks like
