"""``graphkit inspect`` from the command line: every view, --json schemas, real models, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from conftest import FIXTURES, ROOT, SHARED, fixture_checkpoint, shared

from graphkit.cli import cli


def run(runner, *args):
    return runner.invoke(cli, ["inspect", *[str(a) for a in args]], catch_exceptions=False)


def run_json(runner, *args):
    result = run(runner, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_summary_json_schema(runner):
    s = run_json(runner, fixture_checkpoint("mlp_ref"))
    assert s["format"] == "checkpoint" and s["node_count"] == 191
    assert {"format", "node_count", "ops", "inputs", "outputs", "variables"} <= set(s)
    assert s["ops"]["VariableV2"] == 10
    assert s["inputs"][0] == {"name": "x", "op": "Placeholder", "dtype": "float32", "shape": [-1, 8]}
    assert s["outputs"][0]["name"] == "output" and "nothing consumes it" in s["outputs"][0]["reason"]
    assert all({"name", "reason"} <= set(o) for o in s["outputs"])
    weights = {v["name"]: v for v in s["variables"]}
    assert weights["dense1/weights"]["shape"] == [8, 16] and weights["dense1/weights"]["dtype"] == "float32"
    assert weights["vocab"]["dtype"] == "string" and weights["global_step"]["dtype"] == "int64"
    assert s["variable_mismatches"] == {"missing_in_checkpoint": [], "missing_in_graph": [], "different": []}
    assert s["weight_bytes"] == s["checkpoint"]["bytes"] > 0


def test_partitioned_variable_is_one_entry(runner):
    s = run_json(runner, FIXTURES / "resource_sharded")
    emb = [v for v in s["variables"] if v["name"] == "emb/table"]
    assert len(emb) == 1 and emb[0]["shape"] == [10, 3] and emb[0]["partitions"] == 3
    assert not any("part_" in v["name"] for v in s["variables"])
    assert len(s["checkpoint"]["files"]) == 3  # .index + two data shards


def test_mismatch_between_graph_and_checkpoint(runner, tmp_path):
    # the seed's classic: a meta graph beside a checkpoint of another model
    src = fixture_checkpoint("control_flow")
    for f in src.parent.glob(src.name + ".*"):
        shutil.copy(f, tmp_path / f.name)
    shutil.copy(fixture_checkpoint("mlp_ref").with_suffix(".ckpt-3.meta"), tmp_path / "model.ckpt.meta")
    s = run_json(runner, tmp_path / "model.ckpt")
    mismatch = s["variable_mismatches"]
    assert "dense1/weights" in mismatch["missing_in_checkpoint"]
    assert set(mismatch["missing_in_graph"]) == {"w", "scale"}
    text = run(runner, tmp_path / "model.ckpt").stdout
    assert "graph and checkpoint disagree" in text and "dense1/weights: in the graph, not in the checkpoint" in text


def test_shape_mismatch_is_reported(runner, tmp_path):
    from graphkit.io import load

    model = load(fixture_checkpoint("mlp_ref"))
    for node in model.graph.graph_def.node:
        if node.name == "dense1/weights":
            node.attr["shape"].shape.dim[1].size = 17
    from graphkit.inspect import summarize

    s = summarize(model)
    assert s["variable_mismatches"]["different"] == [{
        "name": "dense1/weights", "graph": {"dtype": "float32", "shape": [8, 17]},
        "checkpoint": {"dtype": "float32", "shape": [8, 16]}}]


def test_checkpoint_alone_lists_tensors(runner):
    s = run_json(runner, fixture_checkpoint("dtypes"))
    assert s["format"] == "checkpoint" and s["node_count"] == 0
    names = {v["name"]: v for v in s["variables"]}
    assert names["bf16"]["dtype"] == "bfloat16" and names["str"]["shape"] == [2, 2]
    text = run(runner, fixture_checkpoint("dtypes")).stdout
    assert "tensors (18" in text and "c128" in text
    listed = run_json(runner, fixture_checkpoint("tf2_checkpoint"), "--tensors")
    assert {t["name"] for t in listed} == {"model/b/.ATTRIBUTES/VARIABLE_VALUE", "model/w/.ATTRIBUTES/VARIABLE_VALUE",
                                           "step/.ATTRIBUTES/VARIABLE_VALUE"}


def test_tensor_value(runner):
    v = run_json(runner, fixture_checkpoint("dtypes"), "--tensor", "i32")
    assert v["values"] == [[1, -2], [3, 2**31 - 1]] and v["max"] == 2**31 - 1
    text = run(runner, fixture_checkpoint("dtypes"), "--tensor", "i8").stdout
    assert "[-128,    0,  127]" in text
    bad = run(runner, fixture_checkpoint("dtypes"), "--tensor", "i33")
    assert bad.exit_code == 1 and "closest: i32" in bad.stderr
    const = run_json(runner, FIXTURES / "frozen" / "sigmoid.pb", "--tensor", "w")
    assert const["shape"] == [3, 2]


def test_nodes_ops_match(runner):
    nodes = run_json(runner, FIXTURES / "mlp_ref" / "graph.pbtxt", "--nodes", "--match", "dense1/*", "--op",
                     "VariableV2")
    assert [n["name"] for n in nodes] == ["dense1/weights", "dense1/bias", "dense1/weights/Momentum",
                                          "dense1/bias/Momentum"]
    assert all(set(n) >= {"name", "op", "inputs"} for n in nodes)
    everything = run_json(runner, FIXTURES / "frozen" / "sigmoid.pb", "--nodes")
    assert len(everything) == 8 and everything[0]["inputs"] == []
    ops = run_json(runner, FIXTURES / "frozen" / "sigmoid.pb", "--ops")
    assert ops["Const"] == 2 and sum(ops.values()) == 8
    assert "Sigmoid" in run(runner, FIXTURES / "frozen" / "sigmoid.pb", "--ops").stdout


def test_saved_model_signatures(runner):
    s = run_json(runner, FIXTURES / "saved_model_tf1")
    assert s["tags"] == ["serve"]
    sig = s["signatures"][0]
    assert sig["key"] == "serving_default" and sig["inputs"][0]["name"] == "x:0"
    assert s["outputs"][0] == {"name": "y", "op": "Sigmoid", "reason": "signature 'serving_default' output 'y'"}
    bad = run(runner, FIXTURES / "saved_model_tf1", "--tag", "train")
    assert bad.exit_code == 1 and "use --tag" in bad.stderr


def test_tf2_saved_model_variables_keyed_like_the_checkpoint(runner):
    s = run_json(runner, shared("tfserving/saved_model_half_plus_two_tf2_cpu/00000123"))
    assert {v["name"] for v in s["variables"]} == {f"{k}/.ATTRIBUTES/VARIABLE_VALUE" for k in "abc"}
    assert all(v["in_checkpoint"] for v in s["variables"])
    assert s["functions"] > 0


def test_every_shared_model_inspects(runner):
    if not SHARED.exists():
        pytest.skip(f"real third-party models not available ({SHARED} is absent)")
    targets = [p for p in sorted(SHARED.glob("**/*.pb")) if p.name not in ("saved_model.pb", "fingerprint.pb")]
    targets += [p.parent for p in SHARED.glob("**/saved_model.pb")]
    targets += [SHARED / "tf_grappler_pbtxt/while_loop.pbtxt", SHARED / "tf2onnx_models/regression/checkpoint",
                SHARED / "tfserving/half_plus_two_tf1_checkpoint/00000123/export",
                SHARED / "tfserving/bad_half_plus_two_v1_checkpoint/00000123/export"]
    for target in targets:
        result = run(runner, target, "--json")
        assert result.exit_code == 0, (target, result.stderr)
        s = json.loads(result.stdout)
        assert s["node_count"] > 0 and s["ops"], target
        assert run(runner, target).exit_code == 0


def test_regression_checkpoint_values(runner):
    s = run_json(runner, shared("tf2onnx_models/regression/checkpoint"), "--tensor", "W")
    assert abs(s["values"] - 0.21396178) < 1e-8
    v1 = run_json(runner, shared("tfserving/bad_half_plus_two_v1_checkpoint/00000123/export"))
    assert v1["checkpoint"]["version"] == 1 and {v["name"] for v in v1["variables"]} >= {"Variable", "Variable_1"}


def test_mtcnn_outputs_ranked(runner):
    s = run_json(runner, shared("tf_mtcnn_blaueck/mtcnn.pb"))
    assert {o["name"] for o in s["outputs"][:3]} == {"prob", "landmarks", "box"}
    assert [i["name"] for i in s["inputs"]] == ["input", "min_size", "thresholds", "factor"]


# ---- bad input: one line, exit 1, no traceback ------------------------------------------------------

def _corrupt_pb(tmp_path):
    p = tmp_path / "trunc.pb"
    p.write_bytes((FIXTURES / "frozen" / "sigmoid.pb").read_bytes()[:-37])
    return p


def _crc(tmp_path):
    src = fixture_checkpoint("mlp_ref")
    for f in src.parent.glob(src.name + ".*"):
        shutil.copy(f, tmp_path / f.name)
    data = next(tmp_path.glob("*.data-*"))
    raw = bytearray(data.read_bytes())
    raw[200] ^= 1  # inside dense1/weights (offset 152, 512 bytes)
    data.write_bytes(bytes(raw))
    return tmp_path / src.name


def _text(tmp_path):
    p = tmp_path / "notes.pbtxt"
    p.write_text("hello: world\n")
    return p


def _stale_state(tmp_path):
    src = fixture_checkpoint("mlp_ref")
    for f in src.parent.glob(src.name + ".*"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-9"\n')
    return tmp_path


def _write(path, text):
    path.write_text(text)
    return path


BAD = {
    "missing": (lambda t: t / "nope.pb", "no such file"),
    "empty dir": (lambda t: t, "directory holds no model"),
    "image": (lambda t: shared("mtcnn_kpzhang/test1.jpg"), "not a TensorFlow model"),
    "truncated pb": (_corrupt_pb, "truncated or corrupt"),
    "crc": (None, "CRC mismatch"),
    "text not a graph": (_text, "not a GraphDef"),
    "stale state file": (_stale_state, "names 'model.ckpt-9', which does not exist (prefixes here: model.ckpt-3)"),
    "broken caffe prototxt": (lambda t: _write(t / "deploy.prototxt", 'name: "n"\nlayer { name: "a" type: '),
                              "not a Caffe prototxt"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_clear_line(runner, tmp_path, case):
    make, message = BAD[case]
    if case == "crc":
        target = _crc(tmp_path)
        result = run(runner, target, "--tensor", "dense1/weights")
    else:
        target = make(tmp_path)
        result = run(runner, target)
    assert result.exit_code == 1
    assert message in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
    assert str(target).split("/")[-1] in lines[0] or case == "crc"


def test_debug_shows_the_traceback(runner, tmp_path):
    result = runner.invoke(cli, ["inspect", str(tmp_path / "nope.pb"), "--debug"], catch_exceptions=True)
    assert result.exit_code == 1 and result.exception is not None
    assert type(result.exception).__name__ == "GraphkitError"


def test_usage_error_exits_2(runner):
    assert runner.invoke(cli, ["inspect"]).exit_code == 2
    assert runner.invoke(cli, ["inspect", "x", "--no-such-flag"]).exit_code == 2
    assert runner.invoke(cli, ["no-such-command"]).exit_code == 2
    assert run(runner, FIXTURES / "frozen" / "sigmoid.pb", "--ops", "--match", "x").exit_code == 2


def test_help_has_an_example(runner):
    out = runner.invoke(cli, ["inspect", "--help"]).stdout
    assert "Examples:" in out and "graphkit inspect model.ckpt-1000" in out
    assert "Example:" in runner.invoke(cli, ["--help"]).stdout


def test_help_and_inspect_never_import_tensorflow():
    code = (
        "import sys\n"
        "from graphkit.cli import cli\n"
        "for args in (['--help'], ['inspect', '--help'], ['inspect', sys.argv[1]], ['inspect', sys.argv[1], '--json'],"
        " ['inspect', sys.argv[2]], ['inspect', sys.argv[1], '--tensor', 'dense1/weights']):\n"
        "    try:\n"
        "        cli.main(args, standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "print('TF-FREE')\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(fixture_checkpoint("mlp_ref")),
                             str(FIXTURES / "saved_model_tf1")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "TF-FREE" in result.stdout


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "graphkit", "inspect", str(FIXTURES / "frozen" / "sigmoid.pb")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "Sigmoid" in result.stdout


# ---- TF2 SavedModels and functions --------------------------------------------------------------------


def test_tf2_saved_model_summary_has_no_plumbing_and_readable_variables(runner):
    result = runner.invoke(cli, ["inspect", str(FIXTURES / "tf2_module"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [i["name"] for i in data["inputs"]] == ["serving_default_ids", "serving_default_x"]
    assert [o["name"] for o in data["outputs"]] == ["StatefulPartitionedCall"]  # not NoOp, save or restore
    assert {v["name"]: v["label"] for v in data["variables"]} == {
        f"{k}/.ATTRIBUTES/VARIABLE_VALUE": k for k in ("b", "emb", "steps", "w")}
    assert data["ops"]["ResourceGather"] == 1  # counted inside the functions


def test_keras_export_variables_carry_their_layer_names(runner):
    data = json.loads(runner.invoke(cli, ["inspect", str(FIXTURES / "keras_cnn"), "--json"]).output)
    labels = {v["name"]: v.get("label") for v in data["variables"]}
    assert labels["_all_variables/0/.ATTRIBUTES/VARIABLE_VALUE"] == "sequential/conv2d/kernel"
    assert not any(i["name"] == "saver_filename" for i in data["inputs"])


def test_nodes_inside_functions_are_found_and_marked(runner):
    result = runner.invoke(cli, ["inspect", str(FIXTURES / "keras_cnn"), "--nodes", "--op", "Conv2D", "--json"])
    nodes = json.loads(result.output)
    assert len(nodes) == 1 and nodes[0]["function"].startswith("__inference___call___")
    text = runner.invoke(cli, ["inspect", str(FIXTURES / "keras_cnn"), "--nodes", "--op", "Conv2D"]).output
    assert "(in __inference___call___" in text


def test_functions_view_is_the_call_tree(runner):
    result = runner.invoke(cli, ["inspect", str(FIXTURES / "tf2_module"), "--functions", "--json"])
    rows = json.loads(result.output)
    chain = [(r["depth"], r["caller"], r["function"].rsplit("_", 1)[0]) for r in rows if r["depth"] >= 0]
    assert (0, "StatefulPartitionedCall", "__inference_signature_wrapper___call__") in chain
    assert (2, "while", "while_body") in chain and (3, "while/StatefulPartitionedCall", "__inference_layer") in chain
    text = runner.invoke(cli, ["inspect", str(FIXTURES / "tf2_module"), "--functions"]).output
    assert "      while/StatefulPartitionedCall -> __inference_layer_" in text


@pytest.mark.parametrize("target", ["tf", "tflite", "onnx"])
def test_target_on_tf2_and_control_flow_v2(tf, runner, target):
    for src in (FIXTURES / "keras_cnn", fixture_checkpoint("cfv2_bn_adam")):
        result = runner.invoke(cli, ["inspect", str(src), "--target", target, "--json"])
        assert result.exit_code == 0, result.output + str(result.stderr)
        assert json.loads(result.output)["unsupported"] == {}


def test_target_names_ops_inside_functions(tf, runner):
    result = runner.invoke(cli, ["inspect", str(FIXTURES / "tf2_module_state"), "--target", "onnx", "--json"])
    missing = json.loads(result.output)["unsupported"]
    assert list(missing) == ["LookupTableImportV2"]
    assert missing["LookupTableImportV2"]["nodes"] == ["StatefulPartitionedCall_1/key_value_init2/LookupTableImportV2"]


def test_splats_legacy_shapes_and_string_dtype(runner, tmp_path):
    """Issue 12.5: a splat constant counts the bytes it stores (and says what it expands to); an empty
    Placeholder shape in a producer <= 21 graph is unknown, as TF reads it; string tensors say string."""
    from graphkit.io import Graph, save_graph
    from graphkit.proto import graph_pb2

    for producer, expected in ((15, None), (27, [])):
        gd = graph_pb2.GraphDef()
        gd.versions.producer = producer
        x = gd.node.add(name="x", op="Placeholder")
        x.attr["dtype"].type = 1
        x.attr["shape"].shape.SetInParent()  # shape {}
        big = gd.node.add(name="big", op="Const")
        big.attr["dtype"].type = 1
        big.attr["value"].tensor.dtype = 1
        for size in (1000, 1000):
            big.attr["value"].tensor.tensor_shape.dim.add().size = size
        big.attr["value"].tensor.float_val.append(0.5)
        gd.node.add(name="y", op="Add", input=["x", "big"]).attr["T"].type = 1
        save_graph(Graph(gd), tmp_path / f"g{producer}.pb")
        data = run_json(runner, tmp_path / f"g{producer}.pb")
        assert data["inputs"][0]["shape"] == expected
        assert data["const_bytes"] == 4 and data["weight_bytes"] == 4
        assert data["splat_constants"] == [{"name": "big", "dtype": "float32", "shape": [1000, 1000],
                                            "expanded_bytes": 4_000_000}]
    text = run(runner, tmp_path / "g15.pb").stdout
    assert "weights 4 B; 1 splat constant(s)" in text and "expand to 3.8 MB" in text
    value = run_json(runner, fixture_checkpoint("mlp_ref"), "--tensor", "vocab")
    assert value["dtype"] == "string"
    assert run(runner, fixture_checkpoint("mlp_ref"), "--tensor", "vocab").stdout.startswith("vocab  string  [3]")
