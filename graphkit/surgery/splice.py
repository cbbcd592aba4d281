"""``graphkit splice``: graph A feeds graph B (input_map across two graphs)."""

from __future__ import annotations

import os

from graphkit.errors import GraphkitError, about
from graphkit.io import Graph, GraphIndex, parse_ref
from graphkit.io.graph import TensorRef
from graphkit.io.names import renamer
from graphkit.io.passes import drop_dangling_colocations, extract_subgraph, rewire
from graphkit.io.roles import output_dtype
from graphkit.io.save import Progress
from graphkit.proto import graph_pb2
from graphkit.surgery.core import SurgeryReport, check_dtype, finish, loaded_names, open_graph, require_used, sinks
from graphkit.surgery.rename import rename_graph

_MARK = "\x00a/"


def splice(
    a_path: str | os.PathLike[str],
    b_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    connect: dict[str, str],
    prefix_a: str | None = None,
    prefix_b: str | None = None,
    tags: list[str] | None = None,
    text: bool | None = None,
    progress: Progress | None = None,
) -> SurgeryReport:
    """One graph holding A and B, where each ``connect`` entry A_TENSOR -> B_TENSOR makes B read A's tensor
    instead of its own (B's tensor names are B's, before prefixes). All of A is kept; B is pruned of what only
    fed the replaced tensors. Names are prefixed with ``prefix_a``/``prefix_b``; a name in both is an error
    naming the nodes. Function libraries are merged (same name, different body: an error)."""
    with about(b_path):
        if not connect:
            raise GraphkitError("give at least one --connect A_TENSOR=B_TENSOR")
        model_a, model_b = open_graph(a_path, tags), open_graph(b_path, tags)
        assert model_a.graph is not None and model_b.graph is not None
        ga, gb = model_a.graph.graph_def, model_b.graph.graph_def
        ia, ib = GraphIndex(ga), GraphIndex(gb)
        b_outputs = sinks(gb)
        mapping: dict[TensorRef, TensorRef] = {}
        fa = renamer(add_prefix=prefix_a)
        fb = renamer(add_prefix=prefix_b)
        for a_text, b_text in connect.items():
            a_ref, b_ref = parse_ref(a_text), parse_ref(b_text)
            ia.node(a_ref.node)
            require_used(ib, b_ref)
            check_dtype(ib, b_ref, output_dtype(ia.nodes[a_ref.node], a_ref.port), f"A's '{a_ref}'")
            # B's readers first point at a placeholder name, so pruning B cannot confuse A's node with B's own
            mapping[TensorRef(fb(b_ref.node), b_ref.port, b_ref.control)] = TensorRef(
                _MARK + fa(a_ref.node), a_ref.port, a_ref.control)
        ra = rename_graph(ga, fa) if prefix_a else ga
        rb = rename_graph(gb, fb)
        names_a = {n.name for n in ra.node}
        clashes = [n.name for n in rb.node if n.name in names_a]
        merged = graph_pb2.GraphDef()
        merged.CopyFrom(rb)
        rewire(merged, mapping)
        merged = extract_subgraph(merged, [fb(n) for n in b_outputs], colocations=False)
        rewire(merged, {v: TensorRef(v.node[len(_MARK):], v.port, v.control) for v in mapping.values()})
        keep_b_names = {n.name for n in merged.node}
        clashes = [n for n in clashes if n in keep_b_names]
        if clashes:
            raise GraphkitError(f"A and B both have nodes named {', '.join(clashes[:8])}"
                                + (f" (+{len(clashes) - 8} more)" if len(clashes) > 8 else "")
                                + "; use --prefix-a or --prefix-b")
        result = graph_pb2.GraphDef()
        result.CopyFrom(ra)
        result.node.extend(n for n in merged.node if n.name in keep_b_names)
        _merge_library(result, rb)
        if rb.versions.producer > result.versions.producer:
            result.versions.CopyFrom(rb.versions)
        drop_dangling_colocations(result)
        external = {fa(k): v for k, v in model_a.graph.external.items()}
        external.update({fb(k): v for k, v in model_b.graph.external.items() if fb(k) in keep_b_names})
        report = SurgeryReport("splice", outputs=[fb(n) for n in b_outputs if fb(n) in keep_b_names])
        report.rewritten = sorted(str(k) for k in mapping)
        model_a.files += model_b.files
        return finish(model_a, Graph(result, external), out, report, before=loaded_names(model_a), text=text,
                      progress=progress)


def _merge_library(dst: graph_pb2.GraphDef, src: graph_pb2.GraphDef) -> None:
    have = {f.signature.name: f for f in dst.library.function}
    for func in src.library.function:
        other = have.get(func.signature.name)
        if other is None:
            dst.library.function.add().CopyFrom(func)
        elif other != func:
            raise GraphkitError(f"A and B both define function '{func.signature.name}', differently")
    grads = {(g.function_name, g.gradient_func) for g in dst.library.gradient}
    for grad in src.library.gradient:
        if (grad.function_name, grad.gradient_func) not in grads:
            dst.library.gradient.add().CopyFrom(grad)
