"""NumPy re-implementation of the TF1 RNN cell equations (see docs/naming.md, "Shapes")."""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def gru_step(x, h, gates_kernel, gates_bias, candidate_kernel, candidate_bias):
    """x [batch, depth], h [batch, units] -> new h [batch, units]. Gate columns are [r, u]."""
    gates = sigmoid(np.concatenate([x, h], axis=1) @ gates_kernel + gates_bias)
    r, u = np.split(gates, 2, axis=1)
    c = np.tanh(np.concatenate([x, r * h], axis=1) @ candidate_kernel + candidate_bias)
    return u * h + (1.0 - u) * c


def basic_lstm_step(x, state, kernel, bias, forget_bias=1.0):
    """x [batch, depth], state (c, h) -> (new_h, (new_c, new_h)). Gate order i, j, f, o."""
    c, h = state
    i, j, f, o = np.split(np.concatenate([x, h], axis=1) @ kernel + bias, 4, axis=1)
    new_c = c * sigmoid(f + forget_bias) + sigmoid(i) * np.tanh(j)
    new_h = np.tanh(new_c) * sigmoid(o)
    return new_h, (new_c, new_h)


def lstm_step(x, state, kernel, bias, w_f_diag=None, w_i_diag=None, w_o_diag=None,
              projection_kernel=None, forget_bias=1.0):
    """LSTMCell: optional peepholes and projection. state (c, m) -> (new_m, (new_c, new_m))."""
    c, m = state
    i, j, f, o = np.split(np.concatenate([x, m], axis=1) @ kernel + bias, 4, axis=1)
    if w_f_diag is not None:
        new_c = (sigmoid(f + forget_bias + w_f_diag * c) * c
                 + sigmoid(i + w_i_diag * c) * np.tanh(j))
        new_m = sigmoid(o + w_o_diag * new_c) * np.tanh(new_c)
    else:
        new_c = sigmoid(f + forget_bias) * c + sigmoid(i) * np.tanh(j)
        new_m = sigmoid(o) * np.tanh(new_c)
    if projection_kernel is not None:
        new_m = new_m @ projection_kernel
    return new_m, (new_c, new_m)


def gru_cell(weights):
    """A step function over (x, h) for `run_stack`, from [gates_kernel, gates_bias, cand_kernel, cand_bias]."""
    def step(x, h):
        new_h = gru_step(x, h, *weights)
        return new_h, new_h
    return step


def basic_lstm_cell(weights, forget_bias=1.0):
    """A step function over (x, (c, h)) for `run_stack`, from [kernel, bias]."""
    return lambda x, state: basic_lstm_step(x, state, *weights, forget_bias=forget_bias)


def run_stack(steps, initial_states, inputs):
    """Runs stacked step functions over `inputs` [batch, time, depth].

    Returns (outputs [batch, time, units of the last layer], final states per layer).
    """
    states = list(initial_states)
    outputs = []
    for t in range(inputs.shape[1]):
        layer_input = inputs[:, t]
        for i, step in enumerate(steps):
            layer_input, states[i] = step(layer_input, states[i])
        outputs.append(layer_input)
    return np.stack(outputs, axis=1), states


def basic_rnn_step(x, h, kernel, bias):
    """BasicRNNCell: x [batch, depth], h [batch, units] -> new h = tanh([x, h] @ kernel + bias)."""
    return np.tanh(np.concatenate([x, h], axis=1) @ kernel + bias)


def basic_rnn_cell(weights):
    """A step function over (x, h) for `run_stack`, from [kernel, bias]."""
    def step(x, h):
        new_h = basic_rnn_step(x, h, *weights)
        return new_h, new_h
    return step
