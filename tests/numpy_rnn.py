"""The NumPy references: the TF1 cell equations (they live in `legacy_share.reference` now),
and below them Keras's own, for the export of tf.keras checkpoints."""

import numpy as np

from legacy_share.reference import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import
from legacy_share.reference import sigmoid
from legacy_share.reference import __all__  # noqa: F401


# Keras's own equations (tf_keras and Keras 3 agree), for the export of tf.keras checkpoints:
# kernel [depth, G*units] on x, recurrent_kernel [units, G*units] on h; gate columns GRU
# [z | r | h], LSTM [i | f | c | o]; GRU(reset_after=True) bias [2, 3*units] (input, recurrent).

def keras_rnn(kind, weights, inputs, return_sequences=True, reset_after=True, backwards=False):
    """A Keras SimpleRNN / GRU / LSTM layer over `inputs` [batch, time, depth], float64.

    weights: [kernel, recurrent_kernel, bias] as `layer.get_weights()` gives them.
    Returns [batch, time, units] (`return_sequences`) or [batch, units] (the last step's).
    """
    kernel, recurrent, bias = (np.asarray(w, np.float64) for w in weights)
    x = np.asarray(inputs, np.float64)[:, ::-1] if backwards else np.asarray(inputs, np.float64)
    units = recurrent.shape[0]
    h = np.zeros([x.shape[0], units])
    c = np.zeros_like(h)
    outputs = []
    for t in range(x.shape[1]):
        if kind == "SimpleRNN":
            h = np.tanh(x[:, t] @ kernel + h @ recurrent + bias)
        elif kind == "LSTM":
            i, f, g, o = np.split(x[:, t] @ kernel + h @ recurrent + bias, 4, axis=1)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
        else:
            h = _keras_gru_step(x[:, t], h, kernel, recurrent, bias, reset_after)
        outputs.append(h)
    if not return_sequences:
        return h
    out = np.stack(outputs, axis=1)
    return out[:, ::-1] if backwards else out


def _keras_gru_step(x, h, kernel, recurrent, bias, reset_after):
    input_bias, recurrent_bias = (bias[0], bias[1]) if reset_after else (bias, 0 * bias)
    xz, xr, xh = np.split(x @ kernel + input_bias, 3, axis=1)
    uz, ur, uh = np.split(recurrent, 3, axis=1)
    rz, rr, rh = np.split(recurrent_bias, 3, axis=-1)
    z = sigmoid(xz + h @ uz + rz)
    r = sigmoid(xr + h @ ur + rr)
    candidate = np.tanh(xh + (r * (h @ uh + rh) if reset_after else (r * h) @ uh))
    return z * h + (1 - z) * candidate


def keras_bidirectional(kind, forward, backward, inputs, return_sequences=True):
    """Keras's Bidirectional(merge_mode="concat") of two layers' weights, float64."""
    return np.concatenate([keras_rnn(kind, forward, inputs, return_sequences),
                           keras_rnn(kind, backward, inputs, return_sequences, backwards=True)],
                          axis=-1)
