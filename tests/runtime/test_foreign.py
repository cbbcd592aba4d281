"""Files that are not TensorFlow graphs (issue 12.12): ONNX and TFLite models are inspected, run and
compared; Keras .keras/.h5 files are named as such with the way out; none is "truncated or corrupt"."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FIXTURES

from graphkit.cli import cli
from graphkit.io.foreign import HDF5, KERAS, ONNX, TFLITE, foreign_format


@pytest.fixture(scope="module")
def exported(tf, tmp_path_factory):
    from graphkit.convert import convert

    out = tmp_path_factory.mktemp("foreign")
    convert(FIXTURES / "keras_cnn", out / "m.onnx")
    convert(FIXTURES / "keras_cnn", out / "m.tflite")
    (out / "no_extension").write_bytes((out / "m.onnx").read_bytes())
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.save(out / "m.keras")
    model.save(out / "m.h5")
    return out


def test_formats_are_told_by_their_bytes(exported):
    assert foreign_format(exported / "m.onnx") == ONNX and foreign_format(exported / "no_extension") == ONNX
    assert foreign_format(exported / "m.tflite") == TFLITE
    assert foreign_format(exported / "m.keras") == KERAS and foreign_format(exported / "m.h5") == HDF5
    for tf_file in (FIXTURES / "frozen" / "sigmoid.pb", FIXTURES / "keras_cnn" / "saved_model.pb",
                    FIXTURES / "mlp_ref" / "model.ckpt-3.meta", FIXTURES / "mlp_ref" / "graph.pbtxt"):
        assert foreign_format(tf_file) is None


@pytest.mark.parametrize("name, says", [("m.onnx", "an ONNX model, not a TensorFlow graph"),
                                        ("m.tflite", "a TFLite model, not a TensorFlow graph"),
                                        ("m.keras", "a Keras model: export a SavedModel with model.export"),
                                        ("m.h5", "an HDF5 file (a Keras .h5 model or weights)")])
def test_graph_commands_name_the_format(runner, exported, tmp_path, name, says):
    for command in (["freeze", str(exported / name), str(tmp_path / "f.pb")],
                    ["prune", str(exported / name), str(tmp_path / "p.pb")]):
        result = runner.invoke(cli, command)
        assert result.exit_code == 1 and says in result.stderr and "corrupt" not in result.stderr


def test_inspect_onnx_and_tflite(runner, exported):
    onnx = json.loads(runner.invoke(cli, ["inspect", str(exported / "m.onnx"), "--json"]).output)
    assert onnx["format"] == "onnx" and onnx["inputs"] == [{"name": "image:0", "dtype": "float32",
                                                            "shape": [-1, 8, 8, 3]}]
    assert [o["name"] for o in onnx["outputs"]] == ["output_0:0"] and onnx["ops"]["Conv"] == 1
    assert onnx["opset"][0]["domain"] == "ai.onnx" and onnx["weight_bytes"] > 400
    lite = json.loads(runner.invoke(cli, ["inspect", str(exported / "m.tflite"), "--json"]).output)
    assert lite["format"] == "tflite" and lite["inputs"][0]["name"] == "image"
    assert lite["ops"]["CONV_2D"] == 1 and "DELEGATE" not in lite["ops"] and lite["weight_bytes"] > 400
    text = runner.invoke(cli, ["inspect", str(exported / "m.tflite")]).output
    assert "(TFLite, 6 ops)" in text and "CONV_2D 1" in text


def test_run_and_compare_tflite(runner, exported, tmp_path):
    result = runner.invoke(cli, ["run", str(exported / "m.tflite"), "--json", "--quiet"])
    assert result.exit_code == 0, str(result.stderr)
    assert json.loads(result.output)["outputs"][0]["shape"] == [1, 3]
    np.save(tmp_path / "x.npy", np.random.RandomState(0).randn(1, 8, 8, 3).astype(np.float32))
    result = runner.invoke(cli, ["compare", str(FIXTURES / "keras_cnn"), str(exported / "m.tflite"), "--input",
                                 f"image={tmp_path / 'x.npy'}", "--quiet"])
    assert result.exit_code == 0, result.output + str(result.stderr)
    assert result.output.startswith("ok")
