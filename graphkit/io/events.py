"""TensorBoard event files (TFRecord framing of ``Event`` protos), written without TensorFlow or TensorBoard.

A record is ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``,
little-endian (tsl/lib/io/record_writer.cc); the first event carries ``file_version: "brain.Event:2"``.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

from graphkit.errors import GraphkitError
from graphkit.io.crc import crc32c, mask
from graphkit.proto import event_pb2, graph_pb2


def record(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", mask(crc32c(length))) + data + struct.pack("<I", mask(crc32c(data)))


def write_graph_events(logdir: str | os.PathLike[str], run: str, graph_def: graph_pb2.GraphDef) -> Path:
    """A new run folder ``logdir/run`` (never an existing one, so old events never mix with new ones) holding
    one event file with the graph. Returns the event file's path."""
    root = Path(logdir)
    if root.exists() and not root.is_dir():
        raise GraphkitError("--logdir names a file, not a folder; give a folder (it is created if missing)", root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        folder = root / run
        k = 1
        while folder.exists():
            k += 1
            folder = root / f"{run}_{k}"
        folder.mkdir()
    except OSError as exc:
        raise GraphkitError(f"cannot make the run folder: {exc.strerror}", root) from None
    now = time.time()
    path = folder / f"events.out.tfevents.{int(now)}.{socket.gethostname()}"
    header = event_pb2.Event(wall_time=now, file_version="brain.Event:2")
    body = event_pb2.Event(wall_time=now, step=0, graph_def=graph_def.SerializeToString(deterministic=True))
    tmp = folder / f".{path.name}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(record(header.SerializeToString()))
            fh.write(record(body.SerializeToString()))
        os.replace(tmp, path)
    except OSError as exc:
        raise GraphkitError(f"cannot write the event file: {exc.strerror}", folder) from None
    return path
