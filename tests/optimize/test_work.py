"""The machinery optimize's passes share (graphkit.optimize.context.Work over one index): the scanner's table
and the protobuf path give the same result; the compiled helpers mean what their Python versions mean; the
index's consumer tables stay right through edits; rewired nodes are written as protobuf would write them."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import FIXTURES, fixture_checkpoint, shared

from graphkit.freeze import freeze
from graphkit.io import Graph, GraphIndex, load, save_graph
from graphkit.io.passes import topological_order
from graphkit.io.scan import TableIndex, compiled, scan_graph_file, write_table
from graphkit.io.tensors import from_numpy
from graphkit.optimize import optimize
from graphkit.optimize.cleanup import _merge_sweep
from graphkit.proto import graph_pb2, node_def_pb2

needs_compiled = pytest.mark.skipif(compiled() is None, reason="the compiled helpers are not in use (not built, "
                                                               "or GRAPHKIT_NO_SCANNER is set)")


def _nodes(path):
    return [n.SerializeToString(deterministic=True) for n in load(path).graph.graph_def.node]


def _chains(total: int) -> graph_pb2.GraphDef:
    """bench_optimize's graph, small: chains of AddV2 and Mul with equal constants, a side output, and
    a part neither output needs; plus a control input, a port-qualified input and a duplicate node."""
    gd = graph_pb2.GraphDef()
    gd.versions.producer = 1700
    x = gd.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = 1
    value = from_numpy(np.full(4, 0.5, np.float32))

    def node(name, op, inputs=()):
        n = gd.node.add(name=name, op=op, input=list(inputs))
        if op == "Const":
            n.attr["dtype"].type = 1
            n.attr["value"].tensor.CopyFrom(value)
        else:
            n.attr["T"].type = 1
        return n.name

    prev = "x"
    for i in range(total):
        prev = node(f"add{i}", "AddV2", [prev, node(f"c{i}", "Const")])
    twin_a = node("twin_a", "Mul", [prev, "c0:0"])
    node("twin_b", "Mul", [prev, f"c{total - 1}:0"])
    node("output", "AddV2", [twin_a, "twin_b", "^c1"])
    side = "add0"
    for i in range(total // 2):
        side = node(f"side{i}", "Mul", [side, node(f"s{i}", "Const")])
    node("aux", "Identity", [side])
    node("unused", "Neg", ["x"])
    return gd


def _write(tmp_path, gd, name="g.pb"):
    path = tmp_path / name
    save_graph(Graph(gd), path)
    return path


def _frozen(tmp_path):
    paths = [(_write(tmp_path, _chains(300)), {"outputs": ["output", "aux"]})]
    freeze(FIXTURES / "keras_bn_cnn", tmp_path / "keras.pb")
    freeze(fixture_checkpoint("tf1_bn_dropout"), tmp_path / "tf1.pb", outputs=["output"])
    paths += [(tmp_path / "keras.pb", {}), (tmp_path / "tf1.pb", {"fold_defaults": True})]
    return paths


@pytest.mark.parametrize("target", ["tf", "opencv"])
def test_scanner_and_protobuf_paths_write_the_same_graph(tmp_path, target):
    """The table path (nodes parsed only when a pass asks, rewired ones spliced in C) and the protobuf
    path give the same nodes in the same order."""
    for src, options in _frozen(tmp_path):
        fast = optimize(src, tmp_path / "fast.pb", target=target, **options)
        slow = optimize(src, tmp_path / "slow.pb", target=target, scanner=False, **options)
        assert _nodes(tmp_path / "fast.pb") == _nodes(tmp_path / "slow.pb"), src
        assert [p.changes for p in fast.passes] == [p.changes for p in slow.passes]
        assert fast.nodes_after < fast.nodes_before


def test_dedupe_on_chains_merges_constants_and_then_the_nodes_they_made_equal(tmp_path):
    src = _write(tmp_path, _chains(50))
    report = optimize(src, tmp_path / "o.pb", outputs=["output", "aux"])
    graph = load(tmp_path / "o.pb").graph.graph_def
    names = {n.name for n in graph.node}
    consts = [n for n in graph.node if n.op == "Const"]
    assert len(consts) == 1  # 75 equal constants: one
    assert "twin_b" not in names and "twin_a" in names  # same op and inputs once c0 and c49 are one
    out = next(n for n in graph.node if n.name == "output")
    assert list(out.input) == ["twin_a", "twin_a", "^c0"]  # (its control input from c1, now c0)
    assert "unused" not in names
    assert any("duplicate nodes merged" in c for p in report.passes for c in p.changes)
    assert [n.name for n in graph.node] == [n for n in _order_after(graph)], "not in topological order"


def _order_after(graph):
    seen: set[str] = set()
    for node in graph.node:
        assert all(i.lstrip("^").split(":")[0] in seen for i in node.input), node.name
        seen.add(node.name)
        yield node.name


@needs_compiled
@pytest.mark.parametrize("shuffled", [False, True])
def test_compiled_sweep_means_what_the_python_one_means(shuffled):
    rng = random.Random(5)
    names = [f"n{i}" for i in range(400)]
    ops = {n: rng.choice(["Add", "Mul", "Print"]) for n in names}
    inputs = {n: [rng.choice([f"n{rng.randrange(i)}", f"n{rng.randrange(i)}:1", f"^n{rng.randrange(i)}"])
                  for _ in range(rng.randrange(1, 4))] if i else [] for i, n in enumerate(names)}
    base_twin = {f"n{i}": f"n{i - 1}" for i in range(1, 400, 7)}  # chains: n8 -> n7, and n7 stays
    base_twin.update({"n15": "n8"})  # n15 -> n8 -> n7
    for i in range(100, 390, 5):  # copies of earlier nodes, and of nodes reading those (merged in turn)
        ops[f"n{i}"], inputs[f"n{i}"] = ops[f"n{i - 50}"], list(inputs[f"n{i - 50}"])
        ops[f"n{i + 1}"], inputs[f"n{i + 1}"] = ops[f"n{i - 49}"], [f"n{i}", *inputs[f"n{i - 49}"][1:]]
        inputs[f"n{i - 49}"] = [f"n{i - 50}", *inputs[f"n{i - 49}"][1:]]
    inputs["n399"] = ["n3", "^n8", "^n7", "^n15"]  # three control inputs that become one
    if shuffled:  # out of order: nodes before what they read, so one sweep does not see every merge
        rng.shuffle(names)
    helpers = compiled()
    results = []
    for sweep in (helpers.merge_sweep, _merge_sweep):
        twin, renamed, rounds = dict(base_twin), {}, []
        while True:
            merges, complete = sweep(names, ops, inputs, {"Add", "Mul"}, {"n20"}, twin, renamed,
                                     lambda a, b: int(a[1:]) % 3 == int(b[1:]) % 3)
            rounds.append((merges, complete))
            if complete or not merges:
                break
        results.append((rounds, twin, renamed))
    assert results[0] == results[1]
    rounds, twin, renamed = results[0]
    assert sum(m for m, _ in rounds) > 20 and (len(rounds) > 1 if shuffled else rounds[0][1])
    assert "n20" not in twin and not {n for n in twin if ops[n] == "Print"} - set(base_twin)
    assert not set(renamed) & set(twin), "a merged node keeps no renamed inputs"
    assert renamed["n399"] == ["n3", "^n7"]
    assert not any(i.lstrip("^").split(":")[0] in twin for n in names if n not in twin
                   for i in renamed.get(n, inputs[n])), "every node left reads only nodes that stay"


@needs_compiled
def test_same_bodies_are_found_by_their_bytes_never_by_a_hash_alone(tmp_path):
    gd = graph_pb2.GraphDef()
    for i, value in enumerate([1.0, 2.0, 1.0, 1.0, 2.0]):
        c = gd.node.add(name=f"c{i}", op="Const")
        c.attr["dtype"].type = 1
        c.attr["value"].tensor.CopyFrom(from_numpy(np.full(3, value, np.float32)))
    big = gd.node.add(name="big", op="Const")
    big.attr["dtype"].type = 1
    big.attr["value"].tensor.CopyFrom(from_numpy(np.zeros(40000, np.float32)))
    gd.node.add().CopyFrom(big)
    gd.node[-1].name = "big2"
    index = TableIndex(scan_graph_file(_write(tmp_path, gd)))
    names = [n.name for n in gd.node]
    assert index.same_stored(names, 1 << 16) == {"c2": "c0", "c3": "c0", "c4": "c1"}  # (big ones: longer than
    # the limit, compared by the caller its own way)
    assert index.same_stored(names, 1 << 20) == {"c2": "c0", "c3": "c0", "c4": "c1", "big2": "big"}
    index.replace(node_def_pb2.NodeDef(name="c3", op="NoOp"))
    assert index.same_stored(["c0", "c3"], 1 << 16) == {}  # a changed node is not compared by its file bytes


@needs_compiled
@pytest.mark.parametrize("mapped", [False, True], ids=["in-memory", "mapped"])
def test_rewired_nodes_are_written_as_protobuf_writes_them(tmp_path, monkeypatch, mapped):
    """Both ways write_table writes: a file read into memory (one C splice) and a mapped one (spans copied,
    rewired nodes spliced one by one); removed nodes leave no trace."""
    from graphkit.io import scan

    if mapped:
        monkeypatch.setattr(scan, "_MMAP_ABOVE", 0)
    gd = _chains(20)
    node = gd.node.add(name="late", op="AddV2", input=["x", "add3", "^c2"], device="/cpu:0")
    node.attr["T"].type = 1
    path = _write(tmp_path, gd)
    index = TableIndex(scan_graph_file(path))
    changes = {"late": ["add4", "add5:0", "^c3", "^c4"], "add2": ["add0", "c0"], "c7": ["^x"], "x": ["^c1"]}
    index.set_inputs({k: list(v) for k, v in changes.items()})
    index.set_inputs({"aux": []})
    index.remove({"aux", "unused"}, unread=True)
    index.replace(node_def_pb2.NodeDef(name="add9", op="Identity", input=["add8"]))
    index.add([node_def_pb2.NodeDef(name="extra", op="NoOp", input=["^add9"])])
    assert not set(index.nodes.cache) - {"add9", "extra"}  # nothing else parsed
    write_table(index, tmp_path / "out.pb")
    in_file = load(tmp_path / "out.pb").graph.graph_def.node
    written = {n.name: n for n in in_file}
    assert "aux" not in written and "unused" not in written
    assert in_file[-1] == written.pop("extra") == node_def_pb2.NodeDef(name="extra", op="NoOp", input=["^add9"])
    assert written.pop("add9") == node_def_pb2.NodeDef(name="add9", op="Identity", input=["add8"])
    for original in gd.node:
        if original.name in ("aux", "unused", "add9"):
            continue
        expected = node_def_pb2.NodeDef()
        expected.CopyFrom(original)
        if original.name in changes:
            del expected.input[:]
            expected.input.extend(changes[original.name])
        assert written[original.name] == expected, original.name
    assert index.nodes["late"].input == changes["late"]  # a later parse sees the new inputs


def _fresh_tables(index):
    fresh = GraphIndex(None, nodes={}, inputs=dict(index.inputs))
    return ({k: sorted(v) for k, v in fresh.consumers.items() if v},
            {k: sorted(v) for k, v in fresh.control_consumers.items() if v}, fresh.deps)


@pytest.mark.parametrize("kind", ["protobuf", "table"])
def test_consumer_tables_stay_right_through_edits(tmp_path, kind):
    if kind == "table" and compiled() is None:
        pytest.skip("the compiled scanner is not in use")
    gd = _chains(40)
    index = TableIndex(scan_graph_file(_write(tmp_path, gd))) if kind == "table" else GraphIndex(gd)
    index.consumers, index.deps  # built, so each edit below updates them  # noqa: B018
    rng = random.Random(1)
    for step in range(60):
        names = list(index.inputs)
        pick = rng.choice(names)
        if step % 4 == 0:
            index.set_inputs({pick: [rng.choice(names), f"^{rng.choice(names)}"]})
        elif step % 4 == 1:
            node = index.nodes[pick]
            node.input.append(rng.choice(names) + ":1")
            index.refresh([pick])
        elif step % 4 == 2:
            readers = {c for c, _ in index.consumers.get(pick, [])}
            if not readers and pick not in ("output", "aux"):
                index.remove({pick})
        else:
            new = node_def_pb2.NodeDef(name=f"new{step}", op="Neg", input=[rng.choice(names)])
            index.add([new]) if kind == "table" else index.replace(index.nodes[pick]) or index.add([new])
        consumers, control, deps = _fresh_tables(index)
        assert {k: sorted(v) for k, v in index.consumers.items() if v} == consumers, step
        assert {k: sorted(v) for k, v in index.control_consumers.items() if v} == control, step
        assert index.deps == deps, step


@needs_compiled
def test_a_table_written_in_another_order(tmp_path):
    gd = _chains(10)
    path = _write(tmp_path, gd)
    index = TableIndex(scan_graph_file(path))
    index.add([node_def_pb2.NodeDef(name="first", op="NoOp")])
    index.set_inputs({"x": ["^first"]})  # x now needs a node written after it
    order = topological_order(index)
    assert order is not None and order.index("first") < order.index("x")
    write_table(index, tmp_path / "out.pb", order=order)
    written = load(tmp_path / "out.pb").graph.graph_def
    assert [n.name for n in written.node] == order
    assert written.versions.producer == 1700
    assert topological_order(GraphIndex(written)) is None  # already in order: nothing to move


@pytest.mark.parametrize("rel", ["tf_mtcnn_blaueck/mtcnn.pb", "tf2onnx_models/lstm/frozen.pb",
                                 "tf2onnx_models/gru/frozen.pb", "tf2onnx_models/ae0/frozen.pb"])
def test_optimize_on_shared_models_agrees_on_both_paths(tmp_path, rel):
    src = shared(rel)
    optimize(src, tmp_path / "fast.pb", target="opencv")
    optimize(src, tmp_path / "slow.pb", target="opencv", scanner=False)
    assert _nodes(tmp_path / "fast.pb") == _nodes(tmp_path / "slow.pb")


def test_drop_keys_compiled_and_python_agree(monkeypatch):
    from graphkit.io import scan
    from graphkit.io.graph import drop_keys

    results = []
    for helpers in ([compiled()] if compiled() is not None else []) + [None]:
        monkeypatch.setattr(scan, "_wirescan", helpers)
        a, b, c = {"x": 1, "y": 2, "z": 3}, {"y", "w"}, {}
        drop_keys({"y", "z", "q"}, a, b, c)
        results.append((a, b, c))
    assert all(r == ({"x": 1}, {"w"}, {}) for r in results)


@needs_compiled
def test_compiled_reachable_walks_as_the_python_one(monkeypatch):
    from graphkit.io import scan
    from graphkit.io.passes import reachable

    rng = random.Random(7)
    gd = graph_pb2.GraphDef()
    for i in range(300):
        node = gd.node.add(name=f"n{i}", op="NoOp")
        for _ in range(rng.randrange(3) if i else 0):
            j = rng.randrange(i)
            node.input.append(rng.choice([f"n{j}", f"n{j}:1", f"^n{j}", "missing:0"]))
        if i % 17 == 5:
            node.attr["_class"].list.s.append(f"loc:@n{rng.randrange(300)}".encode())
    gd.node.add(name="lonely", op="NoOp", input=["^n3"])  # reached only as n299's colocation
    gd.node[299].attr["_class"].list.s.append(b"loc:@lonely")
    outputs = ["n299", "n250", "n100"]
    found = []
    for helpers in (compiled(), None):
        monkeypatch.setattr(scan, "_wirescan", helpers)
        found += [reachable(GraphIndex(gd), outputs), reachable(GraphIndex(gd), outputs, colocations=False)]
    assert found[0] == found[2] and found[1] == found[3]
    assert "lonely" in found[0] and "lonely" not in found[1]  # colocations keep more alive


@needs_compiled
def test_compiled_edge_checks_mean_what_the_python_ones_mean(monkeypatch):
    """in_order (behind topological_order and the cycle check) and odd_inputs (behind validate's input
    checks), compiled and in Python, on graphs in order, out of order, with a TF1 loop's back edge, with
    sources read before they come and with dangling inputs."""
    from graphkit.io import scan
    from graphkit.io.checks import _odd_inputs
    from graphkit.io.passes import in_order

    rng = random.Random(11)
    inputs: dict[str, list[str]] = {}
    for i in range(300):
        inputs[f"n{i}"] = [rng.choice([f"n{j}", f"n{j}:1", f"^n{j}", "gone:0"]) for j in
                           (rng.randrange(i) for _ in range(rng.randrange(3)))] if i else []
    late = {n: list(t) for n, t in inputs.items()}
    late["n5"].append("src")  # a source read before it comes: out of order, but no cycle runs through it
    late["src"] = []
    loop = {"enter": [], "merge": ["enter", "next"], "body": ["merge"], "next": ["body"]}
    loop_ops = {"enter": "Enter", "merge": "Merge", "body": "Identity", "next": "NextIteration"}
    cases = {"in order": (inputs, True, True), "late source": (late, False, True), "TF1 loop": (loop, True, True),
             "cycle": ({"x": [], "a": ["x", "b:1"], "b": ["a"]}, False, False)}
    odd_found = {}
    for label, (graph, ordered, sources_ok) in cases.items():
        graph_ops = loop_ops if graph is loop else {n: "AddV2" for n in graph}
        found = []
        for helpers in (compiled(), None):
            monkeypatch.setattr(scan, "_wirescan", helpers)
            found.append((in_order(graph, graph_ops), in_order(graph, graph_ops, sources_ok=True),
                          _odd_inputs(graph)))
        assert found[0] == found[1], label
        assert found[0][0] == ordered, label
        assert found[0][1] == sources_ok, label
        odd_found[label] = found[0][2]
    odd = odd_found["late source"]
    assert odd == [(n, t) for n, texts in late.items() for t in texts if t not in late]
    assert ("n5", "src") not in odd and any(t == "gone:0" for _, t in odd) and any(t[0] == "^" for _, t in odd)


def test_the_collector_is_paused_only_while_tables_are_built(tmp_path):
    """optimize pauses Python's cyclic collector for the graph-sized work and gives it back as it found it,
    after an error too; a caller that had it off keeps it off."""
    import gc

    from graphkit.errors import GraphkitError
    from graphkit.io.graph import collector_paused
    from graphkit.optimize import optimize

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    src = _write(tmp_path, _chains(200))
    optimize(src, tmp_path / "o.pb")
    assert gc.isenabled()
    with pytest.raises(GraphkitError):
        optimize(src, tmp_path / "o2.pb", outputs=["nope"])
    assert gc.isenabled()
    gc.disable()
    try:
        optimize(src, tmp_path / "o3.pb")
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("kind", ["protobuf", pytest.param("table", marks=needs_compiled)])
def test_of_ops_finds_the_nodes_of_some_ops_in_order(tmp_path, kind):
    gd = _chains(40)
    index = GraphIndex(gd) if kind == "protobuf" else TableIndex(scan_graph_file(_write(tmp_path, gd)))
    want = [n.name for n in gd.node if n.op in ("Const", "Identity")]
    assert want and index.of_ops({"Const", "Identity"}) == want == index.of_ops(["Identity", "Const"])
    assert index.of_ops(()) == [] and index.of_ops({"NoSuchOp"}) == []
