"""Export keeps a float64 checkpoint float64; half-precision and mixed dtypes are said plainly.

Float64 graphs are real tf.compat.v1 graphs built with dtype=tf.float64 and saved by TF's own
Saver (tests/export_cases.py); the exports are reloaded from their files in fresh processes
(tests/test_export.py's export_and_reload).
"""

import os

import numpy as np
import pytest

from legacy_share import testing  # noqa: E402

import legacy_share
from legacy_share.testing import tf  # first: pytest's process serves tf_keras (the TF1 cells)  # noqa
from tests import export_cases
from tests.file_guard import error_line, run_main, save_variables
from tests.test_export import export_and_reload, export_job
import legacy_share.keras  # pylint: disable=wrong-import-order

# id -> (export_cases.save_case options, export options, destination suffix)
FLOAT64_CASES = {
    "f64-basic-rnn-2-layers": (dict(cell="basic_rnn"), {}, ".keras"),
    "f64-gru-embedding-dense": (dict(cell="gru", embedding=True, dense=True),
                                dict(embedding="embedding", dense="softmax_w,softmax_b"),
                                ".weights.h5"),
    "f64-basic-lstm-bidirectional": (dict(cell="basic_lstm", topology="bidirectional"), {}, ""),
}


@pytest.fixture(scope="module")
def float64_exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("f64")
    expected, jobs = {}, []
    for case, (save, options, suffix) in FLOAT64_CASES.items():
        prefix = str(root / case / "model.ckpt")
        os.makedirs(os.path.dirname(prefix))
        inputs, lengths, outputs = export_cases.save_case(prefix, dtype="float64", **save)
        assert outputs.dtype == np.float64
        expected[case] = outputs
        jobs.append(export_job(root, case, prefix, options, inputs, lengths, suffix))
    return dict(expected=expected, **export_and_reload(
        jobs, root, list(FLOAT64_CASES), suffix=lambda case: FLOAT64_CASES[case][2]))


def _relative(outputs, expected):
    return np.max(np.abs(outputs - expected)) / np.max(np.abs(expected))


@pytest.mark.parametrize("keras", [3, 2])
@pytest.mark.parametrize("case", list(FLOAT64_CASES))
def test_a_float64_checkpoint_exports_a_float64_model_equal_to_its_tf1_graph(
        float64_exports, case, keras):
    if f"k{keras}" not in float64_exports:
        pytest.skip("this TensorFlow has no Keras 3")
    report = float64_exports[f"k{keras}_export"][case]
    assert report["ok"], report
    if keras == 3:
        assert "dtype: float64 (the checkpoint's weights and the Keras model)" in report["table"]
    reloaded = float64_exports[f"k{keras}"]
    outputs = reloaded[case]
    assert outputs.dtype == np.float64
    assert _relative(outputs, float64_exports["expected"][case]) < 1e-12
    if f"{case}/weight_dtypes" in reloaded:  # .keras and .weights.h5 (a SavedModel: outputs)
        assert set(reloaded[f"{case}/weight_dtypes"]) == {"float64"}


def _cell_variables(dtypes, depth=4, units=2):
    rng = np.random.RandomState(0)
    return {"rnn/basic_rnn_cell/kernel": rng.normal(size=(depth + units, units)).astype(dtypes[0]),
            "rnn/basic_rnn_cell/bias": rng.normal(size=(units,)).astype(dtypes[1])}


@pytest.mark.skipif(not testing.supports_keras3(), reason="exports with Keras 3 (TF >= 2.16)")
def test_mixed_dtypes_are_refused_in_one_line_naming_the_tensors(tmp_path, capsys):
    prefix = save_variables(str(tmp_path / "mixed"), _cell_variables(["float64", "float32"]))
    code, out, err = run_main(capsys, "export", "--dry-run", prefix, str(tmp_path / "m.keras"))
    line = error_line(err)
    assert code == 1, (out, err)
    assert "rnn/basic_rnn_cell/bias is float32" in line
    assert "rnn/basic_rnn_cell/kernel" in line and "float64" in line
    assert not os.path.exists(tmp_path / "m.keras")


def test_float16_weights_are_planned_as_computed_in_float32_and_the_plan_says_so(tmp_path):
    prefix = save_variables(str(tmp_path / "half"), _cell_variables(["float16", "float16"]))
    plan = legacy_share.keras.plan(prefix)
    assert (plan.dtype, plan.stored_dtype) == ("float32", "float16")
    assert ("dtype: float32, assumed: the checkpoint's weights are float16"
            in plan.format_table())
    assert plan.to_dict()["dtype"] == "float32"
