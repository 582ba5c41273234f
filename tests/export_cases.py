"""Real TF1 graphs with `sequence_length`, saved by TF's own Saver, and what they output.

Used by tests/test_export.py in its tf_keras process (the TF1 cells need it).
"""

import numpy as np

import legacy_share
from legacy_share.testing import rnn_cell, tf, tf1

BATCH_LENGTHS = (7, 3, 1, 0)
TIME = 7
VOCAB = 13

_CELLS = {"gru": (rnn_cell.GRUCell, legacy_share.SharedGRUCell),
          "basic_lstm": (rnn_cell.BasicLSTMCell, legacy_share.SharedBasicLSTMCell),
          "lstm": (rnn_cell.LSTMCell, legacy_share.SharedLSTMCell),
          "basic_rnn": (rnn_cell.BasicRNNCell, legacy_share.SharedBasicRNNCell)}


def save_case(prefix, cell="gru", topology="forward", layers=2, units=6, depth=4, shared=False,
              write_version="V2", forget_bias=1.0, cell_options=None, embedding=False,
              dense=False, seed=0, multi_rnn_cell=False, dtype="float32"):
    """Builds the graph, randomises its variables, saves `prefix` -> (inputs, lengths, outputs).

    topology: "forward" (MultiRNNCell when layers > 1, shared or `multi_rnn_cell`, else a bare
    cell),
    "bidirectional" (bidirectional_dynamic_rnn of two stacks), "stacked" (the scopes of
    contrib's stack_bidirectional_dynamic_rnn: stack_bidirectional_rnn/cell_k/bidirectional_rnn).
    dtype: of the inputs, the variables and what the graph computes in ("float64" or "float32").
    """
    rng = np.random.RandomState(seed)
    cell_options = dict(cell_options or {})
    if cell in ("basic_lstm", "lstm"):
        cell_options["forget_bias"] = forget_bias
    graph, tf_dtype = tf1.Graph(), tf.as_dtype(dtype)
    with graph.as_default():
        lengths = tf1.placeholder(tf.int32, [None], name="lengths")
        if embedding:
            ids = tf1.placeholder(tf.int32, [None, None], name="ids")
            table = tf1.get_variable("embedding", [VOCAB, depth], dtype=tf_dtype)
            inputs, x = ids, tf.nn.embedding_lookup(table, ids)
        else:
            inputs = x = tf1.placeholder(tf_dtype, [None, None, depth], name="inputs")
        plain, shared_class = _CELLS[cell]

        def stack():
            if shared:
                return rnn_cell.MultiRNNCell([shared_class(units, **cell_options)] * layers)
            cells = [plain(units, **cell_options) for _ in range(layers)]
            return cells[0] if layers == 1 and not multi_rnn_cell else rnn_cell.MultiRNNCell(cells)

        if topology == "forward":
            outputs, _ = tf1.nn.dynamic_rnn(stack(), x, sequence_length=lengths, dtype=tf_dtype)
        elif topology == "bidirectional":
            (fw, bw), _ = tf1.nn.bidirectional_dynamic_rnn(stack(), stack(), x,
                                                           sequence_length=lengths,
                                                           dtype=tf_dtype)
            outputs = tf.concat([fw, bw], axis=2)
        else:
            outputs = x
            with tf1.variable_scope("stack_bidirectional_rnn"):
                for i in range(layers):
                    with tf1.variable_scope(f"cell_{i}"):
                        (fw, bw), _ = tf1.nn.bidirectional_dynamic_rnn(
                            plain(units, **cell_options), plain(units, **cell_options), outputs,
                            sequence_length=lengths, dtype=tf_dtype, scope="bidirectional_rnn")
                        outputs = tf.concat([fw, bw], axis=2)
        if dense:
            kernel = tf1.get_variable("softmax_w", [outputs.shape[-1], VOCAB], dtype=tf_dtype)
            bias = tf1.get_variable("softmax_b", [VOCAB], dtype=tf_dtype)
            outputs = tf.tensordot(outputs, kernel, axes=1) + bias
        tf1.train.get_or_create_global_step()
        saver = tf1.train.Saver(write_version=getattr(tf1.train.SaverDef, write_version))
        with tf1.Session(graph=graph) as session:
            for variable in tf1.global_variables():
                shape = variable.shape.as_list()
                value = rng.normal(0.0, 0.5, shape) if shape else 0
                variable.load(np.asarray(value, variable.dtype.as_numpy_dtype), session)
            data = (rng.randint(0, VOCAB, (len(BATCH_LENGTHS), TIME)).astype(np.int32)
                    if embedding else
                    rng.uniform(-1, 1, (len(BATCH_LENGTHS), TIME, depth)).astype(dtype))
            lens = np.array(BATCH_LENGTHS, np.int32)
            result = session.run(outputs, {inputs: data, lengths: lens})
            saver.save(session, prefix, write_meta_graph=False)
    return data, lens, result
