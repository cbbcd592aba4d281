"""Whole-graph passes over a GraphDef or its index (:class:`graphkit.io.graph.GraphIndex`): what the outputs
need (``reachable``, ``extract_subgraph`` -- TF's extract_sub_graph), who reads a tensor, rewiring inputs
(``rewire``, ``follow_chains``), dropping dangling colocations and unused library functions, and putting
nodes in topological order. The commands' passes are built from these."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from graphkit.io.graph import (
    GraphIndex,
    TensorRef,
    as_index,
    attr_text,
    input_node,
    parse_ref,
)
from graphkit.io.ops import MERGE_OPS, NEXT_ITERATION_OPS
from graphkit.proto import graph_pb2, node_def_pb2


def downstream(index: GraphIndex, starts: Iterable[str]) -> set[str]:
    """Nodes reachable from ``starts`` over data and control edges (``starts`` included): what they feed."""
    seen = set(starts)
    stack = list(seen)
    while stack:
        name = stack.pop()
        for user in [u for u, _ in index.consumers.get(name, [])] + index.control_consumers.get(name, []):
            if user not in seen:
                seen.add(user)
                stack.append(user)
    return seen


def sort_topologically_in_place(graph_def: graph_pb2.GraphDef) -> bool:
    """Put every node after its inputs (see :func:`topological_order`); returns whether anything moved."""
    index = GraphIndex(graph_def)
    order = topological_order(index)
    if order is None:
        return False
    nodes = [index.nodes[name] for name in order]
    del graph_def.node[:]
    graph_def.node.extend(nodes)
    return True


def topological_order(index: GraphIndex) -> list[str] | None:
    """The index's nodes (in its order: the file's, new nodes last) put each after its inputs -- a
    NextIteration's edge into a loop's Merge aside: the cycle TF1 loops have -- keeping the order wherever
    it already is one; None when nothing needs to move, or when another cycle leaves no order (what TF's
    importer then says is the user's to read)."""
    import heapq

    inputs, ops = index.inputs, index.ops
    if in_order(inputs, ops):  # the usual case, found cheaply
        return None
    back = set(index.of_ops(NEXT_ITERATION_OPS))
    names = list(inputs)
    position = {name: i for i, name in enumerate(names)}

    def deps(name: str) -> list[int]:
        loop_merge = ops[name] in MERGE_OPS
        found = {input_node(i) for i in inputs[name]}
        return [position[d] for d in found if d in position and not (loop_merge and d in back)]

    needs = [deps(n) for n in names]
    waiting = [len(ds) for ds in needs]
    readers: list[list[int]] = [[] for _ in names]
    for i, ds in enumerate(needs):
        for d in ds:
            readers[d].append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for r in readers[i]:
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, r)
    if len(order) != len(names) or order == list(range(len(names))):
        return None
    return [names[i] for i in order]


def in_order(inputs: Mapping[str, Sequence[str]], ops: Mapping[str, str], sources_ok: bool = False) -> bool:
    """Whether each node (in the order of ``inputs``) comes after the nodes it reads: each input's node
    earlier, or no node of the graph, or (``sources_ok``) a node without inputs, or a NextIteration read by a
    Merge (a TF1 loop's back edge). In C when the compiled helpers are built (the same walk)."""
    from graphkit.io.scan import compiled

    helpers = compiled()
    if helpers is not None and isinstance(inputs, dict) and isinstance(ops, dict):
        return bool(helpers.in_order(inputs, ops, sources_ok))
    seen: set[str] = set()
    for name, texts in inputs.items():
        for text in texts:
            if text in seen:  # (the usual input: a bare name, earlier)
                continue
            dep = input_node(text)
            if dep in seen or dep not in inputs or sources_ok and not inputs[dep]:
                continue
            if ops[name] in MERGE_OPS and ops[dep] in NEXT_ITERATION_OPS:
                continue
            return False
        seen.add(name)
    return True


def reachable(index: GraphIndex, outputs: Iterable[str], colocations: bool = True) -> set[str]:
    """The nodes ``outputs`` need through data inputs, control inputs and (unless ``colocations`` is
    false) ``_class`` colocations: TF's extract_sub_graph. An unknown output is an error naming the closest."""
    stack: list[str] = []
    for name in outputs:
        index.node(name)
        stack.append(name)
    inputs = index.inputs  # its keys are the node names
    colocated = index.colocated if colocations else {}
    from graphkit.io.scan import compiled

    helpers = compiled()
    if helpers is not None and isinstance(inputs, dict) and isinstance(colocated, dict):
        return helpers.reachable(inputs, stack, colocated)  # the same walk, compiled
    keep = set(stack)
    while stack:
        name = stack.pop()
        for text in inputs[name]:
            dep = text if text in inputs else input_node(text)
            if dep not in keep and dep in inputs:
                keep.add(dep)
                stack.append(dep)
        for dep in colocated.get(name, ()):
            if dep not in keep and dep in inputs:
                keep.add(dep)
                stack.append(dep)
    return keep


def extract_subgraph(graph_def: graph_pb2.GraphDef, outputs: Iterable[str], colocations: bool = True,
                     index: GraphIndex | None = None) -> graph_pb2.GraphDef:
    """TF's extract_sub_graph: keep what ``outputs`` (node names) need through data inputs, control
    inputs and ``_class`` colocations; original node order; library and versions copied.

    With ``colocations=False`` colocation targets do not keep nodes alive (a cut graph's upstream goes away);
    call :func:`drop_dangling_colocations` on the result."""
    index = index if index is not None and index.graph_def is graph_def else GraphIndex(graph_def)
    result = index.restricted(reachable(index, outputs, colocations)).graph_def
    assert result is not None
    return result


def consumers_of(index: GraphIndex, ref: TensorRef) -> list[str]:
    """Nodes that read tensor ``ref`` (or, for ``^name``, take it as a control input)."""
    if ref.control:
        return list(index.control_consumers.get(ref.node, []))
    users = []
    for user, i in index.consumers.get(ref.node, []):
        if parse_ref(index.inputs[user][i]).port == ref.port:
            users.append(user)
    return users


def follow_chains(mapping: dict[TensorRef, TensorRef]) -> dict[TensorRef, TensorRef]:
    """``mapping`` with each value followed while it is itself a key (a pass-through of a pass-through goes
    to the end of the chain; a cycle stops where it closes). :func:`rewire` maps one step -- what a swap
    needs -- so passes that remove chains of nodes resolve them first."""
    out = {}
    for key, target in mapping.items():
        seen = {key}
        while target in mapping and target not in seen:
            seen.add(target)
            target = mapping[target]
        out[key] = target
    return out


def rewire(graph: graph_pb2.GraphDef | GraphIndex, mapping: dict[TensorRef, TensorRef]) -> set[str]:
    """Rewrite every input equal to a key (``x`` = ``x:0``; ``^x`` control) to its value, in place (an index
    is refreshed); duplicate control inputs are dropped. Returns the names of the nodes changed."""
    index = as_index(graph)
    changed: set[str] = set()
    readers: dict[str, None] = {}  # the nodes with an input from a key's node (a dict: no repeats)
    for key in {k.node for k in mapping}:
        readers.update((user, None) for user, _ in index.consumers.get(key, []))
        readers.update((user, None) for user in index.control_consumers.get(key, []))
    for name in readers:
        new_inputs = []
        seen_control: set[str] = set()
        touched = False
        for text in index.inputs[name]:
            ref = parse_ref(text)
            target = mapping.get(ref)
            if target is not None:
                ref, touched = target, True
            if ref.control:
                if ref.node in seen_control:
                    touched = True
                    continue
                seen_control.add(ref.node)
            new_inputs.append(str(ref))
        if touched:
            node = index.nodes[name]
            del node.input[:]
            node.input.extend(data_first(new_inputs))
            changed.add(name)
    index.refresh(changed)
    return changed


def data_first(inputs: list[str]) -> list[str]:
    """TF requires control inputs after data inputs."""
    return [i for i in inputs if not i.startswith("^")] + [i for i in inputs if i.startswith("^")]


def drop_dangling_colocations(graph: graph_pb2.GraphDef | GraphIndex) -> list[str]:
    """Remove ``_class`` ``loc:@X`` entries whose X is not in the graph (nor an argument of the function
    indexed) in place; an index is refreshed; returns the nodes changed. Function bodies often carry
    tracing-time names that exist nowhere (``loc:@embedding_lookup/91``)."""
    index = as_index(graph)
    names, arguments = index.nodes, index.arguments
    changed = []
    for name, targets in list(index.colocated.items()):
        if all(t in names or t in arguments for t in targets):
            continue
        node = index.nodes[name]
        entries = list(node.attr["_class"].list.s)
        kept = [e for e in entries if not e.startswith(b"loc:@") or attr_text(e[5:]) in names
                or attr_text(e[5:]) in arguments]
        changed.append(name)
        if kept:
            del node.attr["_class"].list.s[:]
            node.attr["_class"].list.s.extend(kept)
        else:
            del node.attr["_class"]
    index.refresh(changed)
    return changed


def _function_refs(nodes: Iterable[node_def_pb2.NodeDef], names: set[str]) -> set[str]:
    found: set[str] = set()
    for node in nodes:
        if node.op in names:
            found.add(node.op)
        for attr in node.attr.values():
            if attr.func.name in names:
                found.add(attr.func.name)
            found.update(f.name for f in attr.list.func if f.name in names)
    return found


def drop_unused_library(graph_def: graph_pb2.GraphDef, nodes: Iterable[node_def_pb2.NodeDef] | None = None
                        ) -> list[str]:
    """Keep only the library functions the graph's nodes (``nodes``, when an index holds them rather than
    ``graph_def``) reach, directly or through other functions, in place; returns the names dropped."""
    if not graph_def.library.function:
        return []
    by_name = {f.signature.name: f for f in graph_def.library.function}
    names = set(by_name)
    used = _function_refs(graph_def.node if nodes is None else nodes, names)
    queue = list(used)
    while queue:
        func = by_name[queue.pop()]
        for ref in _function_refs(func.node_def, names) - used:
            used.add(ref)
            queue.append(ref)
    dropped = sorted(names - used)
    if not used:
        graph_def.ClearField("library")
    elif dropped:
        kept = [f for f in graph_def.library.function if f.signature.name in used]
        grads = [g for g in graph_def.library.gradient if g.function_name in used]
        graph_def.library.ClearField("function")
        graph_def.library.function.extend(kept)
        graph_def.library.ClearField("gradient")
        graph_def.library.gradient.extend(grads)
    return dropped
