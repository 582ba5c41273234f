"""Inputs `export` cannot make a model of: one line naming the file, the tensor, what it holds
and what to do (exit 1; 2 for a flag's grammar), no traceback, nothing written, the input
untouched; with --json the same error as JSON. Refusals come from the plan, before Keras, so
these run in pytest's tf_keras process with `--keras 2`.
"""

import dataclasses
import inspect
import json
import os
import warnings

import numpy as np
import pytest

from legacy_share.testing import tf1  # first: pytest's process serves tf_keras  # noqa: F401
from tests.file_guard import error_line, run_main, save_variables, untouched

import legacy_share  # noqa: E402  pylint: disable=wrong-import-order
import legacy_share.keras  # noqa: E402,F401  pylint: disable=wrong-import-order
from legacy_share import cudnn, reference  # noqa: E402  pylint: disable=wrong-import-order
from legacy_share.keras import checks, tf2_layers  # noqa: E402  pylint: disable=wrong-import-order
from legacy_share.keras.options import ExportOptions  # noqa: E402  pylint: disable=C0411


def _gru(scope="rnn", depth=3, units=2, dtype=np.float32):
    n, d = units, depth
    return {f"{scope}/gru_cell/gates/kernel": np.ones([d + n, 2 * n], dtype),
            f"{scope}/gru_cell/gates/bias": np.ones([2 * n], dtype),
            f"{scope}/gru_cell/candidate/kernel": np.ones([d + n, n], dtype),
            f"{scope}/gru_cell/candidate/bias": np.ones([n], dtype)}


def _lstm(kernel_dtype=np.float32):
    return {"rnn/lstm_cell/kernel": np.ones([5, 8], kernel_dtype),
            "rnn/lstm_cell/bias": np.ones([8], np.float32)}


STRINGS = np.full([5, 2], b"x", object)
CASES = {  # name: (variables, flags, texts the error line must hold, the tensor named)
    "string cell kernel": (
        dict(_gru(), **{"rnn/gru_cell/candidate/kernel": STRINGS}), [],
        ["rnn/gru_cell/candidate/kernel is string [5, 2]", "a weight of rnn/gru_cell",
         "floating-point"], "rnn/gru_cell/candidate/kernel"),
    "string embedding table": (
        dict(_gru(), embedding=np.full([7, 3], b"x", object)), ["--embedding", "embedding"],
        ["embedding is string [7, 3]", "the --embedding tensor", "floating-point"],
        "embedding"),
    "string dense bias": (
        dict(_gru(), **{"dense/kernel": np.ones([2, 4], np.float32),
                        "dense/bias": np.full([4], b"x", object)}),
        ["--dense", "dense/kernel,dense/bias"],
        ["dense/bias is string [4]", "the --dense tensor"], "dense/bias"),
    "int32 lstm kernel": (
        _lstm(np.int32), [], ["rnn/lstm_cell/kernel is int32 [5, 8]", "floating-point"],
        "rnn/lstm_cell/kernel"),
    "complex lstm kernel": (
        _lstm(np.complex64), [], ["rnn/lstm_cell/kernel is complex64 [5, 8]"],
        "rnn/lstm_cell/kernel"),
    "embedding of 0 rows": (
        dict(_gru(), embedding=np.zeros([0, 3], np.float32)), ["--embedding", "embedding"],
        ["--embedding embedding has shape [0, 3]", "0 rows", "[vocabulary, depth]"],
        "embedding"),
    "dense kernel of 0 units": (
        dict(_gru(), **{"dense/kernel": np.zeros([2, 0], np.float32)}),
        ["--dense", "dense/kernel"],
        ["--dense kernel dense/kernel has shape [2, 0]", "0 units", "[2, units]"],
        "dense/kernel"),
    "cell of 0 units": (
        _gru(units=0), [], ["rnn/gru_cell has 0 units"], "rnn/gru_cell"),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    return {name: save_variables(str(root / name.replace(" ", "_")), variables)
            for name, (variables, _, _, _) in CASES.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_tensor_no_keras_layer_can_hold_is_refused_naming_it(capsys, saved, tmp_path, case):
    _, flags, texts, tensor = CASES[case]
    src, dst = saved[case], str(tmp_path / "m.keras")
    with untouched(os.path.dirname(src)):
        code, out, err = run_main(capsys, "export", src, dst, "--keras", "2", *flags)
        assert code == 1 and out == ""
        line = error_line(err)
        assert src in line and all(text in line for text in texts), line
        code, out, err = run_main(capsys, "export", src, dst, "--keras", "2", "--json",
                                  "--dry-run", *flags)
    assert code == 1 and error_line(err)
    assert json.loads(out) == {"error": line[len("legacy-share: error: "):], "file": src,
                               "tensor": tensor}
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("flags", [["--dense", ","], ["--dense", ",b"], ["--dense", "a,b,c"],
                                   ["--forget-bias", "nan"], ["--forget-bias", "inf"],
                                   ["--forget-bias", "-inf"], ["--forget-bias", "x"]])
@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_a_flag_that_says_nothing_sane_is_a_usage_error(capsys, saved, tmp_path, flags, dry_run):
    src = saved["int32 lstm kernel"]
    code, out, err = run_main(capsys, "export", src, str(tmp_path / "m.keras"), "--keras", "2",
                              *dry_run, *flags)
    assert code == 2 and out == "" and "Traceback" not in err
    assert f"argument {flags[0]}: expected" in err.splitlines()[-1]
    code, out, err = run_main(capsys, "export", src, str(tmp_path / "m.keras"), "--keras", "2",
                              "--json", *dry_run, *flags)
    assert code == 2 and f"argument {flags[0]}: expected" in json.loads(out)["error"]
    assert os.listdir(tmp_path) == []


def test_a_negative_or_odd_forget_bias_that_is_finite_is_taken(capsys, saved, tmp_path):
    src = save_variables(str(tmp_path / "lstm"), _lstm())
    code, out, err = run_main(capsys, "export", src, str(tmp_path / "m.keras"), "--keras", "2",
                              "--dry-run", "--forget-bias", "-2.5")
    assert code == 0, err
    assert "forget_bias -2.5" in out


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "1", None, True])
def test_the_api_refuses_a_forget_bias_that_is_not_a_finite_number(saved, bad):
    with pytest.raises(legacy_share.ExportError, match="--forget-bias must be a finite number"):
        legacy_share.keras.plan(saved["cell of 0 units"], forget_bias=bad)


@pytest.mark.parametrize("dense", [",", ("", "b"), ("a", "b", "c"), (), ("a", 3)])
def test_the_api_refuses_a_dense_that_names_no_kernel(saved, dense):
    with pytest.raises(legacy_share.ExportError, match="does not name a Dense layer"):
        legacy_share.keras.plan(saved["dense kernel of 0 units"], dense=dense)


def test_the_api_reads_a_dense_with_an_empty_bias_as_no_bias(tmp_path):
    src = save_variables(str(tmp_path / "dense"),
                         dict(_gru(), **{"dense/kernel": np.ones([2, 4], np.float32)}))
    plan = legacy_share.keras.plan(src, dense="dense/kernel,")
    assert plan.dense.sources == (("dense/kernel",),)


def test_a_shared_stack_runs_at_most_the_documented_number_of_times(capsys, tmp_path):
    src = save_variables(str(tmp_path / "shared"), _gru("rnn/multi_rnn_cell/cell_0", depth=2))
    for layers in (checks.MAX_SHARED_LAYERS + 1, 100000000):
        code, out, err = run_main(capsys, "export", src, str(tmp_path / "m.keras"),
                                  "--keras", "2", "--layers", str(layers))
        line = error_line(err)
        assert code == 1 and out == "" and f"--layers {layers}:" in line
        assert f"at most {checks.MAX_SHARED_LAYERS}" in line and "give the K" in line
    plan = legacy_share.keras.plan(src, layers=checks.MAX_SHARED_LAYERS)
    assert plan.stack.layers == checks.MAX_SHARED_LAYERS
    assert not os.path.exists(tmp_path / "m.keras")


def test_saturated_gates_prove_without_a_numpy_warning(tmp_path):
    """Gates far below 0 overflowed exp() in the float64 reference: a RuntimeWarning on stderr."""
    src = save_variables(str(tmp_path / "saturated"), {
        "rnn/lstm_cell/kernel": np.full([5, 8], -1000, np.float32),
        "rnn/lstm_cell/bias": np.full([8], -1000, np.float32)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = legacy_share.keras.export(src, str(tmp_path / "m.keras"), keras=2)
        sigmoids = [reference.sigmoid(np.array([-1000.0, 0.0, 1000.0])),
                    cudnn._sigmoid(np.array([-1000.0, 0.0, 1000.0]))]  # pylint: disable=protected-access
    assert report.proof.ok
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    for values in sigmoids:
        np.testing.assert_array_equal(values, [0.0, 0.5, 1.0])


@pytest.mark.parametrize("call", ["plan", "build_model", "export"])
def test_a_misspelt_option_is_a_type_error_naming_it(tmp_path, call):
    src = save_variables(str(tmp_path / "gru"), dict(_gru(), embedding=np.ones([7, 3], "f4")))
    where = (str(tmp_path / "m.keras"),) if call == "export" else ()
    keras = {} if call == "plan" else {"keras": 2}
    with pytest.raises(TypeError, match="embeding"):
        getattr(legacy_share.keras, call)(src, *where, embeding="embedding", **keras)
    assert not os.path.exists(tmp_path / "m.keras")


def test_plan_build_model_and_export_take_the_same_options_and_pass_each_one_on():
    options = {field.name for field in dataclasses.fields(ExportOptions)}
    own = {"plan": {"src"}, "build_model": {"src", "keras"},
           "export": {"src", "dst", "keras", "tolerance", "force", "prove"}}
    for call, extra in own.items():
        parameters = inspect.signature(getattr(legacy_share.keras, call)).parameters
        assert set(parameters) == options | extra, call
    given = dict(stack="s", layers=2, custom_cells=True, forget_bias=0.5, embedding="e",
                 dense="d", group_patterns=("g(1)",), renames=(("a", "b"),), excludes=("x",),
                 meta="m.meta", cudnn=cudnn.Layout("lstm", 1, 2, 3), cudnn_buffer="b",
                 cell_clip=1.0, proj_clip=2.0, assumptions=tf2_layers.Assumptions())
    assert set(given) == options
    taken = ExportOptions.of_arguments(dict(given, src="ckpt", dst="m.keras", keras=2))
    assert {name: getattr(taken, name) for name in options} == given
