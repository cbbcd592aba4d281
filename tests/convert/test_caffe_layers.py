"""Every layer and parameter combination, in small nets the test writes (prototxt + caffemodel with seeded
random weights), converted and run in TF, checked live against OpenCV's Caffe importer."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import run_graph
from google.protobuf import text_format

from graphkit.convert.caffe import caffe2tf
from graphkit.errors import GraphkitError
from graphkit.proto import caffe_pb2

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless>=4.13,<5 is the Caffe oracle")


def write_net(tmp_path, body: str, shape, blobs: dict[str, list[tuple[int, ...]]], seed=0):
    """A deploy prototxt with ``body`` layers after an Input 'data' of ``shape``, and a caffemodel holding
    random blobs of the given shapes per layer."""
    dims = " ".join(f"dim: {d}" for d in shape)
    text = f'name: "t"\nlayer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}\n{body}'
    proto = tmp_path / "net.prototxt"
    proto.write_text(text)
    net = caffe_pb2.NetParameter()
    text_format.Parse(text, net, allow_unknown_field=True)
    rng = np.random.default_rng(seed)
    for layer in net.layer:
        for blob_shape in blobs.get(layer.name, []):
            blob = layer.blobs.add()
            blob.shape.dim.extend(blob_shape)
            blob.data.extend(rng.uniform(0.1, 1.0, blob_shape).astype(np.float32).ravel() *
                             (1 if layer.type in ("BatchNorm",) else rng.choice([-1, 1], blob_shape).ravel()))
    model = tmp_path / "net.caffemodel"
    model.write_bytes(net.SerializeToString())
    return proto, model


def opencv(proto, model, x, outputs):
    from graphkit.runtime import run_caffe_opencv

    return run_caffe_opencv(str(proto), str(model), x, outputs)


def check(tf, tmp_path, body, shape, blobs, outputs, rtol=1e-4, reference=None):
    """Convert, run in TF, compare with OpenCV (or with ``reference(x, caffemodel_blobs)`` where OpenCV
    has no such layer or departs from Caffe)."""
    proto, model = write_net(tmp_path, body, shape, blobs)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1.0, shape).astype(np.float32)
    if reference is None:
        want = opencv(proto, model, x, outputs)
    else:
        from graphkit.io.caffe import read_caffemodel

        want = reference(x, read_caffemodel(model))
    caffe2tf(proto, model, tmp_path / "net.pb", outputs=outputs)
    got = run_graph(tf, tmp_path / "net.pb", outputs, {"data:0": x})
    for name, g, w in zip(outputs, got, want, strict=True):
        w = w.reshape(g.shape) if w.size == g.size else w
        assert g.shape == w.shape, (name, g.shape, w.shape)
        err = float(np.abs(g - w).max() / max(np.abs(w).max(), 1e-12))
        assert err <= rtol, (name, err)


def conv(name, bottom, params, weights, bias=True):
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
            f'convolution_param {{ {params} {"" if bias else "bias_term: false"} }} }}\n')


CONVS = {
    "square_stride_pad": ("num_output: 6 kernel_size: 3 stride: 2 pad: 1", (1, 3, 11, 12), (6, 3, 3, 3)),
    "rect_hw": ("num_output: 4 kernel_h: 3 kernel_w: 5 pad_h: 2 pad_w: 1 stride_h: 1 stride_w: 2",
                (2, 3, 9, 13), (4, 3, 3, 5)),
    "group2": ("num_output: 6 kernel_size: 3 group: 2", (1, 4, 8, 8), (6, 2, 3, 3)),
    "depthwise_mult2_dilated": ("num_output: 8 kernel_size: 3 group: 4 pad: 2 dilation: 2", (1, 4, 10, 9),
                                (8, 1, 3, 3)),
    "depthwise": ("num_output: 4 kernel_size: 3 group: 4 pad: 1 stride: 2", (1, 4, 9, 10), (4, 1, 3, 3)),
    "dilated": ("num_output: 5 kernel_size: 3 dilation: 2 pad: 1", (1, 3, 12, 11), (5, 3, 3, 3)),
}


@pytest.mark.parametrize("case", sorted(CONVS))
def test_convolution(tf, tmp_path, case):
    params, shape, weights = CONVS[case]
    out = weights[0]
    check(tf, tmp_path, conv("c", "data", params, weights), shape, {"c": [weights, (out,)]}, ["c"])


def test_convolution_without_bias(tf, tmp_path):
    check(tf, tmp_path, conv("c", "data", "num_output: 3 kernel_size: 2", None, bias=False), (1, 2, 6, 7),
          {"c": [(3, 2, 2, 2)]}, ["c"])


def test_deconvolution(tf, tmp_path):
    body = ('layer { name: "d" type: "Deconvolution" bottom: "data" top: "d" '
            'convolution_param { num_output: 3 kernel_size: 4 stride: 2 pad: 1 } }\n')
    check(tf, tmp_path, body, (1, 2, 5, 6), {"d": [(2, 3, 4, 4), (3,)]}, ["d"])


POOLS = {
    "max_ceil_odd": ("pool: MAX kernel_size: 3 stride: 2", (1, 2, 11, 12)),
    "max_pad": ("pool: MAX kernel_size: 3 stride: 2 pad: 1", (1, 2, 10, 13)),
    "ave_pad_ceil": ("pool: AVE kernel_size: 3 stride: 2 pad: 1", (1, 2, 11, 10)),
    "ave_overhang": ("pool: AVE kernel_size: 2 stride: 2", (1, 3, 7, 9)),
    "ave_k3s3": ("pool: AVE kernel_size: 3 stride: 3 pad: 1", (1, 2, 8, 11)),
    "global_ave": ("pool: AVE global_pooling: true", (2, 3, 5, 7)),
    "global_max": ("pool: MAX global_pooling: true", (1, 3, 6, 4)),
    "rect": ("pool: MAX kernel_h: 2 kernel_w: 3 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 1", (1, 2, 7, 8)),
}


@pytest.mark.parametrize("case", sorted(POOLS))
def test_pooling(tf, tmp_path, case):
    params, shape = POOLS[case]
    body = f'layer {{ name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param {{ {params} }} }}\n'
    check(tf, tmp_path, body, shape, {}, ["p"])


def _single(kind, params="", blobs=()):
    body = f'layer {{ name: "y" type: "{kind}" bottom: "data" top: "y" {params} }}\n'
    return body, {"y": list(blobs)}


ELEMENTWISE = {
    "relu": _single("ReLU"),
    "leaky_relu": _single("ReLU", "relu_param { negative_slope: 0.1 }"),
    "prelu": _single("PReLU", "", [(3,)]),
    "prelu_shared": _single("PReLU", "prelu_param { channel_shared: true }", [(1,)]),
    "sigmoid": _single("Sigmoid"),
    "tanh": _single("TanH"),
    "absval": _single("AbsVal"),
    "bnll": _single("BNLL"),
    "power": _single("Power", "power_param { power: 2 scale: 0.5 shift: 1 }"),
    "exp": _single("Exp", "exp_param { base: 2 scale: 0.5 shift: 0.1 }"),
    "exp_e": _single("Exp"),
    "log": _single("Log", "log_param { base: 10 scale: 0.1 shift: 3 }"),
    "elu": _single("ELU", "elu_param { alpha: 0.5 }"),
    "softmax": _single("Softmax"),
    "softmax_axis3": _single("Softmax", "softmax_param { axis: 3 }"),
    "softmax_axis2": _single("Softmax", "softmax_param { axis: -2 }"),
    "dropout": _single("Dropout", "dropout_param { dropout_ratio: 0.3 }"),
    "lrn_across": _single("LRN", "lrn_param { local_size: 5 alpha: 0.5 beta: 0.75 }"),
    "lrn_within": _single("LRN", "lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 norm_region: WITHIN_CHANNEL }"),
    "bias": _single("Bias", "", [(3,)]),
    "lrn_across_k2": _single("LRN", "lrn_param { local_size: 3 alpha: 0.3 beta: 0.5 k: 2 }"),
    "scale_bias": _single("Scale", "scale_param { bias_term: true }", [(3,), (3,)]),
    "batchnorm": _single("BatchNorm", "batch_norm_param { eps: 0.001 }", [(3,), (3,), (1,)]),
}


# OpenCV has no Bias layer: Caffe's definition, y = x + b per channel
def _lrn_across(x, size, alpha, beta, k):
    """Caffe's LRN ACROSS_CHANNELS (lrn_layer.cpp): scale = k + alpha/n * sum of squares over n channels."""
    sq = np.pad(x.astype(np.float64) ** 2, ((0, 0), (size // 2, size // 2), (0, 0), (0, 0)))
    window = sum(sq[:, i:i + x.shape[1]] for i in range(size))
    return (x / (k + alpha / size * window) ** beta).astype(np.float32)


# OpenCV has no Bias layer, ignores LRN's k (always 1) and Log's base/scale/shift (NaNs here): Caffe's
# definitions instead (log_layer.cpp: log_base(shift + scale * x))
REFERENCES = {"bias": lambda x, w: [x + w["y"][0].reshape(1, -1, 1, 1)],
              "log": lambda x, w: [np.log10(3.0 + 0.1 * x.astype(np.float64)).astype(np.float32)],
              "lrn_across_k2": lambda x, w: [_lrn_across(x, 3, 0.3, 0.5, 2.0)]}


@pytest.mark.parametrize("case", sorted(ELEMENTWISE))
def test_elementwise(tf, tmp_path, case):
    body, blobs = ELEMENTWISE[case]
    check(tf, tmp_path, body, (2, 3, 5, 6), blobs, ["y"], reference=REFERENCES.get(case))


def _two(kind, params):
    return ('layer { name: "a" type: "ReLU" bottom: "data" top: "a" relu_param { negative_slope: 0.5 } }\n'
            'layer { name: "b" type: "Sigmoid" bottom: "data" top: "b" }\n'
            f'layer {{ name: "y" type: "{kind}" bottom: "a" bottom: "b" top: "y" {params} }}\n')


def layer(name, kind, bottoms, tops=None, params=""):
    """One prototxt layer."""
    ins = " ".join(f'bottom: "{b}"' for b in bottoms.split())
    outs = " ".join(f'top: "{t}"' for t in (tops or name).split())
    return f'layer {{ name: "{name}" type: "{kind}" {ins} {outs} {params} }}\n'


MULTI = {
    "eltwise_sum_coeff": (_two("Eltwise", "eltwise_param { operation: SUM coeff: 0.5 coeff: -2 }"), ["y"]),
    "eltwise_prod": (_two("Eltwise", "eltwise_param { operation: PROD }"), ["y"]),
    "eltwise_max": (_two("Eltwise", "eltwise_param { operation: MAX }"), ["y"]),
    "concat": (_two("Concat", "concat_param { axis: 1 }"), ["y"]),
    "concat_spatial": (_two("Concat", "concat_param { axis: 3 }"), ["y"]),
    "slice": (layer("s", "Slice", "data", "s1 s2 s3", "slice_param { axis: 1 slice_point: 1 slice_point: 2 }"),
              ["s1", "s2", "s3"]),
    "flatten_ip": (layer("f", "Flatten", "data") + layer("ip", "InnerProduct", "f", None,
                                                         "inner_product_param { num_output: 7 }"), ["f", "ip"]),
    "ip_on_4d": (layer("ip", "InnerProduct", "data", None, "inner_product_param { num_output: 7 }"), ["ip"]),
    "ip_transpose": (layer("f", "Flatten", "data") + layer("ip", "InnerProduct", "f", None,
                                                           "inner_product_param { num_output: 7 transpose: true }"),
                     ["ip"]),
    "ip_4d_transpose": (layer("ip", "InnerProduct", "data", None,
                              "inner_product_param { num_output: 7 transpose: true }"), ["ip"]),
    "split": (layer("s", "Split", "data", "s1 s2") + layer("a", "ReLU", "s1") + layer("b", "Sigmoid", "s2"),
              ["a", "b"]),
    "reshape": (layer("r", "Reshape", "data", None, "reshape_param { shape { dim: 0 dim: 2 dim: -1 } }"), ["r"]),
    "permute_flatten": (layer("p", "Permute", "data", None, "permute_param { order: 0 order: 2 order: 3 order: 1 }")
                        + layer("f", "Flatten", "p"), ["p", "f"]),
    "crop": (layer("pool", "Pooling", "data", None, "pooling_param { pool: MAX kernel_size: 2 stride: 2 }")
             + layer("c", "Crop", "data pool", None, "crop_param { axis: 2 offset: 1 offset: 2 }"), ["c"]),
    "inplace_chain": (layer("conv", "Convolution", "data", None, "convolution_param { num_output: 4 kernel_size: 1 }")
                      + layer("relu", "ReLU", "conv", "conv")
                      + layer("scale", "Scale", "conv", "conv", "scale_param { bias_term: true }"), ["conv"]),
}
MULTI_BLOBS = {"flatten_ip": {"ip": [(7, 90), (7,)]}, "ip_on_4d": {"ip": [(7, 90), (7,)]},
               "ip_transpose": {"ip": [(90, 7), (7,)]}, "ip_4d_transpose": {"ip": [(90, 7), (7,)]},
               "inplace_chain": {"conv": [(4, 3, 1, 1), (4,)], "scale": [(4,), (4,)]}}


# OpenCV ignores InnerProduct's transpose (reads the (in, out) blob as (out, in)): Caffe's y = x W + b
MULTI_REFERENCES = {case: (lambda x, w: [x.reshape(len(x), -1) @ w["ip"][0] + w["ip"][1]])
                    for case in ("ip_transpose", "ip_4d_transpose")}


@pytest.mark.parametrize("case", sorted(MULTI))
def test_multi_blob_layers(tf, tmp_path, case):
    body, outputs = MULTI[case]
    check(tf, tmp_path, body, (2, 3, 5, 6), MULTI_BLOBS.get(case, {}), outputs, reference=MULTI_REFERENCES.get(case))


def test_mismatched_caffemodel_names_layer_blob_and_shapes(tmp_path):
    proto, model = write_net(tmp_path, 'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
                             'inner_product_param { num_output: 10 } }\n', (1, 3, 4, 4), {"ip": [(10, 48), (64,)]})
    with pytest.raises(GraphkitError, match=r"layer 'ip' \(InnerProduct\): blob 1 has shape \[64\] in the caffemodel "
                                            r"but the prototxt needs \[10\]"):
        caffe2tf(proto, model, tmp_path / "x.pb")
    assert not (tmp_path / "x.pb").exists()


def test_unsupported_layers_listed_at_once(tmp_path):
    body = ('layer { name: "m1" type: "MVN" bottom: "data" top: "m1" }\n'
            'layer { name: "m2" type: "MVN" bottom: "m1" top: "m2" }\n'
            'layer { name: "sp" type: "SPP" bottom: "m2" top: "sp" }\n')
    proto, model = write_net(tmp_path, body, (1, 3, 4, 4), {})
    with pytest.raises(GraphkitError, match=r"MVN x2 \(m1, m2\); SPP x1 \(sp\)"):
        caffe2tf(proto, model, tmp_path / "x.pb")


def test_custom_layer_handler(tf, tmp_path):
    """A user's handler for a custom layer type, passed in (no global registry to mutate)."""
    from graphkit.convert.caffe.builder import Tensor

    def double(b, layer, inputs):
        x = inputs[0]
        return [Tensor(b.op(f"{layer.name}/mul", "Mul", [x.ref, b.const(f"{layer.name}/two", np.float32(2))]),
                       x.shape, x.perm)]

    proto, model = write_net(tmp_path, 'layer { name: "d" type: "Double" bottom: "data" top: "d" }\n', (1, 2, 3, 3), {})
    caffe2tf(proto, model, tmp_path / "x.pb", handlers={"Double": double})
    x = np.arange(18, dtype=np.float32).reshape(1, 2, 3, 3)
    np.testing.assert_array_equal(run_graph(tf, tmp_path / "x.pb", ["d"], {"data:0": x})[0], 2 * x)


def test_cifar10_quick_against_opencv_live(tf, tmp_path):
    from conftest import shared

    base = shared("caffe_v1_everpeace")
    proto, model = base / "cifar10_quick.prototxt", base / "cifar10_quick_iter_5000.caffemodel"
    x = np.random.default_rng(3).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
    caffe2tf(proto, model, tmp_path / "q.pb")
    got = run_graph(tf, tmp_path / "q.pb", ["prob"], {"data:0": x})[0]
    want = opencv(proto, model, x, ["prob"])[0]
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


@pytest.mark.parametrize("chain", ["bn", "bn_scale", "bn_scale_inplace", "ip_bn"])
def test_batch_norm_folded_into_the_layer_before(tf, tmp_path, chain):
    """Conv/IP + BatchNorm (+ Scale) become one layer with folded weights: equal to OpenCV, no Mul/Add left."""
    inplace = chain == "bn_scale_inplace"
    first = (layer("c", "Convolution", "data", None, "convolution_param { num_output: 4 kernel_size: 3 }")
             if not chain.startswith("ip") else
             layer("c", "InnerProduct", "data", None, "inner_product_param { num_output: 4 }"))
    body = first + layer("bn", "BatchNorm", "c", "c" if inplace else "bn", "batch_norm_param { eps: 0.001 }")
    out = "c" if inplace else "bn"
    blobs = {"c": [(4, 3, 3, 3) if not chain.startswith("ip") else (4, 90), (4,)], "bn": [(4,), (4,), (1,)]}
    if "scale" in chain:
        body += layer("sc", "Scale", out, "c" if inplace else "sc", "scale_param { bias_term: true }")
        out = "c" if inplace else "sc"
        blobs["sc"] = [(4,), (4,)]
    check(tf, tmp_path, body, (2, 3, 5, 6), blobs, [out])
    from graphkit.io import load

    ops = [n.op for n in load(tmp_path / "net.pb").graph.graph_def.node]
    assert "Mul" not in ops and "AddV2" not in ops


def test_batch_norm_not_folded_when_the_conv_output_is_read_elsewhere(tf, tmp_path):
    body = (layer("c", "Convolution", "data", None, "convolution_param { num_output: 3 kernel_size: 1 }")
            + layer("bn", "BatchNorm", "c", "bn") + layer("sum", "Eltwise", "c bn"))
    check(tf, tmp_path, body, (1, 3, 4, 4), {"c": [(3, 3, 1, 1), (3,)], "bn": [(3,), (3,), (1,)]}, ["sum"])


def caffe_pool(x, kernel, stride, pad, is_max, ceil):
    """A numpy port of Caffe's PoolingLayer Reshape + Forward_cpu loops (docs/formats.md section 5): the reference for
    what OpenCV cannot read (round_mode)."""
    n, c, h, w = x.shape
    out = []
    for size, k, s, p in ((h, kernel[0], stride[0], pad[0]), (w, kernel[1], stride[1], pad[1])):
        span = (size + 2 * p - k) / s
        o = int(np.ceil(span) if ceil else np.floor(span)) + 1
        if p and (o - 1) * s >= size + p:
            o -= 1
        out.append(o)
    y = np.zeros((n, c, out[0], out[1]), np.float32)
    for i in range(out[0]):
        for j in range(out[1]):
            hs, ws = i * stride[0] - pad[0], j * stride[1] - pad[1]
            he, we = min(hs + kernel[0], h + pad[0]), min(ws + kernel[1], w + pad[1])
            pool = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            window = x[:, :, hs:he, ws:we]
            y[:, :, i, j] = window.max(axis=(2, 3)) if is_max else window.sum(axis=(2, 3)) / pool
    return y


@pytest.mark.parametrize("pool", ["MAX", "AVE"])
@pytest.mark.parametrize("mode", ["CEIL", "FLOOR"])
@pytest.mark.parametrize("geometry", [(3, 2, 1, 11), (3, 2, 0, 10), (2, 2, 1, 7), (5, 3, 2, 13), (3, 3, 1, 8)])
def test_pooling_round_mode_against_caffe_loops(tf, tmp_path, pool, mode, geometry):
    k, s, p, size = geometry
    params = f"pool: {pool} kernel_size: {k} stride: {s} pad: {p} round_mode: {mode}"
    body = f'layer {{ name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param {{ {params} }} }}\n'

    def reference(x, _w):
        return [caffe_pool(x, (k, k), (s, s), (p, p), pool == "MAX", mode == "CEIL")]

    check(tf, tmp_path, body, (1, 2, size, size + 1), {}, ["p"], reference=reference)


def test_training_layers_dropped_and_input_shape_declaration(tf, tmp_path):
    """input + input_shape declares the input; Data/loss/Accuracy/Silence layers are dropped and reported."""
    text = ('name: "t"\ninput: "data"\ninput_shape { dim: 1 dim: 2 dim: 4 dim: 4 }\n'
            'layer { name: "label" type: "Data" top: "label" }\n'
            + layer("r", "ReLU", "data") + layer("loss", "SoftmaxWithLoss", "r label")
            + layer("acc", "Accuracy", "r label") + layer("quiet", "Silence", "label"))
    proto = tmp_path / "n.prototxt"
    proto.write_text(text)
    model = tmp_path / "n.caffemodel"
    model.write_bytes(caffe_pb2.NetParameter(name="t").SerializeToString())
    report = caffe2tf(proto, model, tmp_path / "n.pb")
    assert report.inputs == [{"name": "data", "blob": "data", "shape": [-1, 2, 4, 4]}]
    assert [o["name"] for o in report.outputs] == ["r"]
    assert report.dropped == ["label (Data)", "loss (SoftmaxWithLoss)", "acc (Accuracy)", "quiet (Silence)"]
    x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(1, 2, 4, 4)
    np.testing.assert_array_equal(run_graph(tf, tmp_path / "n.pb", ["r"], {"data:0": x})[0], np.maximum(x, 0))


def test_degenerate_pooling_window_is_refused(tmp_path):
    body = layer("p", "Pooling", "data", None, "pooling_param { pool: MAX kernel_size: 2 stride: 3 }")
    proto, model = write_net(tmp_path, body, (1, 1, 9, 9), {})
    with pytest.raises(GraphkitError, match=r"layer 'p' \(Pooling\): the last pooling window on a 9x9 input"):
        caffe2tf(proto, model, tmp_path / "x.pb")


def test_batch_norm_with_batch_statistics(tf, tmp_path):
    """use_global_stats: false in a deploy net: Caffe normalizes with the batch's own statistics."""
    body = (layer("c", "Convolution", "data", None, "convolution_param { num_output: 3 kernel_size: 1 }")
            + layer("bn", "BatchNorm", "c", "bn", "batch_norm_param { use_global_stats: false eps: 0.001 }"))

    def reference(x, w):
        conv = np.einsum("nchw,oc->nohw", x, w["c"][0].reshape(3, 3)) + w["c"][1].reshape(1, 3, 1, 1)
        mean = conv.mean(axis=(0, 2, 3), keepdims=True)
        var = ((conv - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
        return [(conv - mean) / np.sqrt(var + 0.001)]

    check(tf, tmp_path, body, (2, 3, 4, 5), {"c": [(3, 3, 1, 1), (3,)], "bn": [(3,), (3,), (1,)]}, ["bn"],
          reference=reference)


_BAD_NET = """name: "t"
input: "data"
{dims}
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param {{ num_output: 4 kernel_size: 3 stride: {stride} group: {group} }} }}
layer {{ name: "pool" type: "Pooling" bottom: "conv" {top}
        pooling_param {{ pool: MAX kernel_size: 2 stride: {pool} }} }}
"""


@pytest.mark.parametrize("edit, says", [
    ({"stride": 0}, "layer 'conv' (Convolution): stride 0 (must be at least 1)"),
    ({"group": 0}, "layer 'conv' (Convolution): group 0 (must be at least 1)"),
    ({"pool": 0}, "layer 'pool' (Pooling): stride 0 (must be at least 1)"),
    ({"dims": "input_dim: 1 input_dim: 3 input_dim: 8"}, "input_dim gives 3 values for 1 input(s)"),
    ({"top": ""}, "layer 'pool' (Pooling) has no top blob"),
])
def test_nets_caffe_refuses_are_refused_by_name(runner, tmp_path, edit, says):
    """Issue 13.5: these were ZeroDivisionError, tuple.index and zip() internal errors."""
    from graphkit.cli import cli

    fields = {"dims": "input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8", "stride": 1, "group": 1, "pool": 2,
              "top": 'top: "pool"', **edit}
    path = tmp_path / "net.prototxt"
    path.write_text(_BAD_NET.format(**fields))
    caffe2tf = ["caffe2tf", str(path), str(tmp_path / "w.caffemodel"), str(tmp_path / "o.pb")]
    for args in (["inspect", str(path)], caffe2tf):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1 and says in result.stderr and str(path) in result.stderr, result.stderr
    (tmp_path / "latin1.prototxt").write_bytes(b'name: "t\xff"\ninput: "data"\n')
    result = runner.invoke(cli, ["inspect", str(tmp_path / "latin1.prototxt")])
    assert result.exit_code == 1 and "not UTF-8 text" in result.stderr


@pytest.mark.parametrize("body, blobs, says", [
    ('layer { name: "c" type: "Concat" bottom: "data" bottom: "data" top: "c" concat_param { axis: 5 } }\n', {},
     "layer 'c' (Concat): axis 5 is out of range for a 4-D blob"),
    ('layer { name: "s" type: "Softmax" bottom: "data" top: "s" softmax_param { axis: 9 } }\n', {},
     "layer 's' (Softmax): axis 9 is out of range"),
    ('layer { name: "f" type: "Flatten" bottom: "data" top: "f" flatten_param { axis: -9 } }\n', {},
     "layer 'f' (Flatten): axis -9 is out of range"),
    (conv("k", "data", "num_output: 2 kernel_size: 1", None), {"k": [(2, 3, 1, 1), (2,), (2,)]},
     "layer 'k' (Convolution): the caffemodel has 3 blobs for it but Caffe takes 2"),
])
def test_layers_caffe_refuses_are_not_converted(tmp_path, body, blobs, says):
    """Issue 13.11: caffe2tf wrote graphs Caffe would refuse (axes wrapped around, a third conv blob)."""
    from graphkit.errors import GraphkitError

    proto, model = write_net(tmp_path, body, (1, 3, 4, 4), blobs)
    with pytest.raises(GraphkitError, match=re.escape(says)):
        caffe2tf(proto, model, tmp_path / "out.pb")
    assert not (tmp_path / "out.pb").exists()


def test_caffe_names_tf_refuses_become_valid_node_names(tf, tmp_path):
    """Issue 13 corpus: Caffe allows any layer or blob name ("", "_x", "a b:0"); TF's importer refuses them.
    caffe2tf makes them valid (the report keeps the blob's own name) and --verify still finds OpenCV's
    outputs by the Caffe names."""
    body = ('layer { name: "" type: "ReLU" bottom: "data" top: "_r elu:0" }\n'
            'layer { name: "scale me" type: "Power" bottom: "_r elu:0" top: "out put" power_param { scale: 2 } }\n')
    proto, model = write_net(tmp_path, body, (1, 2, 3, 3), {})
    report = caffe2tf(proto, model, tmp_path / "n.pb", verify=True)
    assert [(o["name"], o["blob"]) for o in report.outputs] == [("out_put", "out put")]
    assert report.verified and all(d.ok for d in report.verified)
    from graphkit.io import load, validate

    assert validate(load(tmp_path / "n.pb").graph.graph_def) == []
    x = np.linspace(-1, 1, 18, dtype=np.float32).reshape(1, 2, 3, 3)
    np.testing.assert_allclose(run_graph(tf, tmp_path / "n.pb", ["out_put"], {"data:0": x})[0], 2 * np.maximum(x, 0))
