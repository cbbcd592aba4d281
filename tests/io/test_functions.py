"""The function library core (io/functions.py): references in both forms, op defs, the call graph, and the
graph index over function bodies. TF-free."""

from __future__ import annotations

import pytest
from conftest import fixture_checkpoint

from graphkit.errors import GraphkitError
from graphkit.io import dtypes, load, validate
from graphkit.io.functions import FunctionLibrary, FunctionRef, OpDefs, parse_function_ref, shipped_op_defs
from graphkit.io.graph import GraphIndex
from graphkit.proto import node_def_pb2


@pytest.mark.parametrize("text, ref", [
    ("x", FunctionRef("x")), ("x:1", FunctionRef("x", None, 1)), ("^n", FunctionRef("n", control=True)),
    ("MatMul:product:0", FunctionRef("MatMul", "product", 0)), ("a/b:output:3", FunctionRef("a/b", "output", 3)),
])
def test_references_parse_and_print_back(text, ref):
    assert parse_function_ref(text) == ref and str(ref) == text


def test_a_bad_reference_is_a_user_error():
    with pytest.raises(GraphkitError, match="not a function-body reference"):
        parse_function_ref("a:b:c:d")


def _node(op, **attrs):
    node = node_def_pb2.NodeDef(name="n", op=op)
    for key, value in attrs.items():
        if isinstance(value, list):
            node.attr[key].list.type.extend(value)
        else:
            node.attr[key].i = value
    return node


def test_flat_ports_follow_the_op_defs_output_args():
    defs = OpDefs()
    bn = _node("FusedBatchNormV3")
    assert defs.flat_port(bn, "batch_mean", 0) == 1 and defs.function_ref(bn, 5) == "n:reserve_space_3:0"
    split = _node("Split", num_split=3)  # a number_attr list
    assert defs.flat_port(split, "output", 2) == 2
    unique = _node("Unique")
    assert defs.flat_port(unique, "idx", 0) == 1
    ident = _node("IdentityN", T=[dtypes.DT_FLOAT, dtypes.DT_INT32])  # a type_list_attr list
    assert defs.function_ref(ident, 1) == "n:output:1"
    with pytest.raises(GraphkitError, match="has no output 'output:3'"):
        defs.flat_port(split, "output", 3)
    with pytest.raises(GraphkitError, match="neither a TensorFlow op nor a library function"):
        defs.output_args(_node("MyCustomOp"))


def test_the_shipped_table_covers_ops_the_stripped_op_list_misses():
    """TF's exporter follows f attrs but not then_branch/body: ops used only inside If/While bodies are not in
    the .meta's stripped_op_list (meta_graph.py:ops_used_by_graph_def)."""
    model = load(fixture_checkpoint("cfv2_nested"))
    listed = {op.name for op in model.meta_graph.meta_info_def.stripped_op_list.op}
    in_bodies = {n.op for f in model.graph.graph_def.library.function for n in f.node_def}
    missing = in_bodies - listed
    assert missing and missing <= set(shipped_op_defs())
    assert len(shipped_op_defs()) > 1500


def test_library_calls_and_call_tree():
    gd = load(fixture_checkpoint("cfv2_nested")).graph.graph_def
    library = FunctionLibrary(gd)
    loop = next(n for n in gd.node if n.op == "While")
    assert sorted(c.attr for c in library.calls(loop)) == ["body", "cond"]
    body = loop.attr["body"].func.name
    branches = library.callees(body)
    assert len(branches) == 2 and all(b in library for b in branches)
    tree = library.call_tree(gd.node)
    assert (0, "loop", body) in tree and any(d == 1 and f in branches for d, _, f in tree)
    assert set(library.reachable([loop])) == {body, loop.attr["cond"].func.name, *branches}


def test_the_index_serves_function_bodies():
    gd = load(fixture_checkpoint("cfv2_nested")).graph.graph_def
    for fdef in gd.library.function:
        index = GraphIndex(fdef)
        assert index.arguments == {a.name for a in fdef.signature.input_arg}
        assert validate(index) == []
    fdef = gd.library.function[0]
    fdef.node_def[0].input.append("nowhere:output:0")
    assert any("reads 'nowhere:output:0'" in p for p in validate(GraphIndex(fdef)))
