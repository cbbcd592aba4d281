"""The compiled GraphDef scanner (graphkit.io._wirescan) against protobuf, and the table writer."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from conftest import FIXTURES, SHARED

from graphkit.io import GraphIndex, load
from graphkit.io.scan import TableIndex, available, scan_graph_file, write_table
from graphkit.io.wire import LEN, encode_varint, tag
from graphkit.proto import graph_pb2, node_def_pb2

needs_scanner = pytest.mark.skipif(not available(), reason="the compiled scanner is not in use (not built, or "
                                                            "GRAPHKIT_NO_SCANNER is set); the protobuf path serves")


def test_the_scanner_was_built_where_it_is_required():
    """CI sets GRAPHKIT_REQUIRE_SCANNER: a broken C build must fail there, not fall back unnoticed."""
    if os.environ.get("GRAPHKIT_REQUIRE_SCANNER") and not os.environ.get("GRAPHKIT_NO_SCANNER"):
        assert available()


def _graph_files(tmp_path: Path) -> list[Path]:
    """Binary GraphDefs: the frozen fixture, the fixtures' training graphs (colocations, shapes, control
    flow) written out as GraphDefs, and the shared real models when present."""
    files = [FIXTURES / "frozen" / "sigmoid.pb"]
    for meta in sorted(FIXTURES.glob("*/*.meta")):
        path = tmp_path / f"{meta.parent.name}.pb"
        path.write_bytes(load(meta).graph.graph_def.SerializeToString())
        files.append(path)
    for rel in ("tf_mtcnn_blaueck/mtcnn.pb", "tf2onnx_models/lstm/frozen.pb", "tf2onnx_models/gru/frozen.pb",
                "tf2onnx_models/ae0/frozen.pb", "utensor_tf_op_tests/deep_cnn/test_cnn_float.pb"):
        if (SHARED / rel).exists():
            files.append(SHARED / rel)
    return files


def _expect(gd: graph_pb2.GraphDef) -> GraphIndex:
    index = GraphIndex(gd)
    index.ops, index.colocated, index.shaped  # noqa: B018 -- computed from the protos
    return index


@needs_scanner
def test_table_equals_protobuf_on_real_graphs(tmp_path):
    files = _graph_files(tmp_path)
    assert len(files) >= 5
    for path in files:
        gd = graph_pb2.GraphDef.FromString(path.read_bytes())
        table = scan_graph_file(path)
        assert table is not None, path
        want = _expect(gd)
        assert table.names == [n.name for n in gd.node], path
        assert {k: list(v) for k, v in table.inputs.items()} == want.inputs, path
        assert table.ops == want.ops and table.colocated == want.colocated and table.shaped == want.shaped, path
        assert table.duplicates == want.duplicates == [], path
        for i, node in enumerate(gd.node):
            assert table.node(i) == node, (path, node.name)
        # the spans and header fields tile the file exactly
        pieces = sorted([(table.spans[3 * i], table.spans[3 * i + 2]) for i in range(len(table.names))]
                        + [(start, end) for _, start, end in table.header])
        assert pieces[0][0] == 0 and pieces[-1][1] == path.stat().st_size
        assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False)), path
    assert any(scan_graph_file(p).colocated for p in files)  # type: ignore[union-attr]
    assert any(scan_graph_file(p).shaped for p in files)  # type: ignore[union-attr]


def _field(number: int, payload: bytes) -> bytes:
    return tag(number, LEN) + encode_varint(len(payload)) + payload


def _attr(key: str, value: bytes) -> bytes:
    return _field(5, _field(1, key.encode()) + _field(2, value))


def _class(*entries: bytes) -> bytes:
    return b"".join(_field(2, e) for e in entries)  # ListValue.s


@needs_scanner
def test_protobuf_semantics_on_unusual_but_valid_bytes(tmp_path, monkeypatch):
    """Field order (name after attrs, value before key), a name given twice (the last wins), a repeated
    ``_class`` (the last wins), a merged ``list``, duplicate node names, UTF-8 names and unknown fields.
    (The wire check before the scan refuses the attrs without a value here, handing such files to the
    protobuf path; this test is about the scan itself, so it runs without the check.)"""
    from graphkit.io import _wirescan, scan

    class Unchecked:
        scan_graph = staticmethod(_wirescan.scan_graph)

        @staticmethod
        def check(*args):
            return None

    monkeypatch.setattr(scan, "_wirescan", Unchecked)
    nodes = [
        _attr("T", _field(6, b"")) + _field(2, b"Const") + _field(1, "ä/x".encode()),
        _field(1, b"wrong") + _field(1, b"y") + _field(2, b"Identity") + _field(3, "ä/x".encode())
        + _field(3, b"^z") + _field(5, _field(2, _field(1, _class(b"loc:@gone"))) + _field(1, b"_class"))
        + _attr("_class", _field(1, _class("loc:@ä/x".encode())) + _field(1, _class(b"loc:@z", b"other")))
        + _attr("_output_shapes", _field(1, b"")) + tag(99, 0) + b"\x07",
        _field(1, b"z") + _field(2, b"NoOp") + _attr("_class", _field(1, _class(b"loc:@y")) + tag(3, 0) + b"\x01"),
        _field(1, b"z") + _field(2, b"NoOp") + _attr("_output_shapes", b""),
    ]
    data = b"".join(_field(1, n) for n in nodes) + _field(4, tag(1, 0) + b"\x05") + tag(3, 0) + b"\x02"
    path = tmp_path / "odd.pb"
    path.write_bytes(data)
    gd = graph_pb2.GraphDef.FromString(data)
    table = scan_graph_file(path)
    assert table is not None
    want = _expect(gd)
    assert table.names == ["ä/x", "y", "z", "z"]
    assert {k: list(v) for k, v in table.inputs.items()} == want.inputs
    assert table.colocated == want.colocated == {"y": ["ä/x", "z"]}  # z's list was cleared by the `i` member
    assert table.shaped == want.shaped == {"y", "z"}
    assert table.duplicates == want.duplicates == ["z"]
    assert table.positions["z"] == 3 and [h[0] for h in table.header] == [4, 3]


@needs_scanner
def test_corrupt_bytes_are_refused_never_crash(tmp_path):
    """Truncations and byte flips: the scanner raises ValueError or reads something; it never reads out of
    bounds. A refused file gets None, so the loader's own message reaches the user."""
    data = (FIXTURES / "frozen" / "sigmoid.pb").read_bytes()
    path = tmp_path / "bad.pb"
    from graphkit.io import _wirescan

    rng = random.Random(0)
    cuts = sorted({rng.randrange(1, len(data)) for _ in range(300)})
    refused = 0
    for cut in cuts:
        try:
            _wirescan.scan_graph(data[:cut])
        except ValueError:
            refused += 1
    assert refused > len(cuts) // 2
    outcomes = {"refused": 0, "read": 0}
    for _ in range(2000):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            names, positions, _, _, duplicates, spans, *_ = _wirescan.scan_graph(bytes(mutated))
        except ValueError:
            outcomes["refused"] += 1
            continue
        outcomes["read"] += 1
        assert len(spans) == 24 * len(names) == 24 * (len(positions) + len(duplicates))
    assert outcomes["refused"] > 100 and outcomes["read"] > 100  # both kinds of damage were exercised
    path.write_bytes(data[: len(data) // 2])
    assert scan_graph_file(path) is None
    path.write_text('node { name: "x" op: "Const" }\n')
    assert scan_graph_file(path) is None  # text: the protobuf path reads it
    for other in ("mlp_ref/model.ckpt-3.index", "mlp_ref/model.ckpt-3.meta", "saved_model_tf1/saved_model.pb"):
        assert scan_graph_file(FIXTURES / other) is None, other  # what load() does not read as a GraphDef
    with pytest.raises(TypeError):
        _wirescan.scan_graph("not bytes")


@needs_scanner
def test_unchanged_table_writes_the_input_byte_for_byte(tmp_path):
    src = FIXTURES / "frozen" / "sigmoid.pb"
    table = scan_graph_file(src)
    assert table is not None
    write_table(TableIndex(table), tmp_path / "same.pb")
    assert (tmp_path / "same.pb").read_bytes() == src.read_bytes()


@needs_scanner
def test_written_table_keeps_order_rewrites_changed_nodes_and_appends_new_ones(tmp_path):
    gd = graph_pb2.GraphDef()
    gd.versions.producer = 7
    for i in range(6):
        gd.node.add(name=f"n{i}", op="Identity" if i else "Placeholder", input=[f"n{i - 1}"] if i else [])
    src = tmp_path / "chain.pb"
    src.write_bytes(gd.SerializeToString())
    table = scan_graph_file(src)
    assert table is not None
    index = TableIndex(table).restricted({"n0", "n1", "n3", "n4", "n5"})
    node = index.nodes["n3"]
    del node.input[:]
    node.input.append("n1")
    index.refresh(["n3"])
    index.add([node_def_pb2.NodeDef(name="extra", op="NoOp", input=["^n5"])])
    index.rename_node("n5", "last")
    write_table(index, tmp_path / "out.pb")
    out = graph_pb2.GraphDef.FromString((tmp_path / "out.pb").read_bytes())
    assert [(n.name, list(n.input)) for n in out.node] == [
        ("n0", []), ("n1", ["n0"]), ("n3", ["n1"]), ("n4", ["n3"]), ("last", ["n4"]), ("extra", ["^n5"])]
    assert out.versions.producer == 7
    with pytest.raises(Exception, match="overwrite an input"):
        write_table(index, src)


@needs_scanner
def test_a_table_restricted_to_nothing_writes_no_node(tmp_path):
    """Issue 14.3's refactor: an empty restriction (a Mapping of no nodes is falsy) must stay empty."""
    table = scan_graph_file(FIXTURES / "frozen" / "sigmoid.pb")
    assert table is not None
    empty = TableIndex(table).restricted(set())
    assert not empty.inputs and not empty.nodes
    write_table(empty, tmp_path / "none.pb")
    assert not graph_pb2.GraphDef.FromString((tmp_path / "none.pb").read_bytes()).node
