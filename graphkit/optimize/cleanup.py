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
from graphkit.io.graph import FileSlice, Graph, GraphIndex, TensorRef, parse_ref
from graphkit.io.ops import INFERENCE_IDENTITIES, MERGE_OPS, NEXT_ITERATION_OPS, PLACEHOLDER_OPS, SIDE_EFFECT_ONLY
from graphkit.io.passes import drop_dangling_colocations, drop_unused_library, extract_subgraph, follow_chains, rewire
from graphkit.optimize.context import Context, copy_graph
from graphkit.proto import node_def_pb2

STRIPPED_OPS = INFERENCE_IDENTITIES | SIDE_EFFECT_ONLY | {"If", "StatelessIf", "NoOp"}
CONTROL_FLOW = frozenset({"Switch", "RefSwitch", "Enter", "RefEnter", "Exit", "RefExit", "LoopCond",
                          "ControlTrigger"}) | MERGE_OPS | NEXT_ITERATION_OPS


def strip_training(graph: Graph, ctx: Context) -> tuple[Graph, list[str]]:
    protected = set(ctx.outputs)
    if not any(n.op in STRIPPED_OPS and n.name not in protected for n in graph.graph_def.node):
        return graph, []  # nothing it would take out (unused nodes are cleanup's)
    gd = training.strip_training(graph.graph_def, ctx.outputs)
    kept = {n.name for n in gd.node}
    gone = [n.name for n in graph.graph_def.node if n.name not in kept]
    return Graph(gd, {k: v for k, v in graph.external.items() if k in kept}), [f"{len(gone)} nodes removed"] if \
        gone else []


def dedupe(graph: Graph, ctx: Context) -> tuple[Graph, list[str]]:
    protected = set(ctx.outputs)
    nodes = graph.graph_def.node
    twin: dict[str, str] = {}  # a node merged -> the one that stays (every output k to output k)
    first_inline: dict[tuple[bytes, tuple[str, ...]], str] = {}  # a value held in the graph: by its bytes
    by_size: dict[tuple[int, tuple[int, ...], int, tuple[str, ...]], list[node_def_pb2.NodeDef]] = {}
    external = graph.external
    for node in nodes:
        if node.op != "Const" or node.name in protected:
            continue
        controls = tuple(sorted(i for i in node.input if i.startswith("^")))
        if node.name not in external:
            value_key = (node.attr["value"].SerializeToString(deterministic=True), controls)
            if value_key in first_inline:
                twin[node.name] = first_inline[value_key]
            else:
                first_inline[value_key] = node.name
            continue
        tensor = node.attr["value"].tensor  # its bytes are in the file: grouped by size first
        size_key = (int(tensor.dtype), tuple(d.size for d in tensor.tensor_shape.dim), graph.const_nbytes(node),
                    controls)
        by_size.setdefault(size_key, []).append(node)
    for group in by_size.values():
        if len(group) < 2:
            continue
        by_head: dict[bytes, list[node_def_pb2.NodeDef]] = {}
        for node in group:  # large weights: the first 64 KiB first, so those that differ are not read whole
            by_head.setdefault(_const_digest(graph, node, _HEAD), []).append(node)
        for same_head in by_head.values():
            first: dict[bytes, str] = {}
            for node in same_head if len(same_head) > 1 else ():
                digest = _const_digest(graph, node)
                if digest in first:
                    twin[node.name] = first[digest]
                else:
                    first[digest] = node.name
    op_defs = OpDefs(graph.graph_def)
    stateful: dict[str, bool] = {}
    changed = True
    while changed:
        changed = False
        seen: dict[tuple[str, str, tuple[str, ...]], list[node_def_pb2.NodeDef]] = {}  # attrs compared on a match
        for node in nodes:
            if node.name in twin or node.name in protected or node.op in CONTROL_FLOW or node.op in PLACEHOLDER_OPS \
                    or node.op == "Const":
                continue
            if node.op not in stateful:
                op_def = op_defs.get(node.op)
                stateful[node.op] = op_def is None or op_def.is_stateful
            if stateful[node.op]:
                continue
            key = (node.op, node.device, tuple(_renamed(i, twin) for i in node.input))
            same = next((other for other in seen.get(key, ()) if _same_attrs(other, node)), None)
            if same is None:
                seen.setdefault(key, []).append(node)
            else:
                twin[node.name] = same.name
                changed = True
    if not twin:
        return graph, []
    out = copy_graph(graph)
    kept = [n for n in out.graph_def.node if n.name not in twin]
    for node in kept:
        inputs = [_renamed(i, twin) for i in node.input]
        if inputs != list(node.input):
            del node.input[:]
            data = [i for i in inputs if not i.startswith("^")]
            node.input.extend(data + list(dict.fromkeys(i for i in inputs if i.startswith("^"))))  # a control
            # input named twice once merged: once
    del out.graph_def.node[:]
    out.graph_def.node.extend(kept)
    for name in twin:
        out.external.pop(name, None)
    return out, [f"{len(twin)} duplicate nodes merged"]


def _renamed(text: str, twin: dict[str, str]) -> str:
    """An input string naming a merged node, naming the one that stays instead (same port)."""
    control = text.startswith("^")
    body = text[1:] if control else text
    name, colon, port = body.partition(":")
    if name not in twin:
        return text
    target = twin[name]
    while target in twin:
        target = twin[target]
    return ("^" if control else "") + target + (colon + port if colon else "")


def _same_attrs(a: node_def_pb2.NodeDef, b: node_def_pb2.NodeDef) -> bool:
    return set(a.attr) == set(b.attr) and all(
        a.attr[k].SerializeToString(deterministic=True) == b.attr[k].SerializeToString(deterministic=True)
        for k in a.attr)


_HEAD = 64 << 10


def _const_digest(graph: Graph, node: node_def_pb2.NodeDef, limit: int | None = None) -> bytes:
    """A digest of a constant's stored bytes (``limit``: of the first bytes only), read one at a time."""
    payload = graph.external.get(node.name)
    if isinstance(payload, FileSlice):
        data = payload.read() if limit is None else FileSlice(payload.path, payload.offset,
                                                              min(limit, payload.length)).read()
    elif payload is not None:
        data = bytes(payload[:limit] if limit is not None else payload)
    else:
        data = node.attr["value"].tensor.SerializeToString(deterministic=True)
    return hashlib.blake2b(data, digest_size=16).digest()


def cleanup(graph: Graph, ctx: Context) -> tuple[Graph, list[str]]:
    out = copy_graph(graph)
    index = GraphIndex(out.graph_def)
    protected = set(ctx.outputs)
    changes = []
    pure = _pure_noops(out, index)  # first: a control edge to an Identity would keep it
    touched = []
    for node in out.graph_def.node:
        kept_inputs = [i for i in node.input if not (i.startswith("^") and i[1:] in pure)]
        if len(kept_inputs) != len(node.input):
            touched.append(node.name)
            del node.input[:]
            node.input.extend(kept_inputs)
    if touched:
        changes.append(f"control inputs from NoOps that order nothing dropped from {len(touched)} nodes")
        index.refresh(touched)
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
    mapping = follow_chains(mapping)  # an Identity of an Identity
    if mapping:
        rewire(index, mapping)
        changes.append(f"{len(mapping)} Identity nodes spliced out")
    before = len(out.graph_def.node)
    gd = extract_subgraph(out.graph_def, ctx.outputs, colocations=False, index=index)  # a colocation is a hint
    if any("_class" in n.attr for n in gd.node):
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

    return {n.name for n in graph.graph_def.node if n.op == "NoOp" and pure(n.name)} if any(
        n.op == "NoOp" for n in graph.graph_def.node) else set()
