"""TF1 cell weights -> the weight lists of Keras layers (pure NumPy; see docs/keras.md).

A TF1 kernel acts on `concat([x, h])`: rows `[:d]` are the input part, rows `[d:]` the
recurrent part. GRU gate columns are `[r | u]` (Keras `[z | r | h]`, Keras z = TF1 u); LSTM
columns `[i | j | f | o]` (Keras `[i | f | c | o]`); LSTM `forget_bias` is folded into the bias.
"""

import numpy as np

from legacy_share import cell_kinds
from legacy_share.errors import ExportError
from legacy_share.tables import format_shape

__all__ = ["TF1_CELL_SCOPES", "layer_weights", "cell_sizes"]

GRU, BASIC_LSTM, LSTM, BASIC_RNN = (kind.scope for kind in cell_kinds.KINDS)
TF1_CELL_SCOPES = tuple(kind.scope for kind in cell_kinds.KINDS)  # what `cell` may be
PROJECTION = cell_kinds.PROJECTION


def cell_sizes(cell, shapes, where="the cell"):
    """(input depth, num_units, output size) of a TF1 cell from its variables' shapes.

    Args:
      cell: a TF1 cell scope of TF1_CELL_SCOPES (`gru_cell`, ...).
      shapes: {variable path below the cell scope (`gates/kernel`, `kernel`, ...): shape}.
      where: how messages name the cell (its checkpoint scope).
    Raises:
      ExportError: a variable is missing or its shape does not fit the others.
    """
    kind = cell_kinds.by_scope(cell)
    kernel_name = kind.sizing_kernel
    kernel = _need(shapes, kernel_name, where)
    if len(kernel) != 2:
        raise ExportError(f"{where}/{kernel_name} has shape {format_shape(kernel)}; a cell "
                          f"kernel is 2-D [input_depth + units, gates * units]")
    units, rest = divmod(kernel[1], kind.gates())
    output = units
    if kind.projection in shapes:
        output = shapes[kind.projection][1]
    depth = kernel[0] - output
    expected = {name: kind.shape(name, depth, units, output)
                for name in (kernel_name,) + kind.variables
                if name not in kind.optional or name in shapes}
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
      cell: a TF1 cell scope: `gru_cell` (-> GRU(reset_after=False)), `basic_lstm_cell` or
        `lstm_cell` (-> LSTM, or with peepholes / projection this package's LegacyLSTMCell),
        `basic_rnn_cell` (-> SimpleRNN); each kind's `keras_blocks` (legacy_share.cell_kinds).
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
    kind = cell_kinds.by_scope(cell)
    shapes = {name: np.shape(value) for name, value in weights.items()}
    depth, units, _ = cell_sizes(cell, shapes)
    kernels, recurrents, biases = [], [], []
    for scope, block, blocks in kind.keras_blocks:
        kernel = weights["/".join(filter(None, (scope, cell_kinds.KERNEL)))]
        bias = np.asarray(weights["/".join(filter(None, (scope, cell_kinds.BIAS)))])
        columns = slice(block * units, (block + 1) * units)
        kernels.append(kernel[:depth, columns])
        recurrents.append(kernel[depth:, columns])
        if (scope, block) == kind.forget_gate:
            biases.append(bias[columns] + np.asarray(forget_bias, bias.dtype))
        else:
            biases.append(bias[columns])
    found = [np.concatenate(kernels, axis=1), np.concatenate(recurrents, axis=1),
             np.concatenate(biases)]
    if kind.custom_layer and (custom or any(p in weights for p in kind.optional)):
        dtype = biases[0].dtype
        peepholes = np.stack([np.asarray(weights.get(p, np.zeros(units, dtype)))
                              for p in cell_kinds.PEEPHOLES])
        projection = np.asarray(weights.get(PROJECTION, np.eye(units, dtype=dtype)))
        return found + [peepholes, projection]
    return found


def _need(shapes, name, where):
    if name not in shapes:
        raise ExportError(f"{where}/{name} is missing from the checkpoint (have "
                          f"{', '.join(sorted(shapes)) or 'nothing'}); the cell cannot be exported")
    return tuple(shapes[name])
