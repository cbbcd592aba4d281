"""Writing graphs: atomically (temporary file, then rename), never over an input, payloads streamed.

A Const whose bytes live outside the GraphDef (Graph.external: mmapped input or checkpoint) is written
field by field, its tensor bytes copied straight from the mapping into the output file; the rest of the
graph is serialized by protobuf. The result parses to the same message as the in-memory graph would.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from google.protobuf import text_format

from graphkit.errors import GraphkitError
from graphkit.io.graph import FileSlice, Graph, graph_header
from graphkit.io.wire import LEN, encode_varint, tag
from graphkit.proto import graph_pb2, meta_graph_pb2, node_def_pb2

Progress = Callable[[int, int], None]
"""A callback ``progress(done, total)`` long-running library functions take; the CLI draws it."""

TEXT_SUFFIXES = (".pbtxt", ".pbtext", ".txt", ".prototxt", ".textproto")
Chunk = bytes | memoryview | FileSlice
_COPY = 64 << 20
_JOIN_UP_TO = 1 << 20


def is_text_path(path: str | os.PathLike[str]) -> bool:
    return str(path).lower().endswith(TEXT_SUFFIXES)


def check_output(path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """Refuse an output that is one of the command's inputs, whose folder does not exist or cannot be
    written, or whose name the file system refuses -- before any work is done."""
    out = Path(path)
    try:
        if out.is_dir():
            raise GraphkitError("output is a directory; give a file name", out)
        if not out.parent.is_dir():
            raise GraphkitError(f"output folder '{out.parent}' does not exist", out)
        if len(out.name.encode()) > 250:  # the temporary file beside it adds a few characters to the name
            raise GraphkitError(f"the file name is {len(out.name.encode())} bytes long; file systems allow 255", out)
        if not os.access(out.parent, os.W_OK | os.X_OK):
            raise GraphkitError(f"cannot write in '{out.parent}' (permission denied); choose another folder", out)
        if out.exists():
            for item in inputs:
                src = Path(item)
                if src.exists() and os.path.samefile(src, out):
                    raise GraphkitError("output would overwrite an input of this command; choose another path", out)
    except OSError as exc:
        raise GraphkitError(f"cannot write here: {exc.strerror}", out) from None
    return out


@contextmanager
def atomic_write(path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = ()) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``path``; on success rename it over ``path``, else remove it."""
    out = check_output(path, inputs)
    try:
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:  # a read-only file system, a full disk, a permission the check could not see
        raise GraphkitError(f"cannot write here: {exc.strerror}", out) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def len_field(number: int, length: int) -> bytes:
    return tag(number, LEN) + encode_varint(length)


def _node_chunks(node: node_def_pb2.NodeDef, payload: memoryview | FileSlice) -> list[Chunk]:
    """NodeDef bytes with ``attr["value"].tensor.tensor_content`` = payload, without copying the payload."""
    head = node_def_pb2.NodeDef()
    head.CopyFrom(node)
    del head.attr["value"]
    tensor = node.attr["value"].tensor.SerializeToString(deterministic=True)
    content = len_field(4, len(payload))
    tensor_len = len(tensor) + len(content) + len(payload)
    attr_value = len_field(8, tensor_len)
    key = len_field(1, 5) + b"value"
    entry_value = len_field(2, len(attr_value) + tensor_len)
    entry_len = len(key) + len(entry_value) + len(attr_value) + tensor_len
    return [head.SerializeToString(deterministic=True), len_field(5, entry_len), key, entry_value, attr_value,
            tensor, content, payload]


def graph_chunks(graph: Graph) -> list[Chunk]:
    """The serialized GraphDef as a list of chunks (payload chunks are views, not copies)."""
    gd = graph.graph_def
    external = {k: v for k, v in graph.external.items() if k}
    if not external:
        return [gd.SerializeToString(deterministic=True)]
    out: list[Chunk] = []
    for node in gd.node:
        payload = external.get(node.name)
        if payload is None or node.attr["value"].tensor.tensor_content:
            data = node.SerializeToString(deterministic=True)
            out += [len_field(1, len(data)), data]
        else:
            parts = _node_chunks(node, payload)
            out.append(len_field(1, sum(len(c) for c in parts)))
            out += parts
    out.append(graph_header(gd).SerializeToString(deterministic=True))
    return out


def serialized_size(graph: Graph) -> int:
    return sum(len(c) for c in graph_chunks(graph))


def materialize(graph: Graph) -> graph_pb2.GraphDef:
    """A GraphDef with every external payload copied in (for text output or TF)."""
    gd = graph_pb2.GraphDef()
    gd.CopyFrom(graph.graph_def)
    if graph.external:
        for node in gd.node:
            payload = graph.external.get(node.name)
            if payload is not None and not node.attr["value"].tensor.tensor_content:
                node.attr["value"].tensor.tensor_content = (
                    payload.read() if isinstance(payload, FileSlice) else bytes(payload))
    return gd


def save_graph(
    graph: Graph,
    path: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
    text: bool | None = None,
    meta_graph: meta_graph_pb2.MetaGraphDef | None = None,
    progress: Progress | None = None,
) -> int:
    """Write ``graph`` (as a GraphDef, or inside ``meta_graph`` as a MetaGraphDef); returns bytes written.

    Text when ``text`` is true or the path ends in .pbtxt; binary otherwise. ``progress(done, total)`` is
    called as bytes are written.
    """
    text = is_text_path(path) if text is None else text
    with atomic_write(path, inputs) as fh:
        if text:
            msg: object = materialize(graph)
            if meta_graph is not None:
                wrapper = meta_graph_pb2.MetaGraphDef()
                wrapper.CopyFrom(meta_graph)
                wrapper.graph_def.CopyFrom(msg)  # type: ignore[arg-type]
                msg = wrapper
            data = text_format.MessageToString(msg).encode()  # type: ignore[arg-type]
            fh.write(data)
            return len(data)
        chunks = graph_chunks(graph) if meta_graph is None else meta_graph_chunks(meta_graph, graph)
        return write_chunks(chunks, fh, progress)


def meta_graph_chunks(meta_graph: meta_graph_pb2.MetaGraphDef, graph: Graph) -> list[Chunk]:
    """``meta_graph`` serialized with ``graph`` as its graph_def (field 2), payloads left as chunks."""
    wrapper = meta_graph_pb2.MetaGraphDef()
    wrapper.CopyFrom(meta_graph)
    wrapper.ClearField("graph_def")
    chunks = graph_chunks(graph)
    return [wrapper.SerializeToString(deterministic=True), len_field(2, sum(len(c) for c in chunks)), *chunks]


def write_chunks(chunks: list[Chunk], fh: IO[bytes], progress: Progress | None) -> int:
    """Write the chunks in order (file slices copied in the kernel); bytes in a row are joined up to about
    a megabyte and written at once (a 100,000-node graph with many nodes rewired is as many chunks)."""
    total = sum(len(c) for c in chunks)
    written = 0
    pending: list[bytes | memoryview] = []
    pending_bytes = 0

    def flush_pending() -> None:
        nonlocal written, pending_bytes
        if pending:
            fh.write(b"".join(pending))
            written += pending_bytes
            pending.clear()
            pending_bytes = 0
            if progress is not None:
                progress(written, total)

    for chunk in chunks:
        if isinstance(chunk, FileSlice):
            flush_pending()
            fh.flush()
            _copy_file_slice(chunk, fh)
            written += len(chunk)
            if progress is not None:
                progress(written, total)
        else:
            pending.append(chunk)
            pending_bytes += len(chunk)
            if pending_bytes >= _JOIN_UP_TO:
                flush_pending()
    flush_pending()
    fh.flush()
    return written


def save_saved_model(
    graph: Graph,
    meta_graph: meta_graph_pb2.MetaGraphDef,
    src_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
) -> int:
    """Write a SavedModel folder holding ``meta_graph`` with ``graph`` as its graph; the source's
    ``variables/`` and ``assets/`` are hard-linked (or copied). Built in a temporary folder and renamed into
    place, so a failure leaves nothing; an existing ``out_dir`` is refused. Returns saved_model.pb's size."""
    from graphkit.proto import saved_model_pb2

    out = Path(out_dir)
    if out.exists():
        raise GraphkitError("output folder exists; give a new folder for the SavedModel", out)
    if not out.parent.is_dir():
        raise GraphkitError(f"output folder '{out.parent}' does not exist", out)
    src = Path(src_dir)
    if (src / "variables" / "variables.index").is_file():  # linked as is: a corrupt index must not pass on
        from graphkit.io.checkpoint import open_checkpoint

        open_checkpoint(src / "variables" / "variables")
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        for sub in ("variables", "assets", "assets.extra"):
            if (src / sub).is_dir():
                _link_tree(src / sub, tmp / sub)
        header = saved_model_pb2.SavedModel(saved_model_schema_version=1)
        inner = meta_graph_chunks(meta_graph, graph)
        body = [header.SerializeToString(deterministic=True), len_field(2, sum(len(c) for c in inner)), *inner]
        with open(tmp / "saved_model.pb", "wb") as fh:
            written = write_chunks(body, fh, progress)
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o755)
        os.rename(tmp, out)
        return written
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise


class Spill:
    """A temporary file beside an output that large tensors are written to as they are made, so a
    conversion never holds all its weights: each becomes a FileSlice, copied into the output in the kernel.
    Removed on exit."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        try:
            fd, self.path = tempfile.mkstemp(dir=directory, prefix=".graphkit-spill-", suffix=".tmp")
        except OSError as exc:
            raise GraphkitError(f"cannot write a spill file here: {exc.strerror}", directory) from None
        self.fh = os.fdopen(fd, "w+b")
        self.size = 0

    def write(self, parts: Iterable[bytes | memoryview]) -> FileSlice:
        """Append ``parts`` (e.g. row blocks of a tensor) as one slice."""
        start = self.size
        for part in parts:
            self.fh.write(part)
            self.size += len(part)
        self.fh.flush()
        return FileSlice(self.path, start, self.size - start)

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


def _link_tree(src: Path, dst: Path) -> None:
    import shutil

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link)


def _copy_file_slice(part: FileSlice, fh: IO[bytes]) -> None:
    """Copy file bytes into ``fh`` in the kernel (copy_file_range), else through a bounded buffer."""
    dst = fh.fileno()
    with open(part.path, "rb") as src_fh:
        src = src_fh.fileno()
        offset, left = part.offset, part.length
        while left:
            try:
                done = os.copy_file_range(src, dst, min(left, _COPY), offset)
            except (AttributeError, OSError):
                done = os.write(dst, os.pread(src, min(left, _COPY), offset))
            if done <= 0:
                raise GraphkitError("input ended early while copying tensor bytes (truncated?)", part.path)
            offset += done
            left -= done
