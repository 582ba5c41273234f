"""TF 2 tf.keras TF-format checkpoints (`model.save_weights(path)`) exported to Keras 3.

The checkpoints are written here by tf_keras's own `save_weights` (pytest's process serves
tf_keras; tf.keras on TensorFlow < 2.16), exported in one fresh Keras 3 process, reloaded
from the files in fresh processes (Keras 3 on TensorFlow and on JAX, tf_keras for `keras=2`)
and compared with a float64 NumPy reference of Keras's equations (tests/numpy_rnn.py).
"""

import dataclasses
import os

import numpy as np
import pytest

import legacy_share
from legacy_share.testing import tf  # first: pytest's process serves tf_keras
from legacy_share.keras import model as keras_model
from tests import numpy_rnn
from tests import test_export
from tests.file_guard import error_line, run_main
import legacy_share.keras  # pylint: disable=wrong-import-order

K = keras_model.keras_module(2)  # pylint: disable=invalid-name
TIME, VOCABULARY = 7, 13


def _gru_model():
    return K.Sequential([K.layers.Embedding(VOCABULARY, 5),
                         K.layers.GRU(6, reset_after=True, return_sequences=True),
                         K.layers.Dense(4)]), (None,)


def _bilstm_model():
    return K.Sequential([K.layers.Bidirectional(K.layers.LSTM(3, return_sequences=True)),
                         K.layers.Bidirectional(K.layers.LSTM(2)),
                         K.layers.Dense(4)]), (None, 5)


def _simple_rnn_model():  # functional: its object graph has an InputLayer as layer-0
    inputs = K.Input((None, 4))
    x = K.layers.SimpleRNN(5, return_sequences=True)(inputs)
    return K.Model(inputs, K.layers.SimpleRNN(3)(x)), None


def _gru_reference(w, ids):
    x = w[0][ids]
    x = numpy_rnn.keras_rnn("GRU", w[1:4], x, return_sequences=True, reset_after=True)
    return x @ w[4] + w[5]


def _bilstm_reference(w, x):
    x = numpy_rnn.keras_bidirectional("LSTM", w[0:3], w[3:6], x)
    x = numpy_rnn.keras_bidirectional("LSTM", w[6:9], w[9:12], x, return_sequences=False)
    return x @ w[12] + w[13]


def _simple_rnn_reference(w, x):
    x = numpy_rnn.keras_rnn("SimpleRNN", w[0:3], x)
    return numpy_rnn.keras_rnn("SimpleRNN", w[3:6], x, return_sequences=False)


# id -> (model builder, NumPy reference, export options, formats)
CASES = {
    "embedding-gru-dense": (_gru_model, _gru_reference,
                            dict(assumptions=dict(return_sequences=True)),
                            (".keras", ".weights.h5", "")),
    "bilstm-2-dense": (_bilstm_model, _bilstm_reference, {}, (".keras",)),
    "simple-rnn-2": (_simple_rnn_model, _simple_rnn_reference, {}, (".keras", "")),
}
KERAS2_CASES = ("bilstm-2-dense",)


def save_keras_checkpoint(directory, case, seed=0):
    """Builds the case's tf_keras model, randomises its weights, `save_weights` (TF format).

    -> (prefix, inputs, float64 NumPy outputs).
    """
    build, reference, _, _ = CASES[case]
    rng = np.random.RandomState(seed)
    model, shape = build()
    if shape is not None:
        model.build((None,) + shape)
    weights = [rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(weights)
    prefix = os.path.join(directory, "ckpt")
    model.save_weights(prefix)
    if case == "embedding-gru-dense":
        inputs = rng.randint(0, VOCABULARY, (4, TIME)).astype(np.int32)
    else:
        depth = 5 if case == "bilstm-2-dense" else 4
        inputs = rng.uniform(-1, 1, (4, TIME, depth)).astype(np.float32)
    return prefix, inputs, reference([w.astype(np.float64) for w in weights], inputs)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every case saved by tf_keras, exported (Keras 3, and tf_keras here), reloaded fresh."""
    root = tmp_path_factory.mktemp("tf2keras")
    expected, jobs = {}, []
    for case, (_, _, options, formats) in CASES.items():
        directory = root / case
        os.makedirs(directory)
        prefix, inputs, outputs = save_keras_checkpoint(str(directory), case)
        feed = str(root / f"{case}.npz")
        np.savez(feed, inputs=inputs)
        for suffix in formats:
            job_id = case + (suffix or "/saved_model")
            expected[job_id] = outputs
            jobs.append(dict(id=job_id, src=prefix, options=options, inputs=feed,
                             dst=str(root / "k3" / (case + (suffix or "_saved_model")))))
    keras2 = [j["id"] for j in jobs if j["id"] in [c + ".keras" for c in KERAS2_CASES]]
    return dict(expected=expected, **test_export.export_and_reload(
        jobs, root, keras2, suffix=lambda job_id: "", jax=True))


JOB_IDS = [case + (suffix or "/saved_model") for case, (_, _, _, formats) in CASES.items()
           for suffix in formats]


@test_export.needs_keras3
@pytest.mark.parametrize("job_id", JOB_IDS)
def test_keras3_file_reloaded_in_a_fresh_process_equals_keras_equations(exported, job_id):
    report = exported["k3_export"][job_id]
    assert report["ok"], report
    assert report["relative"] <= 1e-5  # the export's own proof against tf_keras's model
    outputs, expected = exported["k3"][job_id], exported["expected"][job_id]
    assert outputs.shape == expected.shape
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.skipif(not test_export.HAS_JAX or not test_export.HAS_KERAS3,
                    reason=test_export.NO_JAX)
@pytest.mark.parametrize("job_id", [j for j in JOB_IDS if j.endswith(".keras")])
def test_keras_file_runs_on_jax(exported, job_id):
    outputs, expected = exported["jax"][job_id], exported["expected"][job_id]
    assert str(exported["jax"]["backend"]) == "jax"
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("job_id", [c + ".keras" for c in KERAS2_CASES])
def test_tf_keras_file_reloaded_in_a_fresh_process_equals_keras_equations(exported, job_id):
    assert exported["k2_export"][job_id]["ok"], exported["k2_export"][job_id]
    outputs, expected = exported["k2"][job_id], exported["expected"][job_id]
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


# --------------------------------------------- the plan: what the object graph and shapes tell

def _saved(directory, layers, shape):
    """A tf_keras Sequential of `layers` built on `shape`, saved by `save_weights` -> prefix."""
    model = K.Sequential(layers)
    model.build((None,) + shape)
    prefix = os.path.join(str(directory), "ckpt")
    model.save_weights(prefix)
    return prefix


def test_plan_tells_kinds_and_reset_after_from_shapes(tmp_path):
    prefix = _saved(tmp_path, [K.layers.Embedding(VOCABULARY, 5),
                               K.layers.GRU(6, reset_after=False, return_sequences=True),
                               K.layers.GRU(2, reset_after=True), K.layers.Dense(3)], (None,))
    plan = legacy_share.keras.plan(prefix)
    assert [(l.kind, l.units, l.input_depth) for l in plan.layers] == [
        ("Embedding", 5, 0), ("GRU", 6, 5), ("GRU", 2, 6), ("Dense", 3, 2)]
    assert [l.reset_after for l in plan.layers[1:3]] == [False, True]
    assert [l.return_sequences for l in plan.layers[1:3]] == [True, False]
    assert plan.refusal() is None
    assert "return_sequences=False (--return-sequences)" in plan.format_table()


def test_layer_without_weights_is_refused_unless_said_to_be_a_dropout(tmp_path):
    model = K.Sequential([K.layers.Embedding(VOCABULARY, 5), K.layers.Dropout(0.3),
                          K.layers.SimpleRNN(4), K.layers.Dense(2)])
    model.compile("adam", "mse")
    model.fit(np.zeros((2, 3)), np.zeros((2, 2)), verbose=0)  # optimizer slots in the file
    prefix = os.path.join(str(tmp_path), "ckpt")
    model.save_weights(prefix)
    refusal = legacy_share.keras.plan(prefix).refusal()
    assert "layer-1 has no weights" in refusal and "--weightless dropout" in refusal
    plan = legacy_share.keras.plan(prefix, assumptions=dict(weightless="dropout"))
    assert plan.refusal() is None
    assert [l.kind for l in plan.layers] == ["Embedding", "Dropout", "SimpleRNN", "Dense"]
    assert {r for _, r in plan.not_exported} == {"optimizer state"}


def test_bidirectional_merge_mode_that_shapes_cannot_tell_is_refused(tmp_path):
    prefix = _saved(tmp_path, [K.layers.Bidirectional(K.layers.GRU(3), merge_mode="sum"),
                               K.layers.Dense(2)], (None, 4))
    refusal = legacy_share.keras.plan(prefix).refusal()
    assert "merge_mode sum, mul or ave" in refusal and "--merge-mode" in refusal
    plan = legacy_share.keras.plan(prefix, assumptions=dict(merge_mode="sum"))
    assert plan.refusal() is None and plan.layers[0].merge_mode == "sum"


class _TwoGateCell(K.layers.Layer):
    """An RNN cell with 2 gate blocks: none of SimpleRNN, GRU, LSTM."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], 2 * self.units))
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel",
                                                shape=(self.units, 2 * self.units))

    def call(self, inputs, states):
        h = tf.tanh(inputs @ self.kernel[:, :self.units] + states[0] @ self.recurrent_kernel[
            :, :self.units])
        return h, [h]


@pytest.mark.parametrize("layer, says", [
    (lambda: K.layers.RNN(_TwoGateCell(3)), "not 1, 3 or 4 gate blocks of 3 units"),
    (lambda: K.layers.Conv1D(3, 2), "kernel [2, 4, 3]: no layer the export knows"),
])
def test_a_layer_whose_kind_cannot_be_told_is_refused_naming_it(tmp_path, layer, says):
    prefix = _saved(tmp_path, [layer(), K.layers.Dense(2)], (6, 4))
    refusal = legacy_share.keras.plan(prefix).refusal()
    assert refusal.startswith(f"{prefix}: layer_with_weights-0") and says in refusal


def _two_models(tmp_path):
    """tf.train.Checkpoint(encoder=LSTM(3) model, decoder=SimpleRNN(2) model) -> its prefix."""
    encoder = K.Sequential([K.layers.LSTM(3)])
    encoder.build((None, None, 4))
    decoder = K.Sequential([K.layers.SimpleRNN(2)])
    decoder.build((None, None, 3))
    return tf.train.Checkpoint(encoder=encoder, decoder=decoder).write(
        os.path.join(str(tmp_path), "both"))


def test_models_inside_a_checkpoint_are_found_by_their_path(tmp_path):
    prefix = _two_models(tmp_path)
    with pytest.raises(legacy_share.Error, match="holds 2 tf.keras models.*--stack"):
        legacy_share.keras.plan(prefix)
    plan = legacy_share.keras.plan(prefix, stack="decoder")
    assert plan.model_path == "decoder" and plan.layers[0].path == "decoder/layer_with_weights-0"


def test_a_model_inside_a_checkpoint_is_exported_and_proven_from_its_path(tmp_path, capsys):
    """The proof's tf_keras restores the model where it sits in the object graph (before:
    from the root, 'Nothing except the root object matched'); --stack from the command line
    (a list, as TF1 chains take it) names one model."""
    prefix = _two_models(tmp_path)
    code, out, err = run_main(capsys, "export", prefix, tmp_path / "d.keras", "--keras", "2",
                              "--stack", "decoder")
    assert code == 0, err
    assert "against tf_keras's model restored from the checkpoint" in out
    code, _, err = run_main(capsys, "export", prefix, tmp_path / "e.keras", "--keras", "2",
                            "--stack", "decoder", "--stack", "encoder")
    assert code == 1 and "give --stack once" in error_line(err), err
    assert sorted(os.listdir(tmp_path)) == sorted(["both.index", "both.data-00000-of-00001",
                                                   "d.keras"])


def test_tf1_options_and_keras_assumptions_are_refused_where_they_do_not_apply(tmp_path,
                                                                             capsys):
    prefix = _saved(tmp_path / "keras", [K.layers.LSTM(3)], (None, 4))
    code, _, err = run_main(capsys, "export", prefix, tmp_path / "m.keras", "--keras", "2",
                            "--embedding", "emb")
    assert code == 1 and "--embedding (embedding) is for TF1 checkpoints" in error_line(err)
    code, _, err = run_main(capsys, "export", prefix, tmp_path / "m.keras", "--keras", "2",
                            "--activation", "tanhh")
    assert code == 1 and "the activation 'tanhh' is none the export builds" in error_line(err)
    tf1_prefix = str(tmp_path / "tf1" / "model.ckpt")
    os.makedirs(os.path.dirname(tf1_prefix))
    from tests import export_cases  # pylint: disable=import-outside-toplevel
    export_cases.save_case(tf1_prefix, cell="gru", layers=1)
    with pytest.raises(legacy_share.Error, match="are for tf.keras checkpoints"):
        legacy_share.keras.plan(tf1_prefix, assumptions=dict(return_sequences=True))


def test_dry_run_and_inspect_say_what_the_checkpoint_holds_layer_by_layer(tmp_path, capsys):
    prefix = _saved(tmp_path, [K.layers.Bidirectional(K.layers.LSTM(3)), K.layers.Dense(2)],
                    (None, 4))
    code, out, _ = run_main(capsys, "export", prefix, tmp_path / "m.keras", "--keras", "2",
                            "--dry-run", "--return-sequences")
    assert code == 0 and "Bidirectional(LSTM)" in out
    assert "return_sequences=True (--return-sequences)" in out and "merge_mode concat" in out
    assert not os.path.exists(tmp_path / "m.keras")
    code, out, _ = run_main(capsys, "inspect", prefix)
    assert code == 0
    assert ("tf.keras layer layer_with_weights-0: Bidirectional(LSTM(3)): "
            "forward_layer/cell/kernel [4, 12]") in out
    assert "tf.keras layer layer_with_weights-1: Dense(2): kernel [6, 2], bias [2]" in out


def test_proof_catches_a_misread_checkpoint_and_writes_nothing(tmp_path, monkeypatch):
    """tf_keras restores its model by the object graph itself, not by the plan's keys: a plan
    that reads forward_layer as backward_layer exports a model the proof refuses."""
    from legacy_share.keras import tf2_exporting  # pylint: disable=import-outside-toplevel
    prefix = _saved(tmp_path, [K.layers.Bidirectional(K.layers.GRU(3)), K.layers.Dense(2)],
                    (None, 4))
    planned = tf2_exporting.plan_checkpoint

    def swapped(ckpt, options):
        plan = planned(ckpt, options)
        bidirectional = plan.layers[0]
        half = len(bidirectional.weights) // 2
        weights = bidirectional.weights[half:] + bidirectional.weights[:half]
        layer = dataclasses.replace(bidirectional, weights=weights)
        return dataclasses.replace(plan, layers=(layer,) + plan.layers[1:])

    monkeypatch.setattr(tf2_exporting, "plan_checkpoint", swapped)
    with pytest.raises(legacy_share.ProofError, match="differs from tf_keras's model"):
        legacy_share.keras.export(prefix, tmp_path / "m.keras", keras=2)
    assert not os.path.exists(tmp_path / "m.keras")
    monkeypatch.undo()
    report = legacy_share.keras.export(prefix, tmp_path / "m.keras", keras=2)
    assert report.proof.ok and os.path.isfile(tmp_path / "m.keras")


def test_inspect_without_the_data_file_still_says_what_it_is(tmp_path, capsys):
    prefix = _saved(tmp_path, [K.layers.GRU(3), K.layers.Dense(2)], (None, 4))
    for name in os.listdir(tmp_path):
        if ".data-" in name:
            os.remove(tmp_path / name)
    code, out, _ = run_main(capsys, "inspect", prefix)
    assert code == 0 and "object-based" in out
    assert "its tf.keras layers cannot be listed" in out and "missing" in out
