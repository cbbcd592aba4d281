"""``constants`` and ``dead-branches``: inputs fixed to values, and control flow whose predicate is then
constant reduced to the branch taken.

- ``constants``: a ``Placeholder``/``PlaceholderWithDefault`` named by ``--constant NAME=VALUE`` becomes a
  Const of that value (cast to its dtype; its declared shape must allow the value's); with
  ``--fold-defaults`` every PlaceholderWithDefault whose default is a constant becomes that constant
  (``is_training``, ``keep_prob``) unless ``--inputs`` names it.
- ``dead-branches``, TF1 control flow (``core/common_runtime/executor.cc``'s dead tensors): a ``Switch`` whose
  predicate is constant forwards its data on the taken port; everything fed by the other port is dead --
  a node with a dead data or control input is dead, except a ``Merge``, dead only when all its inputs are.
  A Merge left with one live input is replaced by it (its ``value_index`` by a Const). Dead nodes go.
  Functional control flow: an ``If``/``StatelessIf`` with a constant ``cond`` (true when non-zero, as TF's
  ``ToBool``), or a ``Case``/``StatelessCase`` with a constant index (out of range: the last branch, as
  TF's Case kernel), becomes the taken branch's body, inlined. ``While`` is left alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphkit.errors import GraphkitError
from graphkit.io import dtypes
from graphkit.io.graph import GraphIndex, TensorRef, parse_ref, unique_name
from graphkit.io.inline import inline_call_in_place
from graphkit.io.ops import BRANCH_OPS, MERGE_OPS
from graphkit.io.passes import follow_chains, reachable, rewire
from graphkit.io.shapes import shape_of
from graphkit.optimize.context import Context, Work, alone, attr, const_node, const_value, reads_port, short_value
from graphkit.proto import node_def_pb2

if TYPE_CHECKING:
    import numpy as np

SWITCH_OPS = frozenset({"Switch", "RefSwitch"})


def fold_inputs_in_place(work: Work, ctx: Context) -> list[str]:
    """The ``constants`` pass."""
    if not ctx.constants and not (ctx.fold_defaults and work.has_ops({"PlaceholderWithDefault"})):
        return []
    import numpy as np

    index = work.index
    placeholders = index.of_ops({"Placeholder", "PlaceholderWithDefault"})
    changes = []
    for name in ctx.constants:
        node = index.nodes.get(name)
        if node is None:
            inputs = placeholders
            raise GraphkitError(f"--constant {name}: not in the graph{index.suggest(name)}; the inputs are "
                                f"{', '.join(inputs) or 'none'}")
        if node.op not in ("Placeholder", "PlaceholderWithDefault"):
            raise GraphkitError(f"--constant {name}: a {node.op}, not an input (a Placeholder or "
                                "PlaceholderWithDefault)")
        if name in ctx.inputs:
            raise GraphkitError(f"--constant {name} and --inputs {name}: an input cannot also be a constant")
    for name in placeholders:
        node = index.nodes[name]
        if node.name in ctx.inputs:
            continue
        if node.name in ctx.constants:
            value = _as_input_value(node, ctx.constants[node.name])
            why = "--constant"
        elif node.op == "PlaceholderWithDefault" and ctx.fold_defaults and node.input:
            default = const_value(work, parse_ref(node.input[0]))
            if default is None:
                continue
            value, why = np.asarray(default), "its default"
        else:
            continue
        new = const_node(node.name, value)
        new.device = node.device
        work.replace(new)
        changes.append(f"{node.name} = {short_value(value, 4)} ({why})")
    return changes


def _as_input_value(node: node_def_pb2.NodeDef, value: object) -> np.ndarray:
    import numpy as np

    code = dtypes.base(attr(node, "dtype").type)
    try:
        array = np.asarray(value).astype(dtypes.to_numpy(code))
    except (TypeError, ValueError) as exc:
        raise GraphkitError(f"--constant {node.name}: not a {dtypes.name(code)} value ({exc})") from None
    declared = shape_of(attr(node, "shape").shape) if "shape" in node.attr and not \
        attr(node, "shape").shape.unknown_rank else None
    if declared is not None and (len(declared) != array.ndim or any(
            d not in (-1, n) for d, n in zip(declared, array.shape, strict=True))):
        raise GraphkitError(f"--constant {node.name}: shape {list(array.shape)} does not fit the input's "
                            f"{list(declared)}")
    return array


def dead_branches_in_place(work: Work, ctx: Context) -> list[str]:
    """The ``dead-branches`` pass."""
    changes = _switches_in_place(work, ctx) if work.has_ops(SWITCH_OPS) else []
    if work.has_ops(BRANCH_OPS) and work.index.graph_def is not None:  # (a file's table has no library)
        changes += _functional_in_place(work, ctx)
    return changes


def _switches_in_place(work: Work, ctx: Context) -> list[str]:
    index = work.index
    forward: dict[TensorRef, TensorRef] = {}
    dead_ports: set[TensorRef] = set()
    changes = []
    for name in index.of_ops(SWITCH_OPS):
        node = index.nodes[name]
        if len(node.input) < 2:
            continue
        pred = const_value(work, parse_ref(node.input[1]))
        if pred is None or pred.size != 1:
            continue
        taken = 1 if bool(pred.reshape(-1)[0]) else 0
        forward[TensorRef(node.name, taken)] = parse_ref(node.input[0])
        dead_ports.add(TensorRef(node.name, 1 - taken))
        changes.append(f"{node.name}: {'true' if taken else 'false'} branch taken")
    if not forward:
        return []
    dead = _dead_nodes(index, dead_ports)
    hit = sorted(n for n in ctx.outputs if n in dead)
    if hit:
        raise GraphkitError(f"output {hit[0]} is in a branch the constant predicate never takes (TF would never "
                            "compute it); choose outputs the taken branch reaches")
    merges = [index.nodes[n] for n in index.of_ops(MERGE_OPS) if n not in dead]
    mapping = dict(forward)
    gone = set(dead)
    new_nodes: list[node_def_pb2.NodeDef] = []
    for merge in merges:
        live = [parse_ref(i) for i in merge.input if not i.startswith("^")
                and parse_ref(i) not in dead_ports and parse_ref(i).node not in dead]
        data = [i for i in merge.input if not i.startswith("^")]
        if len(live) == len(data):
            continue
        if len(live) > 1:  # several inputs still live: the dead ones leave it, unless its value_index is read
            if not reads_port(index, merge.name, 1):
                del merge.input[:]
                merge.input.extend([str(r) for r in live] + [i for i in index.inputs[merge.name] if i.startswith("^")])
                merge.attr["N"].i = len(live)
                work.changed([merge.name])
                changes.append(f"{merge.name}: {len(data) - len(live)} dead inputs dropped")
            continue
        position = [parse_ref(i) for i in data].index(live[0])
        mapping[TensorRef(merge.name, 0)] = live[0]
        if reads_port(index, merge.name, 1):
            import numpy as np

            names = set(index.inputs) | {n.name for n in new_nodes}
            value = const_node(unique_name(f"{merge.name}/value_index", names), np.array(position, np.int32))
            new_nodes.append(value)
            mapping[TensorRef(merge.name, 1)] = TensorRef(value.name)
        gone.add(merge.name)
        changes.append(f"{merge.name}: merged input {position} kept")
    work.add(new_nodes)
    rewire(index, follow_chains(mapping))  # a Merge's live input may itself be a forwarded Switch port
    _keep_what_is_still_read(index, gone)
    work.remove(gone)
    unused = work.keep_only(reachable(index, ctx.outputs))  # the Switches passed by, and what only fed them
    changes.append(f"{len(dead)} nodes in branches not taken removed, {unused} left unused")
    return changes


def _keep_what_is_still_read(index: GraphIndex, gone: set[str]) -> None:
    """Take out of ``gone`` (in place) the dead nodes a node that stays still reads -- a Merge whose
    value_index is read keeps its dead inputs -- and what they read: TF handles their deadness at run time,
    and the graph stays whole."""
    producers = index.deps
    stack = [d for name, inputs in producers.items() if name not in gone for d in inputs if d in gone]
    while stack:
        name = stack.pop()
        if name in gone:
            gone.discard(name)
            stack += [d for d in producers.get(name, []) if d in gone]


def _dead_nodes(index: GraphIndex, dead_ports: set[TensorRef]) -> set[str]:
    """Every node a dead output reaches: through data and control edges, a Merge only when all of its
    data inputs are dead."""
    dead: set[str] = set()
    stack = [c for ref in dead_ports for c, i in index.consumers.get(ref.node, [])
             if parse_ref(index.inputs[c][i]).port == ref.port]
    while stack:
        name = stack.pop()
        if name in dead:
            continue
        node = index.nodes[name]
        if node.op in MERGE_OPS:
            data = [parse_ref(i) for i in node.input if not i.startswith("^")]
            if not all(r in dead_ports or r.node in dead for r in data):
                continue
        dead.add(name)
        stack += [c for c, _ in index.consumers.get(name, [])]
        stack += index.control_consumers.get(name, [])
    return dead


def _functional_in_place(work: Work, ctx: Context) -> list[str]:
    changes: list[str] = []
    graph = work.graph()  # inlining edits a GraphDef and its library
    while True:
        index = GraphIndex(graph.graph_def)
        local = Work(index, graph.external)
        picked = None
        for node in graph.graph_def.node:
            if node.op not in BRANCH_OPS or node.name in ctx.outputs or not node.input:
                continue
            pred = const_value(local, parse_ref(node.input[0]))
            if pred is None or pred.size != 1:
                continue
            picked = (node, _branch(node, pred.reshape(-1)[0]))
            break
        if picked is None:
            if changes:
                work.reset(graph)
            return changes
        node, branch = picked
        call = node_def_pb2.NodeDef(name=node.name, op="PartitionedCall", device=node.device,
                                    input=list(node.input[1:]))
        for key in ("Tin", "Tout"):
            call.attr[key].CopyFrom(node.attr[key])
        call.attr["f"].func.name = branch
        node.CopyFrom(call)
        inline_call_in_place(graph.graph_def, node.name)
        changes.append(f"{node.name}: branch {branch} inlined")


def _branch(node: node_def_pb2.NodeDef, value: object) -> str:
    if node.op in ("If", "StatelessIf"):
        return node.attr["then_branch" if bool(value) else "else_branch"].func.name
    branches = [f.name for f in attr(node, "branches").list.func]
    index = int(value)  # type: ignore[call-overload]
    return branches[index if 0 <= index < len(branches) else len(branches) - 1]



fold_inputs = alone(fold_inputs_in_place)
dead_branches = alone(dead_branches_in_place)
