"""``graphkit inspect`` for a Caffe model: the text rendering of graphkit.convert.caffe.describe_caffe."""

from __future__ import annotations

from graphkit.text import human_bytes


def caffe_text(info: dict, show_all: bool = False) -> str:
    lines = [f"{info['path']}  (Caffe net '{info['name']}', {len(info['layers'])} layers)"]
    lines.append(f"weights: {info['caffemodel']} ({human_bytes(info['weight_bytes'])})" if info["caffemodel"]
                 else "weights: none given (shapes from the prototxt alone)")
    lines += ["", "inputs"] + [f"  {i['name']}  {i['shape']}" for i in info["inputs"]]
    lines += ["outputs"] + [f"  {o}" for o in info["outputs"]]
    lines += ["", "layers"]
    rows = info["layers"] if show_all or len(info["layers"]) <= 60 else info["layers"][:60]
    for layer in rows:
        shapes = ", ".join(str(s) for s in layer["top_shapes"]) if layer["top_shapes"] else "?"
        weights = " ".join(f"{w['shape']}" for w in layer["weights"])
        lines.append(f"  {layer['name']:24s} {layer['type']:14s} {','.join(layer['bottoms']):>14s} -> "
                     f"{','.join(layer['tops']):14s} {shapes}" + (f"  weights {weights}" if weights else ""))
        if layer["params"]:
            lines.append(f"  {'':24s} {layer['params'][:100]}")
        if layer.get("note"):
            lines.append(f"  {'':24s} ({layer['note']})")
    if len(rows) < len(info["layers"]):
        lines.append(f"  ... {len(info['layers']) - len(rows)} more (--all)")
    if info["unsupported"]:
        lines.append(f"\ncaffe2tf cannot convert: {', '.join(info['unsupported'])} (cut before with --outputs)")
    if info["problem"]:
        lines.append(f"note: {info['problem']}")
    if info["unused_weights"]:
        lines.append(f"caffemodel layers the prototxt lacks: {', '.join(info['unused_weights'])}")
    return "\n".join(lines)
