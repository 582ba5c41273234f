"""legacy_seq2seq's TF 1.2 - 1.15 golden lists (tests/test_seq2seq_names.py) against a graph.

legacy_seq2seq and its wrappers are gone from TF 2, so this cannot be the real graph. What it
does check with TensorFlow itself: the scopes today's tf.compat.v1 RNNCell layers, MultiRNNCell,
GRUCell, BasicLSTMCell, static_rnn and dynamic_rnn give (the same layer scoping as TF 1.2 -
1.15), for a wrapper that, as r1.15 core_rnn_cell.py's do, creates its own variables in its
`call` and calls the wrapped cell there; and that a second bucket built with reuse (as
model_with_buckets does, on a deep copy of the cell) names nothing new. The functions' own
scopes are rebuilt from r1.15 seq2seq.py (attention reads simplified: only their variables'
names and shapes matter here).
"""

import copy

import pytest

from tests.test_seq2seq_names import CASES, D, E, INPUT_PROJECTION, P, U, V


def _wrappers():
    from legacy_share.testing import rnn_cell, tf, tf1
    plain = tf.autograph.experimental.do_not_convert  # graph code, no control flow to convert

    class _Wrapper(rnn_cell.RNNCell):
        def __init__(self, cell, size, **kwargs):
            super().__init__(**kwargs)
            self._cell, self._size = cell, size

        @property
        def state_size(self):
            return self._cell.state_size

    class EmbeddingWrapper(_Wrapper):
        @property
        def output_size(self):
            return self._cell.output_size

        @plain
        def call(self, inputs, state):
            embedding = tf1.get_variable("embedding", [E, self._size])
            return self._cell(tf.nn.embedding_lookup(embedding, tf.reshape(inputs, [-1])), state)

    class InputProjectionWrapper(_Wrapper):
        @property
        def output_size(self):
            return self._cell.output_size

        @plain
        def call(self, inputs, state):
            return self._cell(_linear([inputs], self._size), state)

    class OutputProjectionWrapper(_Wrapper):
        @property
        def output_size(self):
            return self._size

        @plain
        def call(self, inputs, state):
            output, new_state = self._cell(inputs, state)
            return _linear([output], self._size), new_state

    return EmbeddingWrapper, OutputProjectionWrapper, InputProjectionWrapper


def _linear(args, size):
    """`kernel` and `bias` in the current scope, as r1.2 - r1.15 `_linear` / `_Linear` make them."""
    from legacy_share.testing import tf, tf1
    width = sum(int(a.shape[1]) for a in args)
    kernel = tf1.get_variable("kernel", [width, size])
    return tf.matmul(tf.concat(args, 1), kernel) + tf1.get_variable("bias", [size])


def _rnn_decoder(inputs, state, cell, scope="rnn_decoder"):
    from legacy_share.testing import tf1
    with tf1.variable_scope(scope):
        for i, inp in enumerate(inputs):
            if i:
                tf1.get_variable_scope().reuse_variables()
            _, state = cell(inp, state)


def _attention_decoder(inputs, state, cell, output_size):
    from legacy_share.testing import tf, tf1
    with tf1.variable_scope("attention_decoder"):
        tf1.get_variable("AttnW_0", [1, 1, U, U])
        tf1.get_variable("AttnV_0", [U])
        attns = [tf.zeros([3, U])]
        for i, inp in enumerate(inputs):
            if i:
                tf1.get_variable_scope().reuse_variables()
            output, state = cell(_linear([inp] + attns, D), state)
            with tf1.variable_scope("Attention_0"):
                attns = [_linear(list(tf.nest.flatten(state)), U)]
            with tf1.variable_scope("AttnOutputProjection"):
                _linear([output] + attns, output_size)


def _seq2seq_graph(case):
    """{name: shape} of today's graph of `case`, built for two buckets."""
    from legacy_share.testing import rnn_cell, tf, tf1
    embedding_wrapper, projection_wrapper, _ = _wrappers()
    function, projected = case.split("-")[0], case.endswith("output_projection")
    kind = {"embedding_rnn_seq2seq": rnn_cell.BasicLSTMCell}.get(function, rnn_cell.GRUCell)
    layers = 1 if function == "embedding_tied_rnn_seq2seq" else 2
    with tf1.Graph().as_default() as graph:
        ids = [tf1.placeholder(tf.int32, [3]) for _ in range(4)]
        for bucket in (3, 4):
            template = (kind(U) if layers == 1
                        else rnn_cell.MultiRNNCell([kind(U) for _ in range(layers)]))
            with tf1.variable_scope(tf1.get_variable_scope(), reuse=True if bucket > 3 else None):
                _BUILDERS[function](ids[:bucket], copy.deepcopy(template), projected,
                                    embedding_wrapper, projection_wrapper)
        return {v.name[:-2]: tuple(v.shape.as_list()) for v in graph.get_collection("variables")}


def _embedding_rnn_seq2seq(ids, cell, projected, embedding_wrapper, projection_wrapper):
    from legacy_share.testing import tf, tf1
    with tf1.variable_scope("embedding_rnn_seq2seq"):
        encoder = embedding_wrapper(copy.deepcopy(cell), D)
        _, state = tf1.nn.static_rnn(encoder, ids, dtype=tf.float32)
        cell = cell if projected else projection_wrapper(cell, V)
        with tf1.variable_scope("embedding_rnn_decoder"):
            embedding = tf1.get_variable("embedding", [V, D])
            _rnn_decoder([tf.nn.embedding_lookup(embedding, i) for i in ids], state, cell)


def _embedding_tied_rnn_seq2seq(ids, cell, projected, _, projection_wrapper):
    from legacy_share.testing import tf, tf1
    with tf1.variable_scope("embedding_tied_rnn_seq2seq"):
        embedding = tf1.get_variable("embedding", [V, D])
        inputs = [tf.nn.embedding_lookup(embedding, i) for i in ids]
        cell = cell if projected else projection_wrapper(cell, V)
        with tf1.variable_scope("combined_tied_rnn_seq2seq"):
            _, state = tf1.nn.static_rnn(cell, inputs, dtype=tf.float32, scope="tied_rnn_seq2seq")
            tf1.get_variable_scope().reuse_variables()
            _rnn_decoder(inputs, state, cell, scope="tied_rnn_seq2seq")


def _embedding_attention_seq2seq(ids, cell, projected, embedding_wrapper, projection_wrapper):
    from legacy_share.testing import tf, tf1
    with tf1.variable_scope("embedding_attention_seq2seq"):
        encoder = embedding_wrapper(copy.deepcopy(cell), D)
        _, state = tf1.nn.static_rnn(encoder, ids, dtype=tf.float32)
        cell = cell if projected else projection_wrapper(cell, V)
        with tf1.variable_scope("embedding_attention_decoder"):
            embedding = tf1.get_variable("embedding", [V, D])
            _attention_decoder([tf.nn.embedding_lookup(embedding, i) for i in ids], state, cell,
                               cell.output_size)


_BUILDERS = {"embedding_rnn_seq2seq": _embedding_rnn_seq2seq,
             "embedding_tied_rnn_seq2seq": _embedding_tied_rnn_seq2seq,
             "embedding_attention_seq2seq": _embedding_attention_seq2seq}


@pytest.mark.parametrize("case", CASES)
def test_todays_list_is_what_tf_layer_scoping_names_the_rebuilt_graph(case):
    assert _seq2seq_graph(case) == {row[2]: row[3] for row in CASES[case]}


def test_input_projection_list_is_what_tf_layer_scoping_names_the_rebuilt_graph():
    from legacy_share.testing import rnn_cell, tf, tf1
    input_projection_wrapper = _wrappers()[2]
    with tf1.Graph().as_default() as graph:
        inputs = tf1.placeholder(tf.float32, [3, 4, D])
        tf1.nn.dynamic_rnn(input_projection_wrapper(rnn_cell.GRUCell(U), P), inputs,
                           dtype=tf.float32)
        got = {v.name[:-2]: tuple(v.shape.as_list()) for v in graph.get_collection("variables")}
    assert got == {row[2]: row[3] for row in INPUT_PROJECTION}
