"""TF 2 tf.keras TF-format checkpoints (`model.save_weights(path)`) exported to Keras 3.

The checkpoints are written here by tf_keras's own `save_weights` (pytest's process serves
tf_keras; tf.keras on TensorFlow < 2.16), exported in one fresh Keras 3 process, reloaded
from the files in fresh processes (Keras 3 on TensorFlow and on JAX, tf_keras for `keras=2`)
and compared with a float64 NumPy reference of Keras's equations (tests/numpy_rnn.py).
"""

import os

import numpy as np
import pytest

import legacy_share
from legacy_share._tf import tf  # first: pytest's process serves tf_keras
from legacy_share.keras import model as keras_model
from legacy_share.keras import tf2_checkpoints
from legacy_share.reading import open_checkpoint
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
