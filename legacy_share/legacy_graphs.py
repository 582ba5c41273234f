"""Real TF1 RNN graphs and checkpoints under the variable names of older TensorFlow versions.

For tests, the demo and benchmarks. Every checkpoint comes from a real graph trained for a few
steps of Adam in its own `tf1.Graph` and `Session` and saved by a real `tf1.train.Saver`:

- `"tf0"` (TF <= 0.12): `RNN/MultiRNNCell/Cell0/GRUCell/Gates/Linear/Matrix`, `BiRNN/FW/...`;
- `"tf1.0"` (TF 1.0 - 1.1): `rnn/multi_rnn_cell/cell_0/gru_cell/gates/weights`, ...;
- `"today"`: the real `tf.compat.v1.nn.rnn_cell` classes, one cell object per layer;
- `"shared"`: `MultiRNNCell([SharedGRUCell(n)] * k)`, one set of variables named like layer 0;
  with `share_from=K`, `MultiRNNCell([GRUCell(n)] * K + [SharedGRUCell(n)] * (k - K))`.

Models: one stack (or a bidirectional pair) over an embedding, or a seq2seq shape (an encoder
stack and a decoder stack, each over its own embedding, the decoder starting from the
encoder's final state). Layer 0's input depth is the embedding width, which may differ from
`num_units`: then layer 0 cannot share its kernels with the layers above.

The old generations are built with small cells that follow the TF 0.12 `RNNCell` protocol (a
plain object whose `__call__` opens its scope and calls `tf1.get_variable`) and compute the
same equations as today's cells; see ../shared/NAMING.md for the names and shapes.
"""

import contextlib
import dataclasses
import os
import re
import shutil

import numpy as np

from legacy_share import names
from legacy_share._tf import rnn_cell, tf, tf1
from legacy_share.cells import (SharedBasicLSTMCell, SharedBasicRNNCell, SharedGRUCell,
                                SharedLSTMCell)
from legacy_share.errors import Error

__all__ = [
    "GENERATIONS",
    "CELLS",
    "LegacyStack",
    "StackGraph",
    "BigCheckpoint",
    "save_legacy_stack",
    "save_word_clones",
    "save_big_gru_checkpoint",
    "build_stack",
    "build_word_clones",
    "stack_variable_names",
    "layer_of",
]

GENERATIONS = ("tf0", "tf1.0", "today", "shared", "block-tf0", "block-tf1.4")
_OLD = ("tf0", "tf1.0", "block-tf0", "block-tf1.4")
CELLS = ("gru", "basic_lstm", "lstm", "basic_rnn")

BATCH = 3
TIME = 4
VOCAB = 11
CHARS = 4
LEARNING_RATE = 0.05
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


_TODAY_PIECES = {
    "gru": (names.GRU_SCOPE, {p: p for p in names.CELL_VARIABLES[names.GRU_SCOPE]}),
    "basic_lstm": (names.BASIC_LSTM_SCOPE, {p: p for p in names.CELL_VARIABLES[names.BASIC_LSTM_SCOPE]}),
    "lstm": (names.LSTM_SCOPE, {p: p for p in names.CELL_VARIABLES[names.LSTM_SCOPE]}),
    "basic_rnn": (names.BASIC_RNN_SCOPE,
                  {p: p for p in names.CELL_VARIABLES[names.BASIC_RNN_SCOPE]}),
}

_GENERATIONS = {
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
_GENERATIONS["shared"] = _GENERATIONS["today"]
# The contrib block cells (../shared/KERAS.md, "Cells that no longer exist"): TF 0.11 - 0.12
# `LSTMBlockCell/{W, b, wci, wcf, wco}` and `GRUBlockCell/{w_ru, b_ru, w_c, b_c}` in TF 0.x
# scopes; TF 1.4 `GRUBlockCell` in today's scopes (its LSTMBlockCell already had today's names).
_BLOCK_CELLS = {
    "gru": ("GRUBlockCell", {
        "gates/kernel": "w_ru", "gates/bias": "b_ru", "candidate/kernel": "w_c",
        "candidate/bias": "b_c"}),
    "lstm": ("LSTMBlockCell", {
        "kernel": "W", "bias": "b", "w_f_diag": "wcf", "w_i_diag": "wci", "w_o_diag": "wco"}),
}
_GENERATIONS["block-tf0"] = dataclasses.replace(_GENERATIONS["tf0"], cells=_BLOCK_CELLS)
_GENERATIONS["block-tf1.4"] = dataclasses.replace(
    _GENERATIONS["today"], cells=dict(_TODAY_PIECES, gru=_BLOCK_CELLS["gru"]))

_LAYER_PATTERNS = {
    "tf0": re.compile(r"^Cell(\d+)$"),
    "tf1.0": re.compile(r"^cell_(\d+)$"),
    "today": re.compile(r"^cell_(\d+)$"),
    "shared": re.compile(r"^cell_(\d+)$"),
    "block-tf0": re.compile(r"^Cell(\d+)$"),
    "block-tf1.4": re.compile(r"^cell_(\d+)$"),
}
_WORD_PATTERN = re.compile(r"^word_(\d+)$")


def _cell_pieces(kind, use_peepholes, num_proj=None):
    """Today's variable pieces of one cell of `kind`, in creation order."""
    if kind == "lstm":
        return (("kernel", "bias") + (names.LSTM_PEEPHOLES if use_peepholes else ())
                + (("projection/kernel",) if num_proj else ()))
    return _TODAY_PIECES[kind][1].keys()


def _piece_shape(kind, piece, depth, units, num_proj=None):
    rows = depth + (num_proj or units)
    gates = {"gru": 2, "basic_lstm": 4, "lstm": 4, "basic_rnn": 1}[kind]
    if piece == "projection/kernel":
        return (units, num_proj)
    if piece.endswith("kernel"):
        return (rows, units if piece.startswith("candidate") else gates * units)
    if piece.endswith("bias"):
        return (units if piece.startswith("candidate") else gates * units,)
    return (units,)  # peephole


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
        self._scope, self._pieces = _GENERATIONS[generation].cells[kind]
        self._peepholes = use_peepholes
        self._proj = num_proj

    @property
    def state_size(self):
        if self._kind in ("gru", "basic_rnn"):
            return self._units
        return rnn_cell.LSTMStateTuple(self._units, self._proj or self._units)

    @property
    def output_size(self):
        return self._proj or self._units

    def zero_state(self, batch_size, dtype):
        zeros = tf.zeros(tf.stack([batch_size, self._units]), dtype)
        if self._kind in ("gru", "basic_rnn"):
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
        shape = _piece_shape(self._kind, piece, depth, self._units, self._proj)
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
        self._generation = _GENERATIONS[generation]

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
    classes = {"gru": (rnn_cell.GRUCell, SharedGRUCell),
               "basic_lstm": (rnn_cell.BasicLSTMCell, SharedBasicLSTMCell),
               "lstm": (rnn_cell.LSTMCell, SharedLSTMCell),
               "basic_rnn": (rnn_cell.BasicRNNCell, SharedBasicRNNCell)}[kind]
    cls = classes[1] if shared else classes[0]
    if kind == "basic_lstm":
        return cls(num_units, forget_bias=FORGET_BIAS)
    if kind == "lstm":
        return cls(num_units, use_peepholes=use_peepholes, num_proj=num_proj,
                   forget_bias=FORGET_BIAS)
    return cls(num_units)


def _multi_cell(generation, kind, layers, num_units, use_peepholes, num_proj=None,
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


def _run_rnn(generation, make_cell, inputs, bidirectional, initial_state=None,
             final_state=False):
    """Outputs [batch, time, units] (bidirectional: [fw; bw] on the last axis); with
    `final_state` (one direction only), (outputs, final state)."""
    gen = _GENERATIONS[generation]
    if not bidirectional:
        scope = gen.rnn if generation in _OLD else None
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


# ---------------------------------------------------------------------------------------------
# Whole models: inputs, the RNN, extra tensors, Adam.


@dataclasses.dataclass
class StackGraph:
    """Tensors of a model built by `build_stack` / `build_word_clones` in the default graph.

    `inputs`: placeholder (int32 ids [batch, time] with the embedding, else float32
    [batch, time, depth]); `rnn_inputs`: what enters the RNN [batch, time, depth];
    `outputs`: the RNN's outputs; `target`: placeholder of the regression target;
    `loss`, `train_op` (None without the optimizer); `feed(seed)`: a feed_dict of random data.
    """

    inputs: object
    rnn_inputs: object
    outputs: object
    target: object
    loss: object
    train_op: object
    input_values: object = None
    target_shape: tuple = ()

    def feed(self, seed=0):
        """A feed_dict for `inputs` and `target` with random data drawn from `seed`."""
        rng = np.random.RandomState(seed)
        if self.inputs.dtype == tf.int32:
            data = rng.randint(0, VOCAB, size=self.inputs.shape.as_list()).astype(np.int32)
        else:
            data = rng.uniform(-1.0, 1.0, size=self.inputs.shape.as_list()).astype(np.float32)
        target = rng.uniform(-1.0, 1.0, size=self.target_shape).astype(np.float32)
        return {self.inputs: data, self.target: target}


def _finish_model(inputs, rnn_inputs, outputs, extra_tensors, optimizer):
    out_depth = outputs.shape[-1]
    if extra_tensors:
        softmax_w = tf1.get_variable("softmax_w", [out_depth, VOCAB], tf.float32)
        softmax_b = tf1.get_variable("softmax_b", [VOCAB], tf.float32, tf1.zeros_initializer())
        prediction = tf.tensordot(outputs, softmax_w, axes=1) + softmax_b
    else:
        prediction = outputs
    target_shape = tuple(prediction.shape.as_list())
    target = tf1.placeholder(tf.float32, target_shape, name="target")
    loss = tf.reduce_mean(tf.square(prediction - target))
    train_op = None
    if optimizer:
        global_step = tf1.train.get_or_create_global_step()
        train_op = tf1.train.AdamOptimizer(LEARNING_RATE).minimize(loss, global_step=global_step)
    return StackGraph(inputs, rnn_inputs, outputs, target, loss, train_op, target_shape=target_shape)


def _model_inputs(depth, extra_tensors, shape):
    if extra_tensors:
        ids = tf1.placeholder(tf.int32, shape, name="ids")
        embedding = tf1.get_variable("embedding", [VOCAB, depth], tf.float32)
        return ids, tf.nn.embedding_lookup(embedding, ids)
    inputs = tf1.placeholder(tf.float32, shape + (depth,), name="inputs")
    return inputs, inputs


def build_stack(cell="gru", layers=2, num_units=8, input_depth=None, generation="shared",
                bidirectional=False, extra_tensors=True, use_peepholes=False, optimizer=True,
                project_inputs=False, num_proj=None, share_from=0, seq2seq=False):
    """Builds an RNN stack model in the default graph and returns its `StackGraph`.

    `generation` "tf0" / "tf1.0" build the old names; "today" one real cell per layer;
    "shared" `MultiRNNCell([SharedGRUCell(n)] * layers)`, or with `share_from=K` K real cells
    then one shared cell for the other layers. `cell` "lstm" takes `use_peepholes` and
    `num_proj`. `seq2seq`: an `encoder` stack over `embedding` and a `decoder` stack over
    `decoder_embedding` (same ids, same width) starting from the encoder's final state; the
    outputs are the decoder's. With `extra_tensors` the input is
    looked up in `embedding` [11, input_depth] and the outputs are projected by `softmax_w`
    [out, 11] and `softmax_b` [11]. With `optimizer`, Adam on a squared error and `global_step`.
    Inputs are [3, 4] ids (or [3, 4, input_depth] floats). `project_inputs` multiplies the
    inputs by `input_projection` [input_depth, num_units] (no bias) before the RNN, so a shared
    stack can take inputs of another depth.
    """
    _check(cell, CELLS, "cell")
    _check(generation, GENERATIONS, "generation")
    depth = num_units if input_depth is None else input_depth
    inputs, rnn_inputs = _model_inputs(depth, extra_tensors, (BATCH, TIME))
    if project_inputs:
        projection = tf1.get_variable("input_projection", [depth, num_units], tf.float32)
        rnn_inputs = tf.tensordot(rnn_inputs, projection, axes=1)

    def make_cell():
        return _multi_cell(generation, cell, layers, num_units, use_peepholes, num_proj,
                           share_from)

    if not seq2seq:
        outputs = _run_rnn(generation, make_cell, rnn_inputs, bidirectional)
        return _finish_model(inputs, rnn_inputs, outputs, extra_tensors, optimizer)
    with tf1.variable_scope("encoder"):
        _, state = _run_rnn(generation, make_cell, rnn_inputs, False, final_state=True)
    with tf1.variable_scope("decoder"):
        embedding = tf1.get_variable("decoder_embedding", [VOCAB, depth], tf.float32)
        decoder_inputs = tf.nn.embedding_lookup(embedding, inputs)
        outputs = _run_rnn(generation, make_cell, decoder_inputs, False, initial_state=state)
    return _finish_model(inputs, rnn_inputs, outputs, extra_tensors, optimizer)


def build_word_clones(words=3, num_units=6, input_depth=None, shared=False, optimizer=True):
    """A character GRU cloned per word: scopes `word_0`, `word_1`, ... each run `dynamic_rnn`.

    Unshared, each word gets its own real GRUCell (`word_1/rnn/gru_cell/gates/kernel`); with
    `shared`, one SharedGRUCell for all words (variables `word_0/rnn/gru_cell/...` only).
    Inputs float32 [3, words, 4 chars, depth]; outputs the final states [3, words, num_units].
    """
    depth = num_units if input_depth is None else input_depth
    inputs = tf1.placeholder(tf.float32, (BATCH, words, CHARS, depth), name="chars")
    shared_cell = SharedGRUCell(num_units) if shared else None
    finals = []
    for w in range(words):
        with tf1.variable_scope(f"word_{w}"):
            cell = shared_cell or rnn_cell.GRUCell(num_units)
            _, final = tf1.nn.dynamic_rnn(cell, inputs[:, w], dtype=tf.float32)
        finals.append(final)
    outputs = tf.stack(finals, axis=1)
    return _finish_model(inputs, inputs, outputs, False, optimizer)


# ---------------------------------------------------------------------------------------------
# Saving.


@dataclasses.dataclass(frozen=True)
class LegacyStack:
    """What `save_legacy_stack` / `save_word_clones` wrote.

    `prefix`: the checkpoint prefix (V2) or file (V1) to pass to readers; `files`: every file
    written; `values`: every saved tensor, name -> numpy array (read back from the checkpoint);
    `renamed`: every saved name -> today's unshared name (identity for globals and extras);
    `layer_names[i]`: saved names (variables and slots, all directions) of layer / word `i`;
    `feed`: the training data, {"inputs": ..., "target": ...}.
    """

    prefix: str
    files: tuple
    values: dict
    renamed: dict
    layer_names: tuple
    feed: dict
    cell: str = "gru"
    generation: str = "today"
    layers: int = 2
    num_units: int = 8
    input_depth: int = 8
    bidirectional: bool = False
    write_version: str = "V2"
    tie_layers: bool = False
    use_peepholes: bool = False
    extra_tensors: bool = True
    num_proj: object = None
    seq2seq: bool = False


def save_legacy_stack(directory, cell="gru", layers=2, num_units=8, input_depth=None,
                      generation="tf0", write_version="V1", bidirectional=False, train_steps=3,
                      seed=0, extra_tensors=True, tie_layers=False, use_peepholes=False,
                      num_proj=None, seq2seq=False):
    """Builds, trains and saves an RNN stack under `generation`'s names; returns a `LegacyStack`.

    cell: "gru", "basic_lstm", "lstm" (`use_peepholes`, `num_proj`) or "basic_rnn"; `seq2seq`:
    an encoder and a decoder stack (see `build_stack`); generation: "tf0",
    "tf1.0", "today" (one real cell per layer) or "shared". Trains `train_steps` steps of Adam
    on a random regression target (so `<var>/Adam`, `<var>/Adam_1`, `beta1_power`,
    `beta2_power` and `global_step` are saved and the layers differ). `extra_tensors` adds
    `embedding`, `softmax_w`, `softmax_b`. `tie_layers` copies layer 0's variables and slots
    onto every other layer (per direction) before saving, so the layers are equal. Saves
    `directory/model.ckpt-<train_steps>` with `tf1.train.Saver(write_version=V1 or V2)`.
    """
    _check(cell, CELLS, "cell")
    _check(generation, GENERATIONS, "generation")
    _check(write_version, ("V1", "V2"), "write_version")
    depth = num_units if input_depth is None else input_depth
    if tie_layers and depth != num_units:
        raise ValueError(f"tie_layers needs input_depth == num_units ({num_units}), got "
                         f"{depth}: layer 0's kernels have another shape than the other layers'")

    def build():
        return build_stack(cell, layers, num_units, depth, generation, bidirectional,
                           extra_tensors, use_peepholes, num_proj=num_proj, seq2seq=seq2seq)

    prefix, files, values, feed = _train_and_save(
        directory, build, write_version, train_steps, seed,
        _LAYER_PATTERNS[generation] if tie_layers else None)
    renamed = {name: _today_name(name, generation, cell) for name in values}
    return LegacyStack(
        prefix=prefix, files=files, values=values, renamed=renamed,
        layer_names=_group_names(values, _LAYER_PATTERNS[generation], layers), feed=feed,
        cell=cell, generation=generation, layers=layers, num_units=num_units, input_depth=depth,
        bidirectional=bidirectional, write_version=write_version, tie_layers=tie_layers,
        use_peepholes=use_peepholes, extra_tensors=extra_tensors, num_proj=num_proj,
        seq2seq=seq2seq)


def save_word_clones(directory, words=3, num_units=6, input_depth=None, write_version="V2",
                     train_steps=3, seed=0, tie_words=False):
    """Saves a character GRU cloned per word (`word_{i}/rnn/gru_cell/...`); returns a `LegacyStack`.

    `layer_names[i]` are word i's names; `tie_words` copies word 0's values onto every word.
    """
    depth = num_units if input_depth is None else input_depth
    prefix, files, values, feed = _train_and_save(
        directory, lambda: build_word_clones(words, num_units, depth), write_version,
        train_steps, seed, _WORD_PATTERN if tie_words else None)
    return LegacyStack(
        prefix=prefix, files=files, values=values, renamed={n: n for n in values},
        layer_names=_group_names(values, _WORD_PATTERN, words), feed=feed, cell="gru",
        generation="today", layers=words, num_units=num_units, input_depth=depth,
        write_version=write_version, tie_layers=tie_words)


def _train_and_save(directory, build, write_version, train_steps, seed, tie_pattern):
    os.makedirs(directory, exist_ok=True)
    version = {"V1": tf1.train.SaverDef.V1, "V2": tf1.train.SaverDef.V2}[write_version]
    config = tf1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    with tf1.Graph().as_default() as graph:
        tf1.set_random_seed(seed)
        model = build()
        ties = _tie_ops(tf1.global_variables(), tie_pattern) if tie_pattern else None
        saver = tf1.train.Saver(write_version=version)
        with tf1.Session(graph=graph, config=config) as session:
            session.run(tf1.global_variables_initializer())
            feed = model.feed(seed)
            for _ in range(train_steps):
                session.run(model.train_op, feed)
            if ties is not None:
                session.run(ties)
            prefix = saver.save(session, os.path.join(directory, "model.ckpt"),
                                global_step=train_steps)
    values = _read_all(prefix)
    files = tuple(sorted(os.path.join(directory, f) for f in os.listdir(directory)))
    return prefix, files, values, {"inputs": feed[model.inputs], "target": feed[model.target]}


def _read_all(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def layer_of(name, pattern):
    """(layer index, `name` with that index replaced by 0) of the first component `pattern` matches, or (None, name)."""
    parts = name.split("/")
    for k, part in enumerate(parts):
        match = pattern.match(part)
        if match:
            parts[k] = part[:match.start(1)] + "0" + part[match.end(1):]
            return int(match.group(1)), "/".join(parts)
    return None, name


def _tie_ops(variables, pattern):
    by_name = {v.op.name: v for v in variables}
    ops = []
    for name, variable in sorted(by_name.items()):
        layer, first = layer_of(name, pattern)
        if layer:
            ops.append(variable.assign(by_name[first].read_value()))
    return tf.group(*ops)


def _group_names(saved, pattern, layers):
    groups = [[] for _ in range(layers)]
    for name in sorted(saved):
        layer, _ = layer_of(name, pattern)
        if layer is not None:
            groups[layer].append(name)
    return tuple(tuple(g) for g in groups)


def _today_name(name, generation, cell):
    """Today's unshared name of a saved name of `generation` (slots keep their suffix)."""
    if generation in ("today", "shared"):
        return name
    gen, today = _GENERATIONS[generation], _GENERATIONS["today"]
    cell_scope, pieces = gen.cells[cell]
    parts = name.split("/")
    if cell_scope not in parts:
        return name
    at = parts.index(cell_scope)
    outer = {gen.rnn: today.rnn, gen.bidirectional: today.bidirectional, gen.fw: today.fw,
             gen.bw: today.bw, gen.multi: today.multi}
    head = []
    for part in parts[:at]:
        match = _LAYER_PATTERNS[generation].match(part)
        head.append(today.layer.format(match.group(1)) if match else outer.get(part, part))
    rest = "/".join(parts[at + 1:])
    for today_piece, old_piece in pieces.items():
        if rest == old_piece or rest.startswith(old_piece + "/"):
            tail = rest[len(old_piece):]
            return "/".join(head + [today.cells[cell][0], today_piece]) + tail
    raise ValueError(f"no {generation} {cell} piece matches {name!r}")


def stack_variable_names(cell="gru", layers=2, generation="today", bidirectional=False,
                         use_peepholes=False):
    """The cell variables' names of a stack of `generation`, without slots, in layer order."""
    gen = _GENERATIONS[generation]
    if bidirectional:
        tops = [f"{gen.bidirectional}/{gen.fw}", f"{gen.bidirectional}/{gen.bw}"]
    else:
        tops = [gen.rnn]
    cell_scope, pieces = gen.cells[cell]
    count = 1 if generation == "shared" else layers
    return [f"{top}/{gen.multi}/{gen.layer.format(i)}/{cell_scope}/{pieces[p]}"
            for top in tops for i in range(count) for p in _cell_pieces(cell, use_peepholes)]


def _check(value, allowed, what):
    if value not in allowed:
        raise ValueError(f"{what} must be one of {allowed}, got {value!r}")


# ---------------------------------------------------------------------------------------------
# Big checkpoints for benchmarks, written tensor by tensor.


@dataclasses.dataclass(frozen=True)
class BigCheckpoint:
    """`prefix` of the V2 checkpoint written, its `specs` [(name, shape, dtype)], `nbytes` of tensor data."""

    prefix: str
    specs: tuple
    nbytes: int


def _big_gru_specs(layers, num_units, with_adam, generation):
    specs = []
    for name in stack_variable_names("gru", layers, generation):
        piece = _today_name(name, generation, "gru").rsplit("gru_cell/", 1)[1]
        shape = _piece_shape("gru", piece, num_units, num_units)
        specs.append((name, shape, np.float32))
        if with_adam:
            specs += [(f"{name}/Adam", shape, np.float32), (f"{name}/Adam_1", shape, np.float32)]
    specs.append(("global_step", (), np.int64))
    if with_adam:
        specs += [("beta1_power", (), np.float32), ("beta2_power", (), np.float32)]
    return tuple(sorted(specs))


def save_big_gru_checkpoint(prefix, layers=4, num_units=2048, with_adam=True, generation="today",
                            seed=0, batch_bytes=64 << 20, verbose=True):
    """Writes a large V2 checkpoint of a per-layer GRU stack (input depth = num_units) at `prefix`.

    Names, shapes and dtypes are those of a real `generation` stack trained with Adam (slots,
    `global_step`, `beta1_power`, `beta2_power`); values are random. Tensors are generated one
    at a time and written in shards of about `batch_bytes` with `tf.raw_ops.SaveV2`, then merged
    with `tf.raw_ops.MergeV2Checkpoints`, so memory stays within a few `batch_bytes` (measured:
    about +270 MiB for the default 64 MiB) whatever the checkpoint's size.
    Size: layers * 6 * num_units**2 floats, times 3 with Adam (4 layers of 2048: about 1.2 GB).
    Needs eager execution (the default in TF 2).
    """
    specs = _big_gru_specs(layers, num_units, with_adam, generation)
    nbytes = sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for _, shape, dtype in specs)
    if verbose:
        print(f"save_big_gru_checkpoint: {len(specs)} tensors, {nbytes / 2**20:.1f} MiB -> {prefix}")
    with tf.init_scope():
        if not tf.executing_eagerly():
            raise Error("save_big_gru_checkpoint needs eager execution: call it outside "
                        "tf1.disable_eager_execution() or in a fresh process.")
        temp = prefix + "_temp_big"
        os.makedirs(temp, exist_ok=True)
        rng = np.random.default_rng(seed)
        parts, batch, pending = [], [], 0
        try:
            for name, shape, dtype in specs:
                size = int(np.prod(shape)) * np.dtype(dtype).itemsize
                if batch and pending + size > batch_bytes:
                    parts.append(_save_shard(temp, len(parts), batch))
                    batch, pending = [], 0
                batch.append((name, _big_value(rng, name, shape, dtype)))
                pending += size
            if batch:
                parts.append(_save_shard(temp, len(parts), batch))
            batch = []
            tf.raw_ops.MergeV2Checkpoints(
                checkpoint_prefixes=tf.constant(parts), destination_prefix=tf.constant(prefix),
                delete_old_dirs=True)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    return BigCheckpoint(prefix=prefix, specs=specs, nbytes=nbytes)


def _big_value(rng, name, shape, dtype):
    if name == "global_step":
        return np.array(1000, np.int64)
    if name.startswith("beta"):
        return np.array(0.9 ** 1000 if name == "beta1_power" else 0.999 ** 1000, np.float32)
    value = rng.standard_normal(shape, dtype=np.float32)
    value *= 0.05
    if name.endswith("Adam_1"):
        np.square(value, out=value)
    return value


def _save_shard(directory, index, batch):
    part = os.path.join(directory, f"part-{index:05d}")
    tf.raw_ops.SaveV2(
        prefix=tf.constant(part), tensor_names=tf.constant([n for n, _ in batch]),
        shape_and_slices=tf.constant([""] * len(batch)),
        tensors=[tf.constant(v) for _, v in batch])
    return part
