"""Real TF1 models of several stacks (issue 19), saved by TF's own Saver, and what they output.

Each builder runs the whole model in a tf.compat.v1 graph with `sequence_length`, randomises its
variables, saves them and returns (inputs, lengths, the graph's outputs). Used by
tests/test_export_chains.py in pytest's tf_keras process (the TF1 cells need it).
"""

import numpy as np

from legacy_share.testing import rnn_cell, tf, tf1
from tests.export_cases import BATCH_LENGTHS, TIME, VOCAB

__all__ = ["save_bidirectional_blocks", "save_char_enc_dec", "save_nmt_encoder"]


def save_bidirectional_blocks(prefix, depth=5, units=(6, 4), seed=0):
    """Two `bidirectional_dynamic_rnn(..., scope="bi-lstm{k}")` blocks, each a 2-layer
    MultiRNNCell of BasicLSTMCells per direction, block 0 feeding block 1, then a Dense
    `softmax_w`, `softmax_b`: inputs [batch, time, depth] float32."""
    def build(x, lengths):
        for block, size in enumerate(units):
            def stack():
                return rnn_cell.MultiRNNCell([rnn_cell.BasicLSTMCell(size) for _ in range(2)])
            (fw, bw), _ = tf1.nn.bidirectional_dynamic_rnn(
                stack(), stack(), x, sequence_length=lengths, dtype=tf.float32,
                scope=f"bi-lstm{block}")
            x = tf.concat([fw, bw], axis=2)
        return _dense(x)
    return _save(prefix, build, depth, embedding=None, seed=seed)


def save_char_enc_dec(prefix, seed=1):
    """An embedding [VOCAB, 256], LSTMCell(100) in scope `lstm_char_enc_dec_0`, LSTMCell(64) in
    `lstm_char_enc_dec_1` (input 100), and a Dense projection: the char model of issue 19,
    whose CudnnLSTMs are plain LSTMCells here (the export does not chain cuDNN models)."""
    def build(x, lengths):
        for index, size in enumerate((100, 64)):
            x, _ = tf1.nn.dynamic_rnn(rnn_cell.LSTMCell(size), x, sequence_length=lengths,
                                      dtype=tf.float32, scope=f"lstm_char_enc_dec_{index}")
        return _dense(x)
    return _save(prefix, build, 256, embedding="embedding", seed=seed)


def save_nmt_encoder(prefix, units=12, seed=2):
    """tensorflow/nmt's GNMT-style encoder: `embeddings/encoder/embedding_encoder`, then in
    scope `encoder` a bidirectional_dynamic_rnn of BasicLSTMCell(units) feeding a dynamic_rnn
    of a 2-layer MultiRNNCell (layer 0's input 2 x units); its output is the encoder's."""
    def build(x, lengths):
        with tf1.variable_scope("encoder"):
            (fw, bw), _ = tf1.nn.bidirectional_dynamic_rnn(
                rnn_cell.BasicLSTMCell(units), rnn_cell.BasicLSTMCell(units), x,
                sequence_length=lengths, dtype=tf.float32)
            cells = rnn_cell.MultiRNNCell([rnn_cell.BasicLSTMCell(units) for _ in range(2)])
            outputs, _ = tf1.nn.dynamic_rnn(cells, tf.concat([fw, bw], axis=2),
                                            sequence_length=lengths, dtype=tf.float32)
        return outputs
    return _save(prefix, build, 5, embedding="embeddings/encoder/embedding_encoder", seed=seed)


def _dense(x):
    kernel = tf1.get_variable("softmax_w", [x.shape[-1], VOCAB])
    return tf.tensordot(x, kernel, axes=1) + tf1.get_variable("softmax_b", [VOCAB])


def _save(prefix, build, depth, embedding, seed):
    rng = np.random.RandomState(seed)
    graph = tf1.Graph()
    with graph.as_default():
        lengths = tf1.placeholder(tf.int32, [None], name="lengths")
        if embedding:
            inputs = tf1.placeholder(tf.int32, [None, None], name="ids")
            x = tf.nn.embedding_lookup(tf1.get_variable(embedding, [VOCAB, depth]), inputs)
        else:
            inputs = x = tf1.placeholder(tf.float32, [None, None, depth], name="inputs")
        outputs = build(x, lengths)
        saver = tf1.train.Saver()
        with tf1.Session(graph=graph) as session:
            for variable in tf1.global_variables():
                value = rng.normal(0.0, 0.5, variable.shape.as_list())
                variable.load(value.astype(np.float32), session)
            data = (rng.randint(0, VOCAB, (len(BATCH_LENGTHS), TIME)).astype(np.int32)
                    if embedding else
                    rng.uniform(-1, 1, (len(BATCH_LENGTHS), TIME, depth)).astype(np.float32))
            lens = np.array(BATCH_LENGTHS, np.int32)
            result = session.run(outputs, {inputs: data, lengths: lens})
            saver.save(session, prefix, write_meta_graph=False)
    return data, lens, result
