"""A float64 NumPy implementation of the TF1 RNN cell equations, the yardstick of every export.

Weights are TF1's own (see docs/naming.md, "Shapes"): a kernel acts on `concat([x, h])`,
GRU gate columns are `[r | u]`, LSTM columns `[i | j | f | o]`. Nothing here knows Keras.
"""

import numpy as np

__all__ = [
    "sigmoid", "gru_step", "basic_lstm_step", "lstm_step", "basic_rnn_step",
    "gru_cell", "basic_lstm_cell", "lstm_cell", "basic_rnn_cell",
    "kind_step", "run_stack", "run_bidirectional", "reverse_by_lengths",
]


def sigmoid(x):
    with np.errstate(over="ignore"):  # exp(-x) = inf for x << 0 gives exactly 0, as it should
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
              projection_kernel=None, forget_bias=1.0, cell_clip=None, proj_clip=None):
    """LSTMCell: optional peepholes, cell clipping, projection and its clipping.

    state (c [batch, units], m [batch, num_proj or units]) -> (new_m, (new_c, new_m)).
    """
    c, m = state
    i, j, f, o = np.split(np.concatenate([x, m], axis=1) @ kernel + bias, 4, axis=1)
    if w_f_diag is not None:
        new_c = (sigmoid(f + forget_bias + w_f_diag * c) * c
                 + sigmoid(i + w_i_diag * c) * np.tanh(j))
    else:
        new_c = sigmoid(f + forget_bias) * c + sigmoid(i) * np.tanh(j)
    if cell_clip is not None:
        new_c = np.clip(new_c, -cell_clip, cell_clip)
    if w_o_diag is not None:
        new_m = sigmoid(o + w_o_diag * new_c) * np.tanh(new_c)
    else:
        new_m = sigmoid(o) * np.tanh(new_c)
    if projection_kernel is not None:
        new_m = new_m @ projection_kernel
        if proj_clip is not None:
            new_m = np.clip(new_m, -proj_clip, proj_clip)
    return new_m, (new_c, new_m)


def basic_rnn_step(x, h, kernel, bias):
    """BasicRNNCell: new h = tanh([x, h] @ kernel + bias)."""
    return np.tanh(np.concatenate([x, h], axis=1) @ kernel + bias)


def gru_cell(weights):
    """A step over (x, h) for `run_stack`, from [gates_kernel, gates_bias, cand_kernel,
    cand_bias]."""
    def step(x, h):
        new_h = gru_step(x, h, *weights)
        return new_h, new_h
    return step


def basic_lstm_cell(weights, forget_bias=1.0):
    """A step over (x, (c, h)) for `run_stack`, from [kernel, bias]."""
    return lambda x, state: basic_lstm_step(x, state, *weights, forget_bias=forget_bias)


def lstm_cell(kernel, bias, forget_bias=1.0, **extras):
    """A step over (x, (c, m)) for `run_stack`; `extras` as `lstm_step` takes them."""
    return lambda x, state: lstm_step(x, state, kernel, bias, forget_bias=forget_bias, **extras)


def basic_rnn_cell(weights):
    """A step over (x, h) for `run_stack`, from [kernel, bias]."""
    def step(x, h):
        new_h = basic_rnn_step(x, h, *weights)
        return new_h, new_h
    return step


def kind_step(kind, weights, **settings):
    """A step over (x, state) for `run_stack` of one cell of `kind` (a legacy_share.cell_kinds
    record), from its TF1 variables {path below the cell scope: array} and the run-time
    settings (`forget_bias`, `cell_clip`, `proj_clip`) the kind takes; others are ignored."""
    function = kind.reference_step_function()
    arguments = {keyword: weights[variable]
                 for variable, keyword in kind.reference_arguments.items() if variable in weights}
    arguments.update({name: value for name, value in settings.items() if name in kind.settings})
    if kind.state_pair:
        return lambda x, state: function(x, state, **arguments)

    def step(x, h):
        new_h = function(x, h, **arguments)
        return new_h, new_h
    return step


def run_stack(steps, initial_states, inputs, lengths=None):
    """Runs stacked steps over `inputs` [batch, time, depth], as `dynamic_rnn` of a MultiRNNCell.

    Args:
      steps: one step function per layer, `(x, state) -> (output, new_state)`.
      initial_states: one state per layer (arrays or tuples of arrays, [batch, ...]).
      inputs: [batch, time, depth].
      lengths: [batch] ints or None; past a row's length its outputs are zero and its
        states stay as they were (`sequence_length=lengths`).
    Returns:
      (outputs [batch, time, units of the last layer], final states per layer).
    """
    states = list(initial_states)
    batch, time = inputs.shape[0], inputs.shape[1]
    live_all = np.ones([batch, time], bool) if lengths is None else (
        np.arange(time)[None, :] < np.asarray(lengths)[:, None])
    outputs = []
    for t in range(time):
        live = live_all[:, t][:, None]
        layer_input = inputs[:, t]
        for i, step in enumerate(steps):
            output, new_state = step(layer_input, states[i])
            states[i] = _where(live, new_state, states[i])
            layer_input = np.where(live, output, 0.0)
        outputs.append(layer_input)
    if not outputs:
        return np.zeros([batch, 0, 0]), states
    return np.stack(outputs, axis=1), states


def reverse_by_lengths(values, lengths):
    """`tf.reverse_sequence` on axis 1: row b's first `lengths[b]` steps reversed, the rest kept."""
    out = np.array(values, copy=True)
    for b, n in enumerate(np.asarray(lengths)):
        out[b, :n] = values[b, :n][::-1]
    return out


def run_bidirectional(run_forward, run_backward, inputs, lengths):
    """`bidirectional_dynamic_rnn`: [fw(inputs); reverse(bw(reverse(inputs)))] on the last axis.

    `run_forward` / `run_backward`: `(inputs, lengths) -> outputs [batch, time, units]`.
    """
    forward = run_forward(inputs, lengths)
    backward = reverse_by_lengths(run_backward(reverse_by_lengths(inputs, lengths), lengths),
                                  lengths)
    return np.concatenate([forward, backward], axis=-1)


def _where(live, new, old):
    if isinstance(new, tuple):
        return tuple(_where(live, n, o) for n, o in zip(new, old))
    return np.where(live, new, old)
