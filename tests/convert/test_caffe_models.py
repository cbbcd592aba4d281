"""caffe2tf on the real Caffe models: run in TF, compared with OpenCV 4.13's outputs in reference/*.npz."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_graph, shared

from graphkit.cli import cli
from graphkit.convert.caffe import caffe2tf
from graphkit.errors import GraphkitError
from graphkit.io import load, validate

CASES = [  # folder, prototxt, caffemodel, reference, input shape override
    ("mtcnn_kpzhang", "det1", "det1", "det1", None),
    ("mtcnn_kpzhang", "det1", "det1", "det1_large", (2, 3, 61, 47)),
    ("mtcnn_kpzhang", "det2", "det2", "det2", None),
    ("mtcnn_kpzhang", "det3", "det3", "det3", None),
    ("mtcnn_kpzhang", "det4", "det4", "det4", None),
    ("caffe_v1_everpeace", "lenet", "lenet_iter_10000", "lenet", None),
    ("caffe_v1_everpeace", "cifar10_full", "cifar10_full_iter_60000", "cifar10_full", None),
    ("lenet_caffe_tensorflow", "lenet", "lenet_iter_10000", "lenet", None),
    ("ultraface_1mb", "RFB-320", "RFB-320", "RFB-320", None),
    ("ultraface_1mb", "slim-320", "slim-320", "slim-320", None),
]


def _relative(got, want):
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("folder,proto,model,ref,shape", CASES, ids=[c[3] for c in CASES])
def test_matches_opencv_reference(tf, tmp_path, folder, proto, model, ref, shape, layout):
    base = shared(folder)
    data = np.load(base / "reference" / f"{ref}.npz")
    outputs = [k for k in data.files if k != "input"]
    out = tmp_path / "model.pb"
    report = caffe2tf(base / f"{proto}.prototxt", base / f"{model}.caffemodel", out, layout=layout,
                      input_shapes={report_input(base / f"{proto}.prototxt"): shape} if shape else None)
    assert validate(load(out).graph.graph_def) == []
    assert sorted(o["name"] for o in report.outputs) == sorted(outputs)
    name = report.inputs[0]["name"]
    x = data["input"]
    feed = x if layout == "nchw" else x.transpose(0, 2, 3, 1)
    got = run_graph(tf, out, outputs, {f"{name}:0": feed})
    for o, value in zip(outputs, got, strict=True):
        want = data[o]
        if layout == "nhwc" and want.ndim == 4:
            want = want.transpose(0, 2, 3, 1)
        assert value.shape == want.shape, o
        assert _relative(value, want) <= 1e-4, (o, _relative(value, want))


def report_input(prototxt):
    from graphkit.io.caffe import read_caffe

    return next(iter(read_caffe(prototxt).inputs))


def test_ssd_detector_stops_before_detection_output_then_converts_to_there(tf, tmp_path):
    base = shared("yufacedetectnet_v2")
    proto, model = base / "yufacedetectnet-open-v2.prototxt", base / "yufacedetectnet-open-v2.caffemodel"
    with pytest.raises(GraphkitError, match=r"DetectionOutput x1 \(detection_out\) -- cut before them"):
        caffe2tf(proto, model, tmp_path / "y.pb")
    assert not (tmp_path / "y.pb").exists()
    data = np.load(base / "reference" / "yufacedetectnet-open-v2.npz")
    outputs = ["mbox_loc", "mbox_conf_flatten", "mbox_priorbox"]  # Normalize, PriorBox, Permute, Flatten, Concat
    caffe2tf(proto, model, tmp_path / "y.pb", outputs=outputs)
    got = run_graph(tf, tmp_path / "y.pb", outputs, {"data:0": data["input"]})
    for o, value in zip(outputs, got, strict=True):
        assert _relative(value, data[o]) <= 1e-4, o


def test_cli_and_json(runner, tmp_path):
    base = shared("mtcnn_kpzhang")
    args = ["caffe2tf", str(base / "det1.prototxt"), str(base / "det1.caffemodel"), str(tmp_path / "p.pb")]
    result = runner.invoke(cli, [*args, "--input-shape", "data=1,3,100,80", "--layout", "nhwc"])
    assert result.exit_code == 0, result.output
    assert "inputs: data [-1, 100, 80, 3]" in result.output and "prob1 [-1, 45, 35, 2]" in result.output
    result = runner.invoke(cli, [*args[:3], str(tmp_path / "q.pb"), "--json"])
    assert result.exit_code == 0 and '"layers_converted": 10' in result.output
    result = runner.invoke(cli, [*args[:3], str(tmp_path / "r.pb"), "--input-shape", "nope=1,2"])
    assert result.exit_code == 1 and "'nope', which is not an input" in result.stderr
    result = runner.invoke(cli, [*args[:3], str(tmp_path / "r.pb"), "--layout", "nhcw"])
    assert result.exit_code == 2


def test_verify_against_opencv(tmp_path, runner):
    pytest.importorskip("cv2", reason="opencv-python-headless>=4.13,<5 is the Caffe oracle")
    base = shared("mtcnn_kpzhang")
    report = caffe2tf(base / "det3.prototxt", base / "det3.caffemodel", tmp_path / "o.pb", verify=True)
    assert {d.output for d in report.verified} == {"conv6-2", "conv6-3", "prob1"}
    assert all(d.ok and d.max_rel_to_max <= 1e-4 for d in report.verified)
    result = runner.invoke(cli, ["caffe2tf", str(base / "det1.prototxt"), str(base / "det1.caffemodel"),
                                 str(tmp_path / "p.pb"), "--verify", "--rtol", "1e-12", "--atol", "0", "--layout",
                                 "nhwc"])
    assert result.exit_code == 1
    assert "--verify: the TF graph differs from OpenCV's Caffe over rtol 1e-12 / atol 0.0" in result.stderr
    assert not (tmp_path / "p.pb").exists()  # a graph that failed its check is not left behind


def test_inspect_a_prototxt(runner):
    import json

    base = shared("mtcnn_kpzhang")
    result = runner.invoke(cli, ["inspect", str(base / "det2.prototxt"), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["caffemodel"].endswith("det2.caffemodel") and info["outputs"] == ["conv5-2", "prob1"]
    layers = {layer["name"]: layer for layer in info["layers"]}
    assert layers["pool2"]["top_shapes"] == [[1, 48, 4, 4]]  # Caffe's ceil rounding: 9 -> 4
    assert layers["conv4"]["weights"] == [{"shape": [128, 576], "bytes": 294912}, {"shape": [128], "bytes": 512}]
    assert info["unused_weights"] == ["conv5-3"]
    wrong = runner.invoke(cli, ["inspect", str(base / "det4.prototxt"), "--caffemodel", str(base / "det1.caffemodel")])
    assert wrong.exit_code == 0  # inspect reports, it does not refuse: det1's weights do not fit det4's layers
    assert "note: shapes unknown from layer 'conv1_1'" in wrong.output
    assert "no weights in the caffemodel" in wrong.output


def test_inspect_a_prototxt_without_weights_and_with_unsupported_layers(runner, tmp_path):
    import json
    import shutil

    base = shared("yufacedetectnet_v2")
    proto = tmp_path / "deploy.prototxt"
    shutil.copy(base / "yufacedetectnet-open-v2.prototxt", proto)  # no caffemodel beside it
    info = json.loads(runner.invoke(cli, ["inspect", str(proto), "--json"]).output)
    assert info["caffemodel"] is None and info["unsupported"] == ["DetectionOutput"]
    layers = {layer["name"]: layer for layer in info["layers"]}
    assert layers["mbox_priorbox"]["top_shapes"] == [[1, 2, 17680]] and layers["conv1_1"]["weights"] == []
    assert "detection_out" in info["problem"]


def test_readme_table_of_supported_layers_is_generated():
    from conftest import ROOT

    from graphkit.convert.caffe import supported_layers_table

    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- caffe-layers:start -->\n", 1)[1].split("\n<!-- caffe-layers:end -->", 1)[0]
    assert section == supported_layers_table()
