"""`legacy-share export` of cuDNN checkpoints: opaque buffers packed by `cudnn.pack` (and
canonical-only TF 1.3-1.15 checkpoints), saved by TF's own Saver, exported, the FILE reloaded
in a fresh process, compared with `cudnn.run` (the float64 cuDNN equations).

Subprocesses as in tests/test_export.py: one Keras 3 process exports every case, one fresh
Keras 3 process loads them; the tf_keras export runs here and one fresh tf_keras process loads it.
"""

import dataclasses
import os

import numpy as np
import pytest

from legacy_share import cudnn
from legacy_share.testing import tf1  # first: pytest's process serves tf_keras
from tests.cudnn_cases import SCOPE, save_cudnn_checkpoint
from tests.file_guard import error_line, run_main, untouched
from tests.test_export import HAS_KERAS3, NO_KERAS3, export_and_reload, export_job

import legacy_share  # noqa: E402  pylint: disable=wrong-import-order
import legacy_share.keras  # noqa: E402,F401  pylint: disable=wrong-import-order

LENGTHS = np.array([7, 3, 1, 0], np.int32)
BUFFER = f"{SCOPE}/opaque_kernel"

# id -> (layout, save_cudnn_checkpoint options, how the export learns the layout)
CASES = {
    "lstm-2-layers-canonical": (cudnn.Layout("lstm", 2, 4, 6), dict(canonical=True), "ckpt"),
    "gru-2-layers-bidirectional-meta": (cudnn.Layout("gru", 2, 3, 5, 2), dict(meta=True),
                                        "meta"),
    "rnn-relu-1-layer-flags": (cudnn.Layout("rnn_relu", 1, 5, 3), {}, "flags"),
    "gru-canonical-only": (cudnn.Layout("gru", 2, 4, 3), dict(canonical=True, buffer_name=None),
                           "ckpt"),
    "lstm-bidirectional-canonical-only": (cudnn.Layout("lstm", 1, 3, 2, 2),
                                          dict(canonical=True, buffer_name=None), "ckpt"),
    # build() called by hand: the canonical tensors live in the scope outside the layer's
    "lstm-built-by-hand": (cudnn.Layout("lstm", 2, 3, 4), dict(canonical=True,
                                                               canonical_scope=""), "ckpt"),
    "lstm-float16-flags": (cudnn.Layout("lstm", 2, 4, 3), dict(dtype=np.float16), "flags"),
}
KERAS2_CASES = ("gru-2-layers-bidirectional-meta",)


def _options(prefix, layout, source):
    if source == "meta":
        return dict(meta=prefix + ".meta")
    if source == "flags":
        return dict(cudnn=dataclasses.asdict(layout))
    return {}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("cudnn_export")
    expected, jobs = {}, []
    for case, (layout, save, source) in CASES.items():
        folder = root / case
        os.makedirs(folder)
        prefix, canonicals = save_cudnn_checkpoint(str(folder), layout, **save)
        inputs = np.random.RandomState(3).uniform(
            -1, 1, (len(LENGTHS), 7, layout.input_size)).astype(np.float32)
        expected[case] = cudnn.run(canonicals, layout, inputs, LENGTHS)
        jobs.append(export_job(root, case, prefix, _options(prefix, layout, source), inputs,
                               LENGTHS))
    return dict(expected=expected, **export_and_reload(jobs, root, KERAS2_CASES))


def _close(outputs, expected):
    assert outputs.shape == expected.shape
    np.testing.assert_allclose(outputs, expected, rtol=0,
                               atol=2e-5 * max(1, np.abs(expected).max()))
    for row, length in enumerate(LENGTHS):
        assert not np.any(outputs[row, length:])


@pytest.mark.skipif(not HAS_KERAS3, reason=NO_KERAS3)
@pytest.mark.parametrize("case", list(CASES))
def test_keras3_file_reloaded_in_a_fresh_process_computes_the_cudnn_equations(exported, case):
    report = exported["k3_export"][case]
    assert report["ok"], report
    assert report["relative"] <= 1e-5
    _close(exported["k3"][case], exported["expected"][case])
    np.testing.assert_array_equal(exported["k3"][case + "/dict"], exported["k3"][case])
    layout = CASES[case][0]
    row = next(line for line in report["table"].splitlines() if line.startswith(SCOPE))
    keras = {"lstm": "LSTM", "gru": "GRU(reset_after=True)", "rnn_relu": "SimpleRNN(relu)"}
    assert keras[layout.kind] in row and " exact" in row


@pytest.mark.parametrize("case", KERAS2_CASES)
def test_tf_keras_file_reloaded_in_a_fresh_process_computes_the_cudnn_equations(exported, case):
    report = exported["k2_export"][case]
    assert report["ok"] and report["relative"] <= 1e-5, report
    _close(exported["k2"][case], exported["expected"][case])


def test_keras_gru_equations_with_these_weights_are_the_cudnn_gru():
    """Keras's GRU(reset_after=True) equations, written out from its docs, on keras_weights."""
    layout = cudnn.Layout("gru", 1, 3, 4)
    rng = np.random.RandomState(5)
    canonicals = cudnn.unpack(rng.uniform(-1, 1, layout.size), layout)
    kernel, recurrent, bias = cudnn.keras_weights(canonicals[(0, 0)], "gru")
    x = rng.uniform(-1, 1, (2, 6, 4))
    h = np.zeros((2, 3))
    outputs = []
    for t in range(6):
        x_z, x_r, x_h = np.split(x[:, t] @ kernel + bias[0], 3, axis=-1)
        h_z, h_r, h_h = np.split(h @ recurrent + bias[1], 3, axis=-1)
        z, r = 1 / (1 + np.exp(-(x_z + h_z))), 1 / (1 + np.exp(-(x_r + h_r)))
        h = z * h + (1 - z) * np.tanh(x_h + r * h_h)
        outputs.append(h)
    np.testing.assert_allclose(np.stack(outputs, 1),
                               cudnn.run(canonicals, layout, x, np.array([6, 6])), atol=1e-12)


def test_build_model_gives_the_same_model_in_this_process(tmp_path):
    layout = cudnn.Layout("rnn_tanh", 2, 3, 4, 2)
    prefix, canonicals = save_cudnn_checkpoint(str(tmp_path), layout)
    model = legacy_share.keras.build_model(prefix, keras=2, cudnn=layout)
    inputs = np.random.RandomState(4).uniform(-1, 1, (4, 7, 4)).astype(np.float32)
    _close(np.asarray(model([inputs, LENGTHS])), cudnn.run(canonicals, layout, inputs, LENGTHS))
    plan = legacy_share.keras.plan(prefix, cudnn=layout)
    assert plan.stack.keras_layer() == "2 x Bidirectional(SimpleRNN)"
    assert plan.to_dict()["stacks"][0]["cell"] == "CudnnRNNTanh"


# ---------------------------------------------------------------------------------- the CLI


def _one_line(code, err, *parts):
    assert code == 1, err
    line = error_line(err)
    for part in parts:
        assert part in line, line


@pytest.fixture(scope="module")
def buffers(tmp_path_factory):
    root = tmp_path_factory.mktemp("cudnn_refusals")
    made = {}
    for name, layout, options in (
            ("lstm", cudnn.Layout("lstm", 2, 4, 6), dict(slots=True)),
            ("canonical", cudnn.Layout("lstm", 1, 2, 3), dict(canonical=True)),
            ("wrong", cudnn.Layout("lstm", 2, 3, 4), dict(canonical=True, extra={
                f"{SCOPE}/rnn/multi_rnn_cell/cell_1/cudnn_compatible_lstm_cell/bias":
                    np.full(12, 0.5, np.float32)})),
            ("incomplete", cudnn.Layout("gru", 2, 2, 3), dict(canonical=True, buffer_name=None))):
        os.makedirs(root / name)
        made[name] = save_cudnn_checkpoint(str(root / name), layout, **options)[0]
    incomplete = made["incomplete"]  # the same tensors but one, saved again
    reader = tf1.train.load_checkpoint(incomplete)
    lost = f"{SCOPE}/rnn/multi_rnn_cell/cell_1/cudnn_compatible_gru_cell/gates/bias"
    with tf1.Graph().as_default():
        for name in reader.get_variable_to_shape_map():
            if name != lost:
                tf1.get_variable(name, initializer=reader.get_tensor(name))
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            made["incomplete"] = tf1.train.Saver().save(
                session, str(root / "incomplete2" / "model.ckpt"), write_meta_graph=False)
    skip = tf1.MetaGraphDef()
    node = skip.graph_def.node.add(name="CudnnRNN", op="CudnnRNNV3")
    node.attr["input_mode"].s = b"skip_input"
    made["skip_meta"] = str(root / "skip.meta")
    with open(made["skip_meta"], "wb") as handle:
        handle.write(skip.SerializeToString())
    return made


FLAGS = ("--cudnn", "lstm", "--layers", 2, "--units", 4, "--input-size", 6)


def test_cli_dry_run_shows_the_cudnn_row(capsys, tmp_path, buffers):
    code, out, err = run_main(capsys, "export", buffers["lstm"], tmp_path / "m.keras",
                              "--dry-run", "--keras", 2, *FLAGS)
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith(BUFFER)).split()
    assert row[:6] == [BUFFER, "CudnnLSTM", "2", "4", "6", "1"]
    assert "2 x LSTM" in " ".join(row) and "exact" in row
    assert "layout from the flags" in " ".join(row)
    assert "not exported  2 optimizer slots (Adam, Adam_1)" in out
    assert not os.path.exists(tmp_path / "m.keras")


@pytest.mark.parametrize("name, args, parts", [
    ("lstm", (), ("looks like a cuDNN opaque buffer", BUFFER, "--meta", "--cudnn")),
    ("lstm", FLAGS[:-1] + (7,), (BUFFER, "would fit input size 6")),
    ("canonical", ("--layers", 3), ("--layers 3 does not fit",)),
    ("lstm", FLAGS + ("--embedding", "global_step"), ("--embedding is not supported",)),
    ("lstm", ("--meta", "skip_meta"), ("skip_input",)),
    ("wrong", (), ("cell_1/cudnn_compatible_lstm_cell/bias", BUFFER, "max |diff|")),
    ("incomplete", (), ("gates/bias of layer 1 is missing",)),
    ("lstm", FLAGS + ("--custom-cells", "--cell-clip", 3), ("a cuDNN model does not clip",)),
], ids=["no-layout", "flags-misfit", "layers-misfit", "embedding", "skip-input",
        "canonical-disagrees", "canonical-missing", "clip"])
def test_cli_refusals_are_one_line(capsys, tmp_path, buffers, name, args, parts):
    args = tuple(buffers["skip_meta"] if a == "skip_meta" else a for a in args)
    dst = tmp_path / "out" / "m.keras"
    with untouched(buffers[name]):
        code, _, err = run_main(capsys, "export", buffers[name], dst, "--keras", 2, *args)
    _one_line(code, err, *parts)
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("layout", [cudnn.Layout("lstm", 2, 3, 5), cudnn.Layout("gru", 2, 4, 3)],
                         ids=str)
def test_canonical_tensors_read_back_as_weights_that_compute_the_same(layout):
    rng = np.random.RandomState(2)
    canonicals = cudnn.unpack(rng.uniform(-1, 1, layout.size), layout)
    saved = {key: (dict(zip(("kernel", "bias"), cudnn.compatible_lstm_cell_weights(c)))
                   if layout.kind == "lstm" else cudnn.compatible_gru_cell_weights(c))
             for key, c in canonicals.items()}
    back = {key: cudnn.from_compatible(layout.kind, weights, layout.layer_input(key[0]))
            for key, weights in saved.items()}
    x = rng.uniform(-1, 1, (3, 5, layout.input_size))
    lengths = np.array([5, 2, 0])
    np.testing.assert_allclose(cudnn.run(back, layout, x, lengths),
                               cudnn.run(canonicals, layout, x, lengths), atol=1e-12)
