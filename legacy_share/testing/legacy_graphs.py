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

The old generations' cells (and the contrib block cells' names) are in
`legacy_share.testing.old_cells`; see docs/naming.md for the names and shapes.
"""

import dataclasses
import os
import re
import shutil

import numpy as np

from legacy_share import writing
from legacy_share.testing import old_cells
from legacy_share._tf import rnn_cell, tf, tf1
from legacy_share.cells import SharedGRUCell
from legacy_share.errors import Error
from legacy_share.testing.old_cells import CELL_KINDS, GENERATIONS  # re-exported

__all__ = [
    "GENERATIONS",
    "CELL_KINDS",
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


BATCH = 3
TIME = 4
VOCAB = 11
CHARS = 4
LEARNING_RATE = 0.05
_GENERATIONS = old_cells.TABLES
_LAYER_PATTERNS = old_cells.LAYER_PATTERNS
_WORD_PATTERN = re.compile(r"^word_(\d+)$")


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
    _check(cell, CELL_KINDS, "cell")
    _check(generation, GENERATIONS, "generation")
    depth = num_units if input_depth is None else input_depth
    inputs, rnn_inputs = _model_inputs(depth, extra_tensors, (BATCH, TIME))
    if project_inputs:
        projection = tf1.get_variable("input_projection", [depth, num_units], tf.float32)
        rnn_inputs = tf.tensordot(rnn_inputs, projection, axes=1)

    def make_cell():
        return old_cells.multi_cell(generation, cell, layers, num_units, use_peepholes, num_proj,
                           share_from)

    if not seq2seq:
        outputs = old_cells.run_rnn(generation, make_cell, rnn_inputs, bidirectional)
        return _finish_model(inputs, rnn_inputs, outputs, extra_tensors, optimizer)
    with tf1.variable_scope("encoder"):
        _, state = old_cells.run_rnn(generation, make_cell, rnn_inputs, False, final_state=True)
    with tf1.variable_scope("decoder"):
        embedding = tf1.get_variable("decoder_embedding", [VOCAB, depth], tf.float32)
        decoder_inputs = tf.nn.embedding_lookup(embedding, inputs)
        outputs = old_cells.run_rnn(generation, make_cell, decoder_inputs, False, initial_state=state)
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
    _check(cell, CELL_KINDS, "cell")
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
            for top in tops for i in range(count) for p in old_cells.cell_pieces(cell, use_peepholes)]


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
        shape = old_cells.piece_shape("gru", piece, num_units, num_units)
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
    at a time and saved by the migrator's own batched writer (`writing.save_batched`, shards of
    about `batch_bytes`), so memory stays within a few `batch_bytes` whatever the size.
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
        rng = np.random.default_rng(seed)
        items = ((name, np.dtype(dtype).name, _big_value(rng, name, shape, dtype))
                 for name, shape, dtype in specs)
        temp = prefix + "_temp_big"
        os.makedirs(temp, exist_ok=True)
        try:
            writing.save_batched(items, temp, prefix, batch_bytes=batch_bytes)
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
