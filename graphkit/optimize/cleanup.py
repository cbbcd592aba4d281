"""``strip-training``, ``dedupe`` and ``cleanup``.

- ``strip-training``: ``prune --strip-training`` (io/training.py): Identity-like pass-throughs,
  CheckNumerics, Assert/Print chains.
- ``dedupe``: constants of one dtype, shape and bytes merged into the first; then nodes with the same op,
  inputs, attrs and device (Grappler's ``ArithmeticOptimizer`` dedup, core/grappler/optimizers/
  arithmetic_optimizer.cc) -- never stateful ops (a ``RandomUniform`` twice is two draws), control flow or
  outputs' names.
- ``cleanup``: control inputs from ``NoOp``s that order nothing stateful dropped, Identities spliced out
  (not an output's, not after control flow: a Switch's pivot), unused nodes removed (what the outputs do
  not need; colocations with removed nodes dropped, as prune --inputs does), and the function library
  pruned to what is called.
"""

from __future__ import annotations

import hashlib

from graphkit.io import training
from graphkit.io.functions import OpDefs
from graphkit.io.graph import (
    Graph,
    GraphIndex,
    TensorRef,
    drop_dangling_colocations,
    drop_unused_library,
    extract_subgraph,
    parse_ref,
    rewire,
)
from graphkit.io.ops import MERGE_OPS, NEXT_ITERATION_OPS, PLACEHOLDER_OPS
from graphkit.optimize.context import Context, copy_graph, remove_nodes

CONTROL_FLOW = frozenset({"Switch", "RefSwitch", "Enter", "RefEnter", "Exit", "RefExit", "LoopCond",
                          "ControlTrigger"}) | MERGE_OPS | NEXT_ITERATION_OPS


def strip_training(graph: Graph, ctx: Context) -> tuple[Graph, list[str]]:
    gd = training.strip_training(graph.graph_def, ctx.outputs)
    kept = {n.name for n in gd.node}
    gone = [n.name for n in graph.graph_def.node if n.name not in kept]
    return Graph(gd, {k: v for k, v in graph.external.items() if k in kept}), [f"{len(gone)} nodes removed"] if \
        gone else []


def dedupe(graph: Graph, ctx: Context) -> tuple[Graph, list[str]]:
    out = copy_graph(graph)
    index = GraphIndex(out.graph_def)
    protected = set(ctx.outputs)
    mapping: dict[TensorRef, TensorRef] = {}
    changes = []
    by_size: dict[tuple[int, tuple[int, ...], int, tuple[str, ...]], list[str]] = {}
    for node in out.graph_def.node:
        if node.op == "Const" and node.name not in protected:
            tensor = node.attr["value"].tensor
            key = (int(tensor.dtype), tuple(d.size for d in tensor.tensor_shape.dim), out.const_nbytes(node),
                   tuple(sorted(i for i in node.input if i.startswith("^"))))
            by_size.setdefault(key, []).append(node.name)
    for names in by_size.values():
        if len(names) < 2:
            continue
        first: dict[bytes, str] = {}
        for name in names:
            digest = _const_digest(out, index, name)
            if digest in first:
                mapping[TensorRef(name)] = TensorRef(first[digest])
            else:
                first[digest] = name
    op_defs = OpDefs(out.graph_def)
    changed = True
    seen: dict[tuple[object, ...], str] = {}
    while changed:
        changed = False
        seen.clear()
        for node in out.graph_def.node:
            if node.name in protected or node.op in CONTROL_FLOW or node.op in PLACEHOLDER_OPS or node.op == "Const" \
                    or TensorRef(node.name) in mapping:
                continue
            op_def = op_defs.get(node.op)
            if op_def is None or op_def.is_stateful:
                continue
            inputs = tuple(str(mapping.get(parse_ref(i), parse_ref(i))) for i in node.input)
            node_key = (node.op, node.device, inputs, tuple(sorted((k, v.SerializeToString(deterministic=True))
                                                                   for k, v in node.attr.items())))
            if node_key in seen:
                outputs = len(op_def.output_arg) if all(not a.number_attr and not a.type_list_attr
                                                        for a in op_def.output_arg) else None
                if outputs is None:
                    continue
                for port in range(max(outputs, 1)):
                    mapping[TensorRef(node.name, port)] = TensorRef(seen[node_key], port)
                mapping[TensorRef(node.name, control=True)] = TensorRef(seen[node_key], control=True)
                changed = True
            else:
                seen[node_key] = node.name
    if not mapping:
        return out, []
    rewire(index, mapping)
    gone = {ref.node for ref in mapping}
    remove_nodes(out, gone)
    changes = [f"{len(gone)} duplicate nodes merged"]
    return out, changes


def _const_digest(graph: Graph, index: GraphIndex, name: str) -> bytes:
    node = index.nodes[name]
    payload = graph.external.get(name)
    data = payload.read() if payload is not None and hasattr(payload, "read") else (
        bytes(payload) if payload is not None else node.attr["value"].tensor.SerializeToString(deterministic=True))
    return hashlib.blake2b(data, digest_size=16).digest()


def cleanup(graph: Graph, ctx: Context) -> tuple[Graph, list[str]]:
    out = copy_graph(graph)
    index = GraphIndex(out.graph_def)
    protected = set(ctx.outputs)
    changes = []
    pure = _pure_noops(out, index)  # first: a control edge to an Identity would keep it
    dropped = 0
    for node in out.graph_def.node:
        kept_inputs = [i for i in node.input if not (i.startswith("^") and i[1:] in pure)]
        if len(kept_inputs) != len(node.input):
            dropped += len(node.input) - len(kept_inputs)
            del node.input[:]
            node.input.extend(kept_inputs)
    if dropped:
        changes.append(f"{dropped} control inputs from NoOps that order nothing dropped")
    index = GraphIndex(out.graph_def)
    mapping: dict[TensorRef, TensorRef] = {}
    for node in out.graph_def.node:
        if node.op != "Identity" or node.name in protected or not node.input or len(node.input) != 1 \
                or index.control_consumers.get(node.name):
            continue
        source = parse_ref(node.input[0])
        producer = index.nodes.get(source.node)
        if producer is None or producer.op in CONTROL_FLOW or source.control:
            continue
        mapping[TensorRef(node.name)] = source
    for key, target in list(mapping.items()):
        seen = {key}
        while target in mapping and target not in seen:
            seen.add(target)
            target = mapping[target]
        mapping[key] = target
    if mapping:
        rewire(index, mapping)
        changes.append(f"{len(mapping)} Identity nodes spliced out")
    before = len(out.graph_def.node)
    gd = extract_subgraph(out.graph_def, ctx.outputs, colocations=False)  # a colocation is a hint, not a need
    drop_dangling_colocations(gd)
    kept = {n.name for n in gd.node}
    result = Graph(gd, {k: v for k, v in out.external.items() if k in kept})
    if before - len(gd.node):
        changes.append(f"{before - len(gd.node)} unused nodes removed")
    functions = drop_unused_library(gd)
    if functions:
        changes.append(f"{len(functions)} unused functions removed")
    return result, changes


def _pure_noops(graph: Graph, index: GraphIndex) -> set[str]:
    """NoOps none of whose inputs (through everything before them) is a stateful op."""
    op_defs = OpDefs(graph.graph_def)
    memo: dict[str, bool] = {}

    def pure(start: str) -> bool:
        stack, visiting = [(start, False)], set()
        while stack:
            name, expanded = stack.pop()
            if name in memo:
                continue
            node = index.nodes.get(name)
            deps = [parse_ref(i).node for i in node.input] if node is not None else []
            if expanded:  # a dependency still being visited is a cycle (a TF1 loop): not taken for pure
                memo[name] = all(memo.get(d, False) for d in deps)
                visiting.discard(name)
                continue
            if name in visiting:
                continue
            op_def = op_defs.get(node.op) if node is not None else None
            if op_def is None or op_def.is_stateful:
                memo[name] = False
                continue
            visiting.add(name)
            stack.append((name, True))
            stack += [(d, False) for d in deps if d not in memo]
        return memo[start]

    return {n.name for n in graph.graph_def.node if n.op == "NoOp" and pure(n.name)}
