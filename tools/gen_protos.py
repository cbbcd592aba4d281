"""Regenerate graphkit/proto/*_pb2.py(i) from the descriptors TensorFlow ships.

Dev-only. TensorFlow's wheel carries no .proto files, but each of its ``*_pb2`` modules embeds the
FileDescriptorProto it was built from. We take those descriptors, move them to a private proto
package (``graphkit_tf``) and private file paths (``graphkit/proto/<name>.proto``) so that they never
collide with TensorFlow's own descriptors in one process (docs/formats.md section 6), and run protoc on
them with ``--descriptor_set_in``. The wire format is unchanged.

Usage (needs tensorflow and grpcio-tools==1.75.1, whose protoc 31.1 matches TF 2.21's protobuf floor):

    PROTOC_PYTHON=/path/to/venv-with-grpcio-tools/bin/python python tools/gen_protos.py
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOTS = [
    "tensorflow.core.framework.graph_pb2",
    "tensorflow.core.framework.variable_pb2",
    "tensorflow.core.protobuf.meta_graph_pb2",
    "tensorflow.core.protobuf.saved_model_pb2",
    "tensorflow.core.protobuf.saver_pb2",
    "tensorflow.core.protobuf.tensor_bundle_pb2",
    "tensorflow.core.protobuf.trackable_object_graph_pb2",
    "tensorflow.core.protobuf.saved_object_graph_pb2",
    "tensorflow.core.util.saved_tensor_slice_pb2",
    "tensorflow.core.util.event_pb2",
]
PACKAGE = "graphkit_tf"
OUT = Path(__file__).resolve().parent.parent / "graphkit" / "proto"


def private_path(name: str) -> str:
    if name.startswith("google/protobuf/"):
        return name
    return "graphkit/proto/" + os.path.basename(name)


def rename_types(msgs: list[descriptor_pb2.DescriptorProto]) -> None:
    for m in msgs:
        for f in m.field:
            if f.type_name.startswith(".tensorflow."):
                f.type_name = "." + PACKAGE + f.type_name[len(".tensorflow"):]
        rename_types(list(m.nested_type))


def main() -> None:
    seen: dict[str, object] = {}

    def walk(fd: object) -> None:
        name = fd.name  # type: ignore[attr-defined]
        if name in seen:
            return
        seen[name] = fd
        for dep in fd.dependencies:  # type: ignore[attr-defined]
            walk(dep)

    for mod in ROOTS:
        walk(importlib.import_module(mod).DESCRIPTOR)

    fds = descriptor_pb2.FileDescriptorSet()
    targets = []
    for name, fd in sorted(seen.items()):
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)  # type: ignore[attr-defined]
        if not name.startswith("google/protobuf/"):
            assert proto.package == "tensorflow", (name, proto.package)
            proto.package = PACKAGE
            proto.name = private_path(name)
            del proto.dependency[:]
            proto.dependency.extend(private_path(d.name) for d in fd.dependencies)  # type: ignore[attr-defined]
            proto.options.Clear()
            rename_types(list(proto.message_type))
            for svc in proto.service:
                for meth in svc.method:
                    meth.input_type = meth.input_type.replace(".tensorflow.", f".{PACKAGE}.")
                    meth.output_type = meth.output_type.replace(".tensorflow.", f".{PACKAGE}.")
            targets.append(proto.name)
        fds.file.append(proto)

    for old in OUT.glob("*_pb2.py*"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        set_path = Path(tmp) / "set.bin"
        set_path.write_bytes(fds.SerializeToString())
        subprocess.run(
            [os.environ.get("PROTOC_PYTHON", sys.executable), "-m", "grpc_tools.protoc",
             f"--descriptor_set_in={set_path}", f"--python_out={tmp}", f"--pyi_out={tmp}", *targets],
            check=True,
        )
        for produced in (Path(tmp) / "graphkit" / "proto").iterdir():
            (OUT / produced.name).write_bytes(produced.read_bytes())
    print(f"wrote {len(targets)} modules to {OUT}")


if __name__ == "__main__":
    main()
