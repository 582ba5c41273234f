"""cuDNN RNN parameters in NumPy: the opaque buffer's layout, and the same weights as TF1 cells.

`tf.contrib.cudnn_rnn` models (CudnnLSTM, CudnnGRU, CudnnRNNTanh, CudnnRNNRelu) keep their
weights in one 1-D "opaque" buffer. TensorFlow converts it only with a GPU kernel
(`CudnnRNNParamsToCanonical`); this module does it on any machine.

Canonical weights of one (layer, direction), for G gates (LSTM `i, f, c, o`; GRU `r, u, h`;
RNN one): `W[g]` [units, in] applied to the layer input (`in` = input_size for layer 0,
units * directions above), `R[g]` [units, units] to the previous output, biases `bW[g]`,
`bR[g]` [units]. The buffer (linear input mode) holds every weight matrix first, layer by
layer, forward before backward, each (layer, direction) as `W[0..G-1]` then `R[0..G-1]`, each
matrix row-major; then every bias in the same order.

Nothing here imports TensorFlow.
"""

import dataclasses
from typing import Tuple

import numpy as np

from legacy_share.errors import CheckpointError, PlanError

__all__ = [
    "KINDS",
    "Layout",
    "Canonical",
    "params_size",
    "fitting_input_sizes",
    "fitting_layers",
    "describe_mismatch",
    "unpack",
    "pack",
    "lstm_cell_weights",
    "compatible_lstm_cell_weights",
    "basic_rnn_cell_weights",
    "compatible_gru_cell_weights",
    "from_compatible",
    "keras_weights",
]

# cuDNN mode -> number of gates of each linear layer (the order is cuDNN's).
KINDS = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


@dataclasses.dataclass(frozen=True)
class Layout:
    """What an opaque buffer holds: `kind` (a KINDS key), `layers`, `units`, `input_size`
    (the depth of layer 0's input) and `directions` (1, or 2 for bidirectional)."""

    kind: str
    layers: int
    units: int
    input_size: int
    directions: int = 1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise PlanError(f"unknown cuDNN mode {self.kind!r}; use one of: {', '.join(KINDS)}")
        for field in ("layers", "units", "input_size"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise PlanError(f"cuDNN {field} must be an integer >= 1, got {value!r}")
        if self.directions not in (1, 2):
            raise PlanError(f"cuDNN directions must be 1 or 2, got {self.directions!r}")

    @property
    def gates(self):
        return KINDS[self.kind]

    def layer_input(self, layer):
        """Depth of the input of `layer`: input_size for layer 0, units * directions above."""
        return self.input_size if layer == 0 else self.units * self.directions

    @property
    def size(self):
        """Number of values in the buffer."""
        return params_size(self.kind, self.layers, self.units, self.input_size, self.directions)

    def describe(self):
        direction = "bidirectional" if self.directions == 2 else "unidirectional"
        return (f"{self.kind}, {self.layers} layer(s), {self.units} units, input size "
                f"{self.input_size}, {direction}")


@dataclasses.dataclass(frozen=True)
class Canonical:
    """Weights of one (layer, direction): tuples of G arrays, gates in cuDNN's order.

    W[g] [units, in], R[g] [units, units], bW[g] and bR[g] [units].
    """

    W: Tuple[np.ndarray, ...]
    R: Tuple[np.ndarray, ...]
    bW: Tuple[np.ndarray, ...]
    bR: Tuple[np.ndarray, ...]


def params_size(kind, layers, units, input_size, directions=1):
    """Length of the opaque buffer of this configuration (linear input mode), in closed form.

    Layer 0 reads `input_size` values, every layer above `units * directions`.
    """
    per_matrix = directions * KINDS[kind] * units
    first = per_matrix * (input_size + units + 2)
    return first + (layers - 1) * per_matrix * (units * directions + units + 2)


def fitting_input_sizes(length, kind, layers, units, directions=1):
    """The input sizes (0 or 1 of them) that make a buffer of `length` values fit the rest."""
    gates = KINDS[kind]
    rest = params_size(kind, layers, units, 1, directions) - directions * gates * units
    per_input = directions * gates * units
    if length <= rest or (length - rest) % per_input:
        return []
    return [(length - rest) // per_input]


def fitting_layers(length, kind, units, input_size, directions=1):
    """The number of layers that makes a buffer of `length` values fit the rest, or None."""
    one = params_size(kind, 1, units, input_size, directions)
    above = params_size(kind, 2, units, input_size, directions) - one
    if length < one or (length - one) % above:
        return None
    return (length - one) // above + 1


def describe_mismatch(length, layout):
    """Why a buffer of `length` values cannot hold `layout`, and what it would fit."""
    fits = []
    sizes = fitting_input_sizes(length, layout.kind, layout.layers, layout.units,
                                layout.directions)
    if sizes:
        fits.append(f"input size {sizes[0]}")
    layers = fitting_layers(length, layout.kind, layout.units, layout.input_size,
                            layout.directions)
    if layers is not None and layers != layout.layers:
        fits.append(f"{layers} layer(s)")
    other = 3 - layout.directions
    if params_size(layout.kind, layout.layers, layout.units, layout.input_size, other) == length:
        fits.append("bidirectional" if other == 2 else "unidirectional")
    for kind in KINDS:
        if kind != layout.kind and params_size(kind, layout.layers, layout.units,
                                               layout.input_size,
                                               layout.directions) == length:
            fits.append(f"mode {kind}")
    fit = ("; with the rest as given it would fit " + " or ".join(fits)) if fits else (
        "; no single change of input size, layers, directions or mode makes it fit")
    return (f"{length} values, but {layout.describe()} needs {layout.size}{fit}")


def _pieces(layout):
    """(layer, direction, which, gate, shape) of every matrix, then every bias, in buffer order."""
    n, gates = layout.units, layout.gates
    weights, biases = [], []
    for layer in range(layout.layers):
        for direction in range(layout.directions):
            for gate in range(gates):
                weights.append((layer, direction, "W", gate, (n, layout.layer_input(layer))))
            for gate in range(gates):
                weights.append((layer, direction, "R", gate, (n, n)))
            for which in ("bW", "bR"):
                for gate in range(gates):
                    biases.append((layer, direction, which, gate, (n,)))
    return weights + biases


def unpack(buffer, layout, name="opaque buffer"):
    """1-D `buffer` -> {(layer, direction): Canonical}; CheckpointError if its length differs."""
    buffer = np.asarray(buffer)
    if buffer.ndim != 1 or buffer.size != layout.size:
        raise CheckpointError(f"{name}: {describe_mismatch(int(buffer.size), layout)}"
                              if buffer.ndim == 1 else
                              f"{name}: an opaque buffer is 1-D, got shape {list(buffer.shape)}")
    parts = {}
    offset = 0
    for layer, direction, which, gate, shape in _pieces(layout):
        count = int(np.prod(shape))
        parts.setdefault((layer, direction), {}).setdefault(which, {})[gate] = (
            buffer[offset:offset + count].reshape(shape))
        offset += count
    return {key: Canonical(*(tuple(found[which][g] for g in range(layout.gates))
                             for which in ("W", "R", "bW", "bR")))
            for key, found in parts.items()}


def pack(canonicals, layout):
    """Inverse of `unpack`: {(layer, direction): Canonical} -> 1-D buffer."""
    values = []
    for layer, direction, which, gate, shape in _pieces(layout):
        value = np.asarray(getattr(canonicals[(layer, direction)], which)[gate])
        if value.shape != shape:
            raise PlanError(f"cuDNN {which}[{gate}] of layer {layer} direction {direction} has "
                            f"shape {list(value.shape)}, the layout needs {list(shape)}")
        values.append(value.reshape(-1))
    return np.concatenate(values)


def _tf1_kernel(canonical, order):
    """[in + units, G * units]: rows [inputs; state], gate column blocks in `order`."""
    return np.concatenate([np.concatenate([canonical.W[g].T, canonical.R[g].T], axis=0)
                           for g in order], axis=1)


def _summed_bias(canonical, order):
    """bW + bR per gate in `order`, summed in float32 or wider (float16 sums lose the proof)."""
    return np.concatenate([np.add(canonical.bW[g], canonical.bR[g],
                                  dtype=np.promote_types(canonical.bW[g].dtype, np.float32))
                           for g in order])


_LSTM_TF1_ORDER = (0, 2, 1, 3)  # cuDNN i, f, c, o -> TF1 i, j (= c), f, o


def lstm_cell_weights(canonical, forget_bias=1.0):
    """TF1 LSTMCell / BasicLSTMCell (kernel [in + n, 4n], bias [4n]) computing the cuDNN LSTM.

    cuDNN adds no forget bias; TF1 adds `forget_bias` at run time, so it is subtracted from the
    stored forget-gate bias.
    """
    n = canonical.bW[0].shape[0]
    bias = _summed_bias(canonical, _LSTM_TF1_ORDER)
    bias[2 * n:3 * n] -= np.asarray(forget_bias, bias.dtype)
    return _tf1_kernel(canonical, _LSTM_TF1_ORDER), bias


def compatible_lstm_cell_weights(canonical):
    """What TF 1.4-1.15 saved as `cudnn_compatible_lstm_cell/{kernel, bias}` (forget bias 0)."""
    return lstm_cell_weights(canonical, forget_bias=0.0)


def basic_rnn_cell_weights(canonical):
    """TF1 BasicRNNCell (kernel [in + n, n], bias [n]); activation tanh, or relu for rnn_relu."""
    return _tf1_kernel(canonical, (0,)), _summed_bias(canonical, (0,))


def compatible_gru_cell_weights(canonical):
    """What TF 1.3-1.15 saved under `cudnn_compatible_gru_cell/`: {suffix: value}.

    `gates/kernel` [in + n, 2n] (columns r, u), `gates/bias` (bW + bR), and the candidate's
    input and hidden projections kept apart, as the cuDNN GRU equation needs them.
    """
    return {
        "gates/kernel": _tf1_kernel(canonical, (0, 1)),
        "gates/bias": _summed_bias(canonical, (0, 1)),
        "candidate/input_projection/kernel": canonical.W[2].T,
        "candidate/input_projection/bias": canonical.bW[2],
        "candidate/hidden_projection/kernel": canonical.R[2].T,
        "candidate/hidden_projection/bias": canonical.bR[2],
    }


def from_compatible(kind, weights, input_size):
    """Inverse of the `compatible_*_cell_weights`: {suffix: value} -> a Canonical.

    A summed bias comes back as bW with bR zero, which computes the same. LSTM: `kernel`
    [in + n, 4n] (columns i, j, f, o), `bias` [4n] (forget bias 0); GRU: the six tensors of
    `compatible_gru_cell_weights`.
    """
    d = input_size
    if kind == "lstm":
        kernel, bias = np.asarray(weights["kernel"]), np.asarray(weights["bias"])
        n = bias.shape[0] // 4
        blocks = [slice(g * n, (g + 1) * n) for g in _LSTM_TF1_ORDER]  # cuDNN gate -> columns
        return Canonical(tuple(kernel[:d, s].T for s in blocks),
                         tuple(kernel[d:, s].T for s in blocks),
                         tuple(bias[s] for s in blocks),
                         tuple(np.zeros_like(bias[s]) for s in blocks))
    gates, gates_bias = np.asarray(weights["gates/kernel"]), np.asarray(weights["gates/bias"])
    n = gates_bias.shape[0] // 2
    r, u = slice(0, n), slice(n, 2 * n)
    hidden_bias = np.asarray(weights["candidate/hidden_projection/bias"])
    return Canonical(
        (gates[:d, r].T, gates[:d, u].T,
         np.asarray(weights["candidate/input_projection/kernel"]).T),
        (gates[d:, r].T, gates[d:, u].T,
         np.asarray(weights["candidate/hidden_projection/kernel"]).T),
        (gates_bias[r], gates_bias[u], np.asarray(weights["candidate/input_projection/bias"])),
        (np.zeros_like(gates_bias[r]), np.zeros_like(gates_bias[u]), hidden_bias))


def keras_weights(canonical, kind):
    """[kernel, recurrent_kernel, bias] of the Keras layer computing this cuDNN (layer, direction).

    lstm -> `LSTM` (gates i, f, c, o; bias bW + bR); gru -> `GRU(reset_after=True)` (gates
    z = u, r, h; bias [2, 3n]: input row, recurrent row); rnn_* -> `SimpleRNN`.
    """
    order = {"lstm": (0, 1, 2, 3), "gru": (1, 0, 2)}.get(kind, (0,))
    kernel = np.concatenate([canonical.W[g].T for g in order], axis=1)
    recurrent = np.concatenate([canonical.R[g].T for g in order], axis=1)
    if kind == "gru":
        bias = np.stack([np.concatenate([canonical.bW[g] for g in order]),
                         np.concatenate([canonical.bR[g] for g in order])])
    else:
        bias = _summed_bias(canonical, order)
    return [kernel, recurrent, bias]


# ---------------------------------------------------------------- reference equations (float64)


def _sigmoid(x):
    with np.errstate(over="ignore"):  # exp(-x) = inf for x << 0 gives exactly 0, as it should
        return 1.0 / (1.0 + np.exp(-x))


def step(kind, canonical, x, state):
    """One cuDNN step of one (layer, direction): x [batch, in] -> (output, new state).

    `state` is h [batch, n], or (c, h) for lstm.
    """
    def linear(g, h):
        return (x @ canonical.W[g].T + canonical.bW[g], h @ canonical.R[g].T + canonical.bR[g])

    if kind == "lstm":
        c, h = state
        (xi, hi), (xf, hf), (xc, hc), (xo, ho) = (linear(g, h) for g in range(4))
        new_c = _sigmoid(xf + hf) * c + _sigmoid(xi + hi) * np.tanh(xc + hc)
        new_h = _sigmoid(xo + ho) * np.tanh(new_c)
        return new_h, (new_c, new_h)
    if kind == "gru":
        h = state
        (xr, hr), (xu, hu), (xh, hh) = (linear(g, h) for g in range(3))
        r, u = _sigmoid(xr + hr), _sigmoid(xu + hu)
        new_h = u * h + (1.0 - u) * np.tanh(xh + r * hh)
        return new_h, new_h
    xh, hh = linear(0, state)
    new_h = np.tanh(xh + hh) if kind == "rnn_tanh" else np.maximum(xh + hh, 0.0)
    return new_h, new_h


def run(canonicals, layout, inputs, lengths):
    """The cuDNN stack on `inputs` [batch, time, input_size] with `lengths` [batch] (float64).

    -> outputs [batch, time, units * directions] of the top layer, zero past each length; the
    backward direction reads each sequence's valid steps in reverse.
    """
    x = np.asarray(inputs, np.float64)
    lengths = np.asarray(lengths)
    batch, time = x.shape[:2]
    n = layout.units
    for layer in range(layout.layers):
        outputs = np.zeros((batch, time, n * layout.directions))
        for direction in range(layout.directions):
            weights = canonicals[(layer, direction)]
            weights = Canonical(*(tuple(np.asarray(v, np.float64) for v in values)
                                  for values in dataclasses.astuple(weights)))
            for b in range(batch):
                zeros = np.zeros((1, n))
                state = (zeros, zeros) if layout.kind == "lstm" else zeros
                steps = range(int(lengths[b]))
                for t in (reversed(steps) if direction else steps):
                    out, state = step(layout.kind, weights, x[b:b + 1, t], state)
                    outputs[b, t, direction * n:(direction + 1) * n] = out[0]
        x = outputs
    return x
