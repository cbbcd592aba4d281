"""``strip-training``, ``dedupe`` and ``cleanup``.

- ``strip-training``: ``prune --strip-training`` (io/training.py): Identity-like pass-throughs,
  CheckNumerics, Assert/Print chains.
- ``dedupe``: constants of one value (dtype, shape, bytes), attrs, device and control inputs merged into
  the first; then nodes with the same op, inputs, attrs and device (Grappler's ``ArithmeticOptimizer``
  dedup, core/grappler/optimizers/arithmetic_optimizer.cc, which keeps nodes on other devices apart too)
  -- never stateful ops (a ``RandomUniform`` twice is two draws), control flow or outputs' names. One
  sweep in graph order sees every merge (each node's inputs are merged before it is looked at); a graph
  out of order is swept again until nothing more merges.
- ``cleanup``: control inputs from ``NoOp``s that order nothing stateful dropped, Identities spliced out
  (not an output's, not after control flow: a Switch's pivot), unused nodes removed (what the outputs do
  not need; colocations with removed nodes dropped, as prune --inputs does), and the function library
  pruned to what is called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from graphkit.io import training
from graphkit.io.graph import FileSlice, Payload, TensorRef, input_node, parse_ref
from graphkit.io.ops import INFERENCE_IDENTITIES, MERGE_OPS, NEXT_ITERATION_OPS, PLACEHOLDER_OPS, SIDE_EFFECT_ONLY
from graphkit.io.passes import drop_dangling_colocations, drop_unused_library, follow_chains, reachable, rewire
from graphkit.io.scan import TableIndex, compiled
from graphkit.optimize.context import Context, Work, alone
from graphkit.proto import node_def_pb2

STRIPPED_OPS = INFERENCE_IDENTITIES | SIDE_EFFECT_ONLY | {"If", "StatelessIf", "NoOp"}
CONTROL_FLOW = frozenset({"Switch", "RefSwitch", "Enter", "RefEnter", "Exit", "RefExit", "LoopCond",
                          "ControlTrigger"}) | MERGE_OPS | NEXT_ITERATION_OPS


def strip_training_in_place(work: Work, ctx: Context) -> list[str]:
    protected = set(ctx.outputs)
    if not any(name not in protected for name in work.index.of_ops(STRIPPED_OPS)):
        return []  # nothing it would take out (unused nodes are cleanup's)
    gone = training.strip_training_in_place(work.index, ctx.outputs)
    work.forget_removed_payloads()
    return [f"{gone} nodes removed"] if gone else []


def dedupe_in_place(work: Work, ctx: Context) -> list[str]:
    protected = set(ctx.outputs)
    index = work.index
    ops, inputs = index.ops, index.inputs
    twin: dict[str, str] = {}  # a node merged -> the one that stays (every output k to output k)
    _merge_constants(work, [n for n in index.of_ops({"Const"}) if n not in protected], twin)
    op_defs = work.op_defs()
    mergeable = set()
    for op in set(ops.values()):
        op_def = op_defs.get(op)
        if not (op_def is None or op_def.is_stateful or op in CONTROL_FLOW or op in PLACEHOLDER_OPS or op == "Const"):
            mergeable.add(op)

    def same(earlier: str, name: str) -> bool:
        return _same_attrs(index.nodes[earlier], index.nodes[name])

    helpers = compiled()  # the same sweep compiled, when built
    merge_sweep = helpers.merge_sweep if helpers is not None else _merge_sweep
    names = list(inputs)
    renamed: dict[str, list[str]] = {}  # the inputs of nodes that read merged nodes, renamed
    while True:  # once, for a graph in order (each node's inputs merged before it is looked at)
        merges, complete = merge_sweep(names, ops, inputs, mergeable, protected, twin, renamed, same)
        if complete or not merges:
            break
    if not twin:
        return []
    work.remove(set(twin), unread=True)  # (first: the index's record of rewired nodes is small then)
    index.set_inputs(renamed)
    return [f"{len(twin)} duplicate nodes merged"]


def _merge_sweep(names: list[str], ops: Mapping[str, str], inputs: Mapping[str, Sequence[str]],
                 mergeable: set[str], protected: set[str], twin: dict[str, str], renamed: dict[str, list[str]],
                 same: Callable[[str, str], bool]) -> tuple[int, bool]:
    """One pass of "nodes with the same op and inputs are one", in order over every node: its inputs renamed
    through ``twin`` (into ``renamed`` when that changes them; a control input named twice then kept once)
    and, for a node whose op is ``mergeable`` and that is not ``protected``, looked up with its op among the
    nodes before it; ``same(earlier, name)`` decides a match (attrs, device), which goes into ``twin`` at
    once and leaves ``renamed``. Returns the merges, and whether the sweep saw them all: no node left reads a
    merged node (else a node came before what it reads: sweep again). (``_wirescan.merge_sweep`` is this,
    compiled.)"""
    seen: dict[tuple[str, ...], list[str]] = {}
    merges = 0
    for name in names:
        if name in twin:
            continue
        texts = inputs[name]
        new = [_renamed(i, twin) for i in texts]
        if new != list(texts):
            texts = renamed[name] = _controls_once(new)
        else:
            renamed.pop(name, None)
        if ops[name] not in mergeable or name in protected:
            continue
        key = (ops[name], *texts)
        earlier = seen.get(key)
        if earlier is None:
            seen[key] = [name]
            continue
        match = next((other for other in earlier if same(other, name)), None)
        if match is None:
            earlier.append(name)
        else:
            twin[name] = match
            renamed.pop(name, None)
            merges += 1
    complete = not merges or not any(input_node(t) in twin for name in names if name not in twin
                                     for t in renamed.get(name, inputs[name]))
    return merges, complete


def _controls_once(texts: list[str]) -> list[str]:
    """A control input named twice (two merged into one) kept once: the data inputs, then the controls."""
    controls = [i for i in texts if i.startswith("^")]
    if len(set(controls)) == len(controls):
        return texts
    return [i for i in texts if not i.startswith("^")] + list(dict.fromkeys(controls))


def _merge_constants(work: Work, names: list[str], twin: dict[str, str]) -> None:
    """Constants of the same value (and dtype, shape, attrs, device, control inputs) merged into the first
    (``twin``, in place). Small ones are compared by their attrs serialized deterministically; large ones
    are grouped by size, then by a digest of their first 64 KiB, and only those still alike read whole (one
    at a time). On a file's table, those whose bytes are the same but for their names are merged first
    (in C, nothing parsed); the first of each kind then goes through the same comparison, so the result is
    the protobuf path's -- but for large constants, compared by their bytes as written there (two equal in
    value whose attrs were written in another order stay two)."""
    if len(names) < 2:
        return
    index = work.index
    stored_body = None
    if isinstance(index, TableIndex):
        same = index.same_stored(names, _HEAD)
        twin.update(same)
        names = [n for n in names if n not in same]
        stored_body = index.stored_body
    first: dict[tuple[object, ...], str] = {}
    large: dict[tuple[object, ...], list[tuple[str, Payload]]] = {}
    for name in names:
        body = stored_body(name) if stored_body is not None else None
        if body is not None and len(body) > _HEAD:
            large.setdefault(("body", len(body)), []).append((name, body))
        else:
            node = index.nodes[name]
            controls = tuple(sorted(i for i in node.input if i.startswith("^")))
            rest = tuple(sorted((k, v.SerializeToString(deterministic=True)) for k, v in node.attr.items()
                                if k != "value"))
            payload = work.external.get(name)
            if payload is None:
                key = ("node", node.attr["value"].SerializeToString(deterministic=True), rest, node.device,
                       controls)
            else:  # its bytes are in the file
                tensor = node.attr["value"].tensor
                large.setdefault(("payload", int(tensor.dtype), tuple(d.size for d in tensor.tensor_shape.dim),
                                  len(payload), rest, node.device, controls), []).append((name, payload))
                continue
            if key in first:
                twin[name] = first[key]
            else:
                first[key] = name
    for group in large.values():
        if len(group) < 2:
            continue
        by_head: dict[bytes, list[tuple[str, Payload]]] = {}
        for name, payload in group:  # the first 64 KiB first, so those that differ are not read whole
            by_head.setdefault(_digest(payload, _HEAD), []).append((name, payload))
        for same_head in by_head.values():
            seen: dict[bytes, str] = {}
            for name, payload in same_head if len(same_head) > 1 else ():
                digest = _digest(payload)
                if digest in seen:
                    twin[name] = seen[digest]
                else:
                    seen[digest] = name


def _renamed(text: str, twin: dict[str, str]) -> str:
    """An input string naming a merged node, naming the one that stays instead (same port)."""
    target = twin.get(text)  # (the usual input: a bare name)
    if target is not None and target not in twin:
        return target
    if target is None and ":" not in text and not text.startswith("^"):
        return text
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
    return a.device == b.device and set(a.attr) == set(b.attr) and all(
        a.attr[k].SerializeToString(deterministic=True) == b.attr[k].SerializeToString(deterministic=True)
        for k in a.attr)


_HEAD = 64 << 10


def _digest(payload: Payload, limit: int | None = None) -> bytes:
    """A digest of stored bytes (``limit``: of the first bytes only), read one payload at a time."""
    import hashlib  # (only when large constants are compared)

    if isinstance(payload, FileSlice):
        data = payload.read() if limit is None else FileSlice(payload.path, payload.offset,
                                                              min(limit, payload.length)).read()
    else:
        data = bytes(payload[:limit] if limit is not None else payload)
    return hashlib.blake2b(data, digest_size=16).digest()


def cleanup_in_place(work: Work, ctx: Context) -> list[str]:
    index = work.index
    ops, inputs = index.ops, index.inputs
    protected = set(ctx.outputs)
    changes = []
    pure = _pure_noops(work) if work.has_ops({"NoOp"}) else set()  # first: a control edge to an Identity
    # would keep it
    touched = index.drop_controls_from(pure)
    if touched:
        changes.append(f"control inputs from NoOps that order nothing dropped from {len(touched)} nodes")
    mapping: dict[TensorRef, TensorRef] = {}
    for name in index.of_ops({"Identity"}):
        if name in protected or len(inputs[name]) != 1 or index.control_consumers.get(name):
            continue
        source = parse_ref(inputs[name][0])
        if source.control or ops.get(source.node, "Identity") in CONTROL_FLOW or source.node not in inputs:
            continue
        mapping[TensorRef(name)] = source
    mapping = follow_chains(mapping)  # an Identity of an Identity
    if mapping:
        rewire(index, mapping)
        changes.append(f"{len(mapping)} Identity nodes spliced out")
    removed = work.keep_only(reachable(index, ctx.outputs, colocations=False))  # a colocation is a hint
    if index.colocated:
        drop_dangling_colocations(index)
    if removed:
        changes.append(f"{removed} unused nodes removed")
    graph_def = index.graph_def
    functions = drop_unused_library(graph_def, index.nodes.values()) if graph_def is not None else []
    if functions:
        changes.append(f"{len(functions)} unused functions removed")
    return changes


def _pure_noops(work: Work) -> set[str]:
    """NoOps none of whose inputs (through everything before them) is a stateful op."""
    index = work.index
    ops, deps = index.ops, index.deps
    op_defs = work.op_defs()
    memo: dict[str, bool] = {}

    def pure(start: str) -> bool:
        stack, visiting = [(start, False)], set()
        while stack:
            name, expanded = stack.pop()
            if name in memo:
                continue
            inputs = deps.get(name, [])
            if expanded:  # a dependency still being visited is a cycle (a TF1 loop): not taken for pure
                memo[name] = all(memo.get(d, False) for d in inputs)
                visiting.discard(name)
                continue
            if name in visiting:
                continue
            op_def = op_defs.get(ops[name]) if name in ops else None
            if op_def is None or op_def.is_stateful:
                memo[name] = False
                continue
            visiting.add(name)
            stack.append((name, True))
            stack += [(d, False) for d in inputs if d not in memo]
        return memo[start]

    return {name for name in index.of_ops({"NoOp"}) if pure(name)}


strip_training = alone(strip_training_in_place)
dedupe = alone(dedupe_in_place)
cleanup = alone(cleanup_in_place)
