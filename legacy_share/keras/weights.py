"""TF1 cell weights -> the weight lists of Keras layers (pure NumPy; see docs/keras.md).

A TF1 kernel acts on `concat([x, h])`: rows `[:d]` are the input part, rows `[d:]` the
recurrent part. GRU gate columns are `[r | u]` (Keras `[z | r | h]`, Keras z = TF1 u); LSTM
columns `[i | j | f | o]` (Keras `[i | f | c | o]`); LSTM `forget_bias` is folded into the bias.
"""

import numpy as np

from legacy_share import names
from legacy_share.errors import ExportError
from legacy_share.tables import format_shape

__all__ = ["CELLS", "layer_weights", "cell_sizes"]

GRU, BASIC_LSTM, LSTM, BASIC_RNN = (names.GRU_SCOPE, names.BASIC_LSTM_SCOPE, names.LSTM_SCOPE,
                                     names.BASIC_RNN_SCOPE)
CELLS = (GRU, BASIC_LSTM, LSTM, BASIC_RNN)
_GATES_KERNEL = f"{names.GRU_GATES}/{names.KERNEL}"
_GATES_BIAS = f"{names.GRU_GATES}/{names.BIAS}"
_CANDIDATE_KERNEL = f"{names.GRU_CANDIDATE}/{names.KERNEL}"
_CANDIDATE_BIAS = f"{names.GRU_CANDIDATE}/{names.BIAS}"
PROJECTION = f"{names.LSTM_PROJECTION}/{names.KERNEL}"


def cell_sizes(cell, shapes, where="the cell"):
    """(input depth, num_units, output size) of a TF1 cell from its variables' shapes.

    Args:
      cell: a TF1 cell scope of CELLS (`gru_cell`, ...).
      shapes: {variable path below the cell scope (`gates/kernel`, `kernel`, ...): shape}.
      where: how messages name the cell (its checkpoint scope).
    Raises:
      ExportError: a variable is missing or its shape does not fit the others.
    """
    kernel_name = _CANDIDATE_KERNEL if cell == GRU else names.KERNEL
    kernel = _need(shapes, kernel_name, where)
    if len(kernel) != 2:
        raise ExportError(f"{where}/{kernel_name} has shape {format_shape(kernel)}; a cell "
                          f"kernel is 2-D [input_depth + units, gates * units]")
    gates = 4 if cell in (BASIC_LSTM, LSTM) else 1
    units, rest = divmod(kernel[1], gates)
    output = units
    if cell == LSTM and PROJECTION in shapes:
        output = shapes[PROJECTION][1]
    depth = kernel[0] - output
    expected = {kernel_name: (depth + output, gates * units)}
    if cell == GRU:
        expected.update({_GATES_KERNEL: (depth + units, 2 * units), _GATES_BIAS: (2 * units,),
                         _CANDIDATE_BIAS: (units,)})
    else:
        expected[names.BIAS] = (gates * units,)
    if cell == LSTM:
        expected.update({p: (units,) for p in names.LSTM_PEEPHOLES if p in shapes})
        if PROJECTION in shapes:
            expected[PROJECTION] = (units, output)
    for name, shape in expected.items():
        have = _need(shapes, name, where)
        if tuple(have) != shape or rest or depth < 1:
            raise ExportError(
                f"{where}/{name} has shape {format_shape(have)} but {where}/{kernel_name} "
                f"{format_shape(kernel)} implies {format_shape(shape)} (input depth {depth}, "
                f"{units} units); the checkpoint does not hold a complete {cell}")
    return depth, units, output


def layer_weights(cell, weights, forget_bias=1.0, custom=False):
    """The weight list of the Keras layer for one TF1 cell, in `layer.set_weights` order.

    Args:
      cell: `gru_cell` (-> GRU(reset_after=False)), `basic_lstm_cell` or `lstm_cell` (-> LSTM,
        or with peepholes / projection this package's LegacyLSTMCell), `basic_rnn_cell`
        (-> SimpleRNN).
      weights: {variable path below the cell scope: array}, e.g. {"gates/kernel": [d+n, 2n],
        "gates/bias": [2n], "candidate/kernel": [d+n, n], "candidate/bias": [n]}.
      forget_bias: the LSTM's run-time forget bias (TF1's default 1.0), folded into the bias.
      custom: an LSTMCell for LegacyLSTMCell even without extras (e.g. to clip its state).
    Returns:
      GRU / LSTM / SimpleRNN: [kernel [d, G*n], recurrent_kernel [n, G*n], bias [G*n]];
      an LSTMCell with extras (or `custom`): [kernel, recurrent_kernel [p, 4n], bias, peepholes [3, n]
      (f, i, o; zeros without), projection [n, p] (identity without)].
    Raises:
      ExportError: a variable is missing or misshapen.
    """
    shapes = {name: np.shape(value) for name, value in weights.items()}
    depth, units, _ = cell_sizes(cell, shapes)
    n = units
    if cell == GRU:
        g, c = weights[_GATES_KERNEL], weights[_CANDIDATE_KERNEL]
        gb, cb = weights[_GATES_BIAS], weights[_CANDIDATE_BIAS]
        kernel = np.concatenate([g[:depth, n:2 * n], g[:depth, :n], c[:depth]], axis=1)
        recurrent = np.concatenate([g[depth:, n:2 * n], g[depth:, :n], c[depth:]], axis=1)
        bias = np.concatenate([gb[n:2 * n], gb[:n], cb])
        return [kernel, recurrent, bias]
    if cell == BASIC_RNN:
        k = weights[names.KERNEL]
        return [k[:depth], k[depth:], np.asarray(weights[names.BIAS])]
    k, b = weights[names.KERNEL], np.asarray(weights[names.BIAS])
    blocks = [slice(0, n), slice(2 * n, 3 * n), slice(n, 2 * n), slice(3 * n, 4 * n)]  # i f j o
    kernel = np.concatenate([k[:depth, s] for s in blocks], axis=1)
    recurrent = np.concatenate([k[depth:, s] for s in blocks], axis=1)
    bias = np.concatenate([b[blocks[0]], b[blocks[1]] + np.asarray(forget_bias, b.dtype),
                           b[blocks[2]], b[blocks[3]]])
    if cell == LSTM and (custom or has_extras(weights)):
        peepholes = np.stack([np.asarray(weights.get(p, np.zeros(n, b.dtype)))
                              for p in names.LSTM_PEEPHOLES])
        projection = np.asarray(weights.get(PROJECTION, np.eye(n, dtype=b.dtype)))
        return [kernel, recurrent, bias, peepholes, projection]
    return [kernel, recurrent, bias]


def has_extras(weights):
    """True when an LSTMCell has peepholes or a projection (no Keras LSTM computes them)."""
    return any(p in weights for p in names.LSTM_PEEPHOLES + (PROJECTION,))


def _need(shapes, name, where):
    if name not in shapes:
        raise ExportError(f"{where}/{name} is missing from the checkpoint (have "
                          f"{', '.join(sorted(shapes)) or 'nothing'}); the cell cannot be exported")
    return tuple(shapes[name])
