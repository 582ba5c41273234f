"""The RNN cells of older TensorFlow versions, rebuilt under their variable names.

Generations: `"tf0"` (TF <= 0.12), `"tf1.0"` (TF 1.0 - 1.1), `"today"`, `"shared"`, and the
contrib block cells `"block-tf0"` (TF 0.11 - 0.12 LSTMBlockCell, GRUBlockCell) and
`"block-tf1.4"` (GRUBlockCell in TF 1.x scopes). The old cells are small objects that follow
the TF 0.12 `RNNCell` protocol (a plain object whose `__call__` opens its scope and calls
`tf1.get_variable`) and compute the same equations as today's cells; see docs/naming.md
and docs/keras.md for the names and shapes. Used by `legacy_share.testing.legacy_graphs`.
"""

import contextlib
import dataclasses
import re

from legacy_share import cell_kinds
from legacy_share import names
from legacy_share._tf import rnn_cell, tf, tf1

__all__ = ["GENERATIONS", "OLDTABLES", "CELL_KINDS", "FORGET_BIAS", "multi_cell", "run_rnn",
           "cell_pieces", "piece_shape"]

GENERATIONS = ("tf0", "tf1.0", "today", "shared", "block-tf0", "block-tf1.4")
OLDTABLES = ("tf0", "tf1.0", "block-tf0", "block-tf1.4")
CELL_KINDS = tuple(kind.key for kind in cell_kinds.KINDS)  # the builders' `cell=` values

FORGET_BIAS = 1.0


@dataclasses.dataclass(frozen=True)
class _Generation:
    rnn: str
    bidirectional: str
    fw: str
    bw: str
    multi: str
    layer: str                     # format with the layer index
    cells: dict                    # cell kind -> (cell scope, {today's piece: this generation's piece})


_TODAY_PIECES = {kind.key: (kind.scope, {p: p for p in kind.variables})
                 for kind in cell_kinds.KINDS}
# The older generations' names below are written out by hand from docs/naming.md, apart from
# the migrator's tables (legacy_share.cell_kinds), so that a wrong rename there fails a test.

TABLES = {
    "tf0": _Generation(
        rnn="RNN", bidirectional="BiRNN", fw="FW", bw="BW", multi="MultiRNNCell", layer="Cell{}",
        cells={
            "gru": ("GRUCell", {
                "gates/kernel": "Gates/Linear/Matrix",
                "gates/bias": "Gates/Linear/Bias",
                "candidate/kernel": "Candidate/Linear/Matrix",
                "candidate/bias": "Candidate/Linear/Bias",
            }),
            "basic_lstm": ("BasicLSTMCell", {"kernel": "Linear/Matrix", "bias": "Linear/Bias"}),
            "lstm": ("LSTMCell", {
                "kernel": "W_0", "bias": "B",
                "w_f_diag": "W_F_diag", "w_i_diag": "W_I_diag", "w_o_diag": "W_O_diag",
                "projection/kernel": "W_P_0",
            }),
            "basic_rnn": ("BasicRNNCell", {"kernel": "Linear/Matrix", "bias": "Linear/Bias"}),
        }),
    "tf1.0": _Generation(
        rnn="rnn", bidirectional="bidirectional_rnn", fw="fw", bw="bw", multi="multi_rnn_cell",
        layer="cell_{}",
        cells={
            "gru": ("gru_cell", {
                "gates/kernel": "gates/weights",
                "gates/bias": "gates/biases",
                "candidate/kernel": "candidate/weights",
                "candidate/bias": "candidate/biases",
            }),
            "basic_lstm": ("basic_lstm_cell", {"kernel": "weights", "bias": "biases"}),
            "lstm": ("lstm_cell", {
                "kernel": "weights", "bias": "biases",
                "w_f_diag": "w_f_diag", "w_i_diag": "w_i_diag", "w_o_diag": "w_o_diag",
                "projection/kernel": "projection/weights",
            }),
            "basic_rnn": ("basic_rnn_cell", {"kernel": "weights", "bias": "biases"}),
        }),
    "today": _Generation(
        rnn=names.RNN_SCOPE, bidirectional=names.BIDIRECTIONAL_SCOPE, fw=names.FORWARD_SCOPE,
        bw=names.BACKWARD_SCOPE, multi=names.MULTI_RNN_CELL_SCOPE, layer=names.LAYER_SCOPE_FORMAT,
        cells=_TODAY_PIECES),
}
TABLES["shared"] = TABLES["today"]
# The contrib block cells (docs/keras.md, "Contrib block cells"): TF 0.11 - 0.12
# `LSTMBlockCell/{W, b, wci, wcf, wco}` and `GRUBlockCell/{w_ru, b_ru, w_c, b_c}` in TF 0.x
# scopes; TF 1.4 `GRUBlockCell` in today's scopes (its LSTMBlockCell already had today's names).
_BLOCK_CELLS = {
    "gru": ("GRUBlockCell", {
        "gates/kernel": "w_ru", "gates/bias": "b_ru", "candidate/kernel": "w_c",
        "candidate/bias": "b_c"}),
    "lstm": ("LSTMBlockCell", {
        "kernel": "W", "bias": "b", "w_f_diag": "wcf", "w_i_diag": "wci", "w_o_diag": "wco"}),
}
TABLES["block-tf0"] = dataclasses.replace(TABLES["tf0"], cells=_BLOCK_CELLS)
TABLES["block-tf1.4"] = dataclasses.replace(
    TABLES["today"], cells=dict(_TODAY_PIECES, gru=_BLOCK_CELLS["gru"]))

LAYER_PATTERNS = {
    "tf0": re.compile(r"^Cell(\d+)$"),
    "tf1.0": re.compile(r"^cell_(\d+)$"),
    "today": re.compile(r"^cell_(\d+)$"),
    "shared": re.compile(r"^cell_(\d+)$"),
    "block-tf0": re.compile(r"^Cell(\d+)$"),
    "block-tf1.4": re.compile(r"^cell_(\d+)$"),
}


def cell_pieces(kind, use_peepholes, num_proj=None):
    """Today's variable pieces of one cell of `kind`, in creation order."""
    record = cell_kinds.by_key(kind)
    wanted = set((names.LSTM_PEEPHOLES if use_peepholes else ())
                 + ((record.projection,) if num_proj else ()))
    return tuple(p for p in record.variables if p not in record.optional or p in wanted)


def piece_shape(kind, piece, depth, units, num_proj=None):
    """The shape of today's piece `piece` of a cell of `kind` (legacy_share.cell_kinds)."""
    return cell_kinds.by_key(kind).shape(piece, depth, units, num_proj or None)


# ---------------------------------------------------------------------------------------------
# Cells of TF <= 1.1, as plain objects with the TF 0.12 RNNCell protocol.


@contextlib.contextmanager
def _scopes(parts):
    with contextlib.ExitStack() as stack:
        for part in parts:
            stack.enter_context(tf1.variable_scope(part))
        yield


def _old_variable(path, shape, initializer=None):
    """`tf1.get_variable` for `a/b/name`, opening scopes `a`, `b` like TF 0.12's `_linear` did."""
    *scopes, name = path.split("/")
    with _scopes(scopes):
        return tf1.get_variable(name, shape, tf.float32, initializer=initializer)


class _OldCell:
    """GRUCell, BasicLSTMCell or LSTMCell of generation "tf0" or "tf1.0": same equations, old names."""

    def __init__(self, kind, num_units, generation, use_peepholes=False, num_proj=None):
        self._kind = kind
        self._units = num_units
        self._scope, self._pieces = TABLES[generation].cells[kind]
        self._peepholes = use_peepholes
        self._proj = num_proj

    @property
    def state_size(self):
        if not cell_kinds.by_key(self._kind).state_pair:
            return self._units
        return rnn_cell.LSTMStateTuple(self._units, self._proj or self._units)

    @property
    def output_size(self):
        return self._proj or self._units

    def zero_state(self, batch_size, dtype):
        zeros = tf.zeros(tf.stack([batch_size, self._units]), dtype)
        if not cell_kinds.by_key(self._kind).state_pair:
            return zeros
        return rnn_cell.LSTMStateTuple(zeros, tf.zeros(tf.stack([batch_size, self.output_size]),
                                                       dtype))

    def __call__(self, inputs, state, scope=None):
        with tf1.variable_scope(scope or self._scope):
            if self._kind == "gru":
                return self._gru(inputs, state)
            if self._kind == "basic_rnn":
                kernel = self._variable("kernel", inputs.shape[-1])
                bias = self._variable("bias", inputs.shape[-1], tf1.zeros_initializer())
                new_h = tf.tanh(tf.matmul(tf.concat([inputs, state], 1), kernel) + bias)
                return new_h, new_h
            return self._lstm(inputs, state)

    def _variable(self, piece, depth, initializer=None):
        shape = piece_shape(self._kind, piece, depth, self._units, self._proj)
        return _old_variable(self._pieces[piece], shape, initializer)

    def _gru(self, inputs, h):
        depth = inputs.shape[-1]
        gates_kernel = self._variable("gates/kernel", depth)
        gates_bias = self._variable("gates/bias", depth, tf1.constant_initializer(1.0))
        gates = tf.sigmoid(tf.matmul(tf.concat([inputs, h], 1), gates_kernel) + gates_bias)
        r, u = tf.split(gates, 2, axis=1)
        candidate_kernel = self._variable("candidate/kernel", depth)
        candidate_bias = self._variable("candidate/bias", depth, tf1.zeros_initializer())
        c = tf.tanh(tf.matmul(tf.concat([inputs, r * h], 1), candidate_kernel) + candidate_bias)
        new_h = u * h + (1.0 - u) * c
        return new_h, new_h

    def _lstm(self, inputs, state):
        c, h = state
        depth = inputs.shape[-1]
        kernel = self._variable("kernel", depth)
        bias = self._variable("bias", depth, tf1.zeros_initializer())
        i, j, f, o = tf.split(tf.matmul(tf.concat([inputs, h], 1), kernel) + bias, 4, axis=1)
        if self._kind == "lstm" and self._peepholes:
            w_f, w_i, w_o = (self._variable(p, depth) for p in ("w_f_diag", "w_i_diag", "w_o_diag"))
            new_c = tf.sigmoid(f + FORGET_BIAS + w_f * c) * c + tf.sigmoid(i + w_i * c) * tf.tanh(j)
            new_h = tf.sigmoid(o + w_o * new_c) * tf.tanh(new_c)
        else:
            new_c = c * tf.sigmoid(f + FORGET_BIAS) + tf.sigmoid(i) * tf.tanh(j)
            new_h = tf.tanh(new_c) * tf.sigmoid(o)
        if self._proj:
            new_h = tf.matmul(new_h, self._variable("projection/kernel", depth))
        return new_h, rnn_cell.LSTMStateTuple(new_c, new_h)


class _OldMultiCell:
    """MultiRNNCell of TF <= 1.0: layer i in scope `MultiRNNCell/Cell{i}` (or `multi_rnn_cell/cell_{i}`)."""

    def __init__(self, cells, generation):
        self._cells = list(cells)
        self._generation = TABLES[generation]

    @property
    def state_size(self):
        return tuple(cell.state_size for cell in self._cells)

    @property
    def output_size(self):
        return self._cells[-1].output_size

    def zero_state(self, batch_size, dtype):
        return tuple(cell.zero_state(batch_size, dtype) for cell in self._cells)

    def __call__(self, inputs, state, scope=None):
        with tf1.variable_scope(scope or self._generation.multi):
            layer_input, new_states = inputs, []
            for i, cell in enumerate(self._cells):
                with tf1.variable_scope(self._generation.layer.format(i)):
                    layer_input, new_state = cell(layer_input, state[i])
                new_states.append(new_state)
        return layer_input, tuple(new_states)


def _cell(kind, num_units, use_peepholes, num_proj, shared):
    """Today's cell of `kind` (a shared cell when `shared`)."""
    record = cell_kinds.by_key(kind)
    cls = record.shared_cell_class() if shared else record.tf1_cell_class()
    options = {}
    if "forget_bias" in record.settings:
        options["forget_bias"] = FORGET_BIAS
    if record is cell_kinds.LSTM:
        options.update(use_peepholes=use_peepholes, num_proj=num_proj)
    return cls(num_units, **options)


def multi_cell(generation, kind, layers, num_units, use_peepholes, num_proj=None,
                share_from=0):
    if generation == "today":
        return rnn_cell.MultiRNNCell(
            [_cell(kind, num_units, use_peepholes, num_proj, False) for _ in range(layers)])
    if generation == "shared":
        own = [_cell(kind, num_units, use_peepholes, num_proj, False) for _ in range(share_from)]
        shared = _cell(kind, num_units, use_peepholes, num_proj, True)
        return rnn_cell.MultiRNNCell(own + [shared] * (layers - share_from))
    return _OldMultiCell(
        [_OldCell(kind, num_units, generation, use_peepholes, num_proj) for _ in range(layers)],
        generation)


def run_rnn(generation, make_cell, inputs, bidirectional, initial_state=None,
             final_state=False):
    """Outputs [batch, time, units] (bidirectional: [fw; bw] on the last axis); with
    `final_state` (one direction only), (outputs, final state)."""
    gen = TABLES[generation]
    if not bidirectional:
        scope = gen.rnn if generation in OLDTABLES else None
        outputs, state = tf1.nn.dynamic_rnn(make_cell(), inputs, initial_state=initial_state,
                                            dtype=tf.float32, scope=scope)
        return (outputs, state) if final_state else outputs
    if generation not in ("tf0", "block-tf0"):
        (fw, bw), _ = tf1.nn.bidirectional_dynamic_rnn(
            make_cell(), make_cell(), inputs, dtype=tf.float32)
        return tf.concat([fw, bw], axis=2)
    # TF 0.12's bidirectional_dynamic_rnn: `BiRNN/FW`, `BiRNN/BW`, the backward pass on reversed time.
    with tf1.variable_scope(gen.bidirectional):
        with tf1.variable_scope(gen.fw) as fw_scope:
            fw, _ = tf1.nn.dynamic_rnn(make_cell(), inputs, dtype=tf.float32, scope=fw_scope)
        with tf1.variable_scope(gen.bw) as bw_scope:
            bw_reversed, _ = tf1.nn.dynamic_rnn(
                make_cell(), tf.reverse(inputs, axis=[1]), dtype=tf.float32, scope=bw_scope)
    return tf.concat([fw, tf.reverse(bw_reversed, axis=[1])], axis=2)
