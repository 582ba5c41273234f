"""The cuDNN opaque-buffer layout and its TF1 / Keras equivalents, against NumPy equations."""

import itertools

import numpy as np
import pytest

from legacy_share import cudnn
from legacy_share.errors import CheckpointError, PlanError
from tests import numpy_rnn

LAYOUTS = [cudnn.Layout(kind, layers, 3, 5, directions)
           for kind, layers, directions in itertools.product(cudnn.KINDS, (1, 2, 3), (1, 2))]


def random_canonicals(layout, seed=0):
    rng = np.random.RandomState(seed)
    buffer = rng.uniform(-0.8, 0.8, layout.size)
    return cudnn.unpack(buffer, layout), buffer


@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
def test_pack_inverts_unpack_and_every_value_is_used_once(layout):
    buffer = np.arange(layout.size, dtype=np.float64)
    canonicals = cudnn.unpack(buffer, layout)
    assert sorted(canonicals) == [(l, d) for l in range(layout.layers)
                                  for d in range(layout.directions)]
    used = np.concatenate([v.reshape(-1) for c in canonicals.values()
                           for part in (c.W, c.R, c.bW, c.bR) for v in part])
    assert sorted(used) == list(buffer)
    np.testing.assert_array_equal(cudnn.pack(canonicals, layout), buffer)


def test_golden_positions_weights_of_all_layers_first_then_biases():
    # 2-layer unidirectional RNN-tanh, 1 unit, input size 2: W0 [1, 2], R0 [1, 1] for layer 0,
    # W1 [1, 1], R1 [1, 1] for layer 1, then bW0, bR0, bW1, bR1.
    layout = cudnn.Layout("rnn_tanh", 2, 1, 2)
    assert layout.size == 9
    parts = cudnn.unpack(np.arange(9.0), layout)
    np.testing.assert_array_equal(parts[(0, 0)].W[0], [[0, 1]])
    np.testing.assert_array_equal(parts[(0, 0)].R[0], [[2]])
    np.testing.assert_array_equal(parts[(1, 0)].W[0], [[3]])
    np.testing.assert_array_equal(parts[(1, 0)].R[0], [[4]])
    assert [parts[(0, 0)].bW[0][0], parts[(0, 0)].bR[0][0],
            parts[(1, 0)].bW[0][0], parts[(1, 0)].bR[0][0]] == [5, 6, 7, 8]


def test_golden_positions_lstm_gates_inputs_before_recurrent_forward_before_backward():
    layout = cudnn.Layout("lstm", 1, 1, 1, directions=2)
    parts = cudnn.unpack(np.arange(float(layout.size)), layout)
    assert [parts[(0, 0)].W[g][0, 0] for g in range(4)] == [0, 1, 2, 3]
    assert [parts[(0, 0)].R[g][0, 0] for g in range(4)] == [4, 5, 6, 7]
    assert [parts[(0, 1)].W[g][0, 0] for g in range(4)] == [8, 9, 10, 11]
    assert [parts[(0, 0)].bW[g][0] for g in range(4)] == [16, 17, 18, 19]
    assert [parts[(0, 1)].bR[g][0] for g in range(4)] == [28, 29, 30, 31]


def test_size_formula_matches_a_known_configuration():
    # Per (layer, direction): G * (n * in + n * n + 2n); layers above 0 read n * directions.
    n, d, gates = 4, 7, 4
    expected = 2 * gates * (n * d + n * n + 2 * n) + 2 * gates * (n * 2 * n + n * n + 2 * n)
    assert cudnn.params_size("lstm", 2, n, d, 2) == expected


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_packing_agrees_with_keras_own_cudnn_packing(kind):
    tf = pytest.importorskip("tensorflow")
    utils = _keras_gru_lstm_utils()
    n, d = 3, 5
    layout = cudnn.Layout(kind, 1, n, d)
    canonicals, buffer = random_canonicals(layout, seed=1)
    kernel, recurrent, bias = cudnn.keras_weights(canonicals[(0, 0)], kind)
    gates = layout.gates
    weights = np.split(kernel, gates, axis=1) + np.split(recurrent, gates, axis=1)
    if kind == "lstm":
        biases = np.split(np.concatenate([np.zeros_like(bias), bias]), 2 * gates)
    else:
        biases = np.split(bias.reshape(-1), 2 * gates)
        # Keras's GRU blocks are (z, r, h); cuDNN's are (r, z, h): swap as Keras does on CUDA.
        weights[0], weights[1], weights[3], weights[4] = weights[1], weights[0], weights[4], weights[3]
        biases[0], biases[1], biases[3], biases[4] = biases[1], biases[0], biases[4], biases[3]
    keras_buffer = utils.canonical_to_params(
        [tf.constant(w) for w in weights], [tf.constant(b) for b in biases],
        shape=tf.constant([-1]), transpose_weights=True)
    if kind == "lstm":  # Keras folds both biases into the recurrent half
        canon = canonicals[(0, 0)]
        folded = cudnn.Canonical(canon.W, canon.R, tuple(np.zeros(n) for _ in range(4)),
                                 tuple(w + r for w, r in zip(canon.bW, canon.bR)))
        buffer = cudnn.pack({(0, 0): folded}, layout)
    np.testing.assert_allclose(np.asarray(keras_buffer), buffer, rtol=0, atol=1e-15)


def _keras_gru_lstm_utils():
    import importlib  # pylint: disable=import-outside-toplevel
    for module in ("tf_keras.src.layers.rnn.gru_lstm_utils", "keras.src.layers.rnn.gru_lstm_utils",
                   "keras.layers.rnn.gru_lstm_utils"):
        try:
            found = importlib.import_module(module)
        except ImportError:
            continue
        if hasattr(found, "canonical_to_params"):
            return found
    pytest.skip("this Keras has no gru_lstm_utils.canonical_to_params")


def test_a_buffer_of_the_wrong_length_names_it_and_what_it_would_fit():
    layout = cudnn.Layout("lstm", 2, 4, 6)
    wrong = cudnn.Layout("lstm", 2, 4, 9)
    with pytest.raises(CheckpointError) as info:
        cudnn.unpack(np.zeros(layout.size), wrong, name="model.ckpt: cudnn_lstm/opaque_kernel")
    message = str(info.value)
    assert message.startswith("model.ckpt: cudnn_lstm/opaque_kernel: ")
    assert f"{layout.size} values" in message and f"needs {wrong.size}" in message
    assert "would fit input size 6" in message
    with pytest.raises(CheckpointError, match="1-D"):
        cudnn.unpack(np.zeros((2, 3)), layout)


def test_mismatch_also_names_other_layer_counts_directions_and_modes():
    bidirectional = cudnn.Layout("gru", 1, 4, 4, directions=2)
    message = cudnn.describe_mismatch(bidirectional.size, cudnn.Layout("gru", 1, 4, 4))
    assert "bidirectional" in message
    three = cudnn.Layout("rnn_tanh", 3, 4, 4)
    assert "3 layer(s)" in cudnn.describe_mismatch(three.size, cudnn.Layout("rnn_tanh", 1, 4, 4))
    # 120 values: rnn_tanh or rnn_relu with 3 layers, or a 1-layer GRU (3 * 4 * (4 + 4 + 2)).
    assert cudnn.describe_mismatch(three.size, cudnn.Layout("gru", 3, 4, 4)).endswith(
        "needs 360; with the rest as given it would fit 1 layer(s) or mode rnn_tanh or mode "
        "rnn_relu")
    assert cudnn.describe_mismatch(three.size, cudnn.Layout("rnn_tanh", 1, 4, 4)).endswith(
        "needs 40; with the rest as given it would fit input size 24 or 3 layer(s) or mode gru")


def test_sizes_are_closed_form_for_any_layer_count():
    huge = cudnn.Layout("lstm", 10 ** 12, 4, 6)
    # layer 0: 4 gates * 4 units * (6 + 4 + 2); each layer above: 4 * 4 * (4 + 4 + 2)
    assert huge.size == 16 * 12 + (10 ** 12 - 1) * 16 * 10
    assert cudnn.fitting_layers(huge.size, "lstm", 4, 6) == 10 ** 12
    assert "needs" in cudnn.describe_mismatch(100, huge)


@pytest.mark.parametrize("bad", [dict(kind="sru"), dict(layers=0), dict(units=-1),
                                 dict(input_size=2.5), dict(directions=3)])
def test_impossible_layouts_are_refused(bad):
    fields = dict(kind="lstm", layers=1, units=2, input_size=2)
    fields.update(bad)
    with pytest.raises(PlanError):
        cudnn.Layout(**fields)


def _tf1_lstm(kernel, bias, inputs, lengths, forget_bias=1.0):
    batch, time = inputs.shape[:2]
    n = bias.shape[0] // 4
    out = np.zeros((batch, time, n))
    for b in range(batch):
        state = (np.zeros((1, n)), np.zeros((1, n)))
        for t in range(lengths[b]):
            h, state = numpy_rnn.lstm_step(inputs[b:b + 1, t], state, kernel, bias,
                                           forget_bias=forget_bias)
            out[b, t] = h[0]
    return out


@pytest.mark.parametrize("forget_bias", [1.0, 0.0, 2.5])
def test_lstm_cell_weights_compute_the_cudnn_lstm_with_tf1_equations(forget_bias):
    layout = cudnn.Layout("lstm", 1, 3, 5)
    canonicals, _ = random_canonicals(layout, seed=2)
    inputs = np.random.RandomState(3).randn(3, 6, 5)
    lengths = np.array([6, 3, 0])
    kernel, bias = cudnn.lstm_cell_weights(canonicals[(0, 0)], forget_bias=forget_bias)
    assert kernel.shape == (5 + 3, 12) and bias.shape == (12,)
    np.testing.assert_allclose(_tf1_lstm(kernel, bias, inputs, lengths, forget_bias),
                               cudnn.run(canonicals, layout, inputs, lengths), atol=1e-12)
    # Without the fold (the forget bias added twice) the check above would fail:
    unfolded = _tf1_lstm(kernel, bias + 0.0, inputs, lengths, forget_bias + 1.0)
    assert np.abs(unfolded - cudnn.run(canonicals, layout, inputs, lengths)).max() > 1e-3


def test_basic_rnn_cell_weights_compute_the_cudnn_rnn():
    layout = cudnn.Layout("rnn_tanh", 1, 3, 5)
    canonicals, _ = random_canonicals(layout, seed=4)
    kernel, bias = cudnn.basic_rnn_cell_weights(canonicals[(0, 0)])
    x = np.random.RandomState(5).randn(2, 5)
    h = np.random.RandomState(6).randn(2, 3)
    expected, _ = cudnn.step("rnn_tanh", canonicals[(0, 0)], x, h)
    np.testing.assert_allclose(np.tanh(np.concatenate([x, h], axis=1) @ kernel + bias),
                               expected, atol=1e-12)


def test_compatible_gru_weights_compute_the_cudnn_gru():
    # The equation of TF 1.x CudnnCompatibleGRUCell over its saved tensors.
    layout = cudnn.Layout("gru", 1, 3, 5)
    canonicals, _ = random_canonicals(layout, seed=7)
    w = cudnn.compatible_gru_cell_weights(canonicals[(0, 0)])
    x = np.random.RandomState(8).randn(2, 5)
    h = np.random.RandomState(9).randn(2, 3)
    gates = numpy_rnn.sigmoid(np.concatenate([x, h], axis=1) @ w["gates/kernel"] + w["gates/bias"])
    r, u = np.split(gates, 2, axis=1)
    candidate = np.tanh(x @ w["candidate/input_projection/kernel"]
                        + w["candidate/input_projection/bias"]
                        + r * (h @ w["candidate/hidden_projection/kernel"]
                               + w["candidate/hidden_projection/bias"]))
    expected, _ = cudnn.step("gru", canonicals[(0, 0)], x, h)
    np.testing.assert_allclose(u * h + (1 - u) * candidate, expected, atol=1e-12)


def test_reference_run_bidirectional_reads_valid_steps_backwards_and_zeros_padding():
    layout = cudnn.Layout("rnn_tanh", 2, 2, 3, directions=2)
    canonicals, _ = random_canonicals(layout, seed=10)
    inputs = np.random.RandomState(11).randn(2, 4, 3)
    out = cudnn.run(canonicals, layout, inputs, [4, 2])
    assert out.shape == (2, 4, 4)
    np.testing.assert_array_equal(out[1, 2:], 0.0)
    # The backward direction's output at the last valid step has seen only that step.
    solo = cudnn.run({k: v for k, v in canonicals.items() if k[0] == 0},
                     cudnn.Layout("rnn_tanh", 1, 2, 3, directions=2), inputs[1:, 1:2], [1])
    first_layer = cudnn.run({k: v for k, v in canonicals.items() if k[0] == 0},
                            cudnn.Layout("rnn_tanh", 1, 2, 3, directions=2), inputs, [4, 2])
    np.testing.assert_allclose(first_layer[1, 1, 2:], solo[0, 0, 2:], atol=1e-12)


def test_biases_of_a_float16_buffer_are_summed_in_float32():
    # Summed in float16, bW + bR lost up to half a float16 step and no export passed the proof.
    layout = cudnn.Layout("lstm", 1, 8, 3)
    buffer = np.random.RandomState(1).uniform(-1, 1, layout.size).astype(np.float16)
    canonical = cudnn.unpack(buffer, layout)[(0, 0)]
    exact = [canonical.bW[g].astype(np.float64) + canonical.bR[g] for g in range(4)]
    np.testing.assert_array_equal(cudnn.keras_weights(canonical, "lstm")[2], np.concatenate(exact))
    tf1_bias = cudnn.lstm_cell_weights(canonical, forget_bias=0.0)[1]
    np.testing.assert_array_equal(tf1_bias, np.concatenate([exact[g] for g in (0, 2, 1, 3)]))
