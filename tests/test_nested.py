"""hierarchical_rnn: one variable set, same names and values in both modes, padding ignored."""

import numpy as np
import pytest

from legacy_share.testing import tf, tf1
from legacy_share.cells import SharedBasicLSTMCell, SharedGRUCell
from legacy_share.errors import (ArgumentError, Error, IncompatibleDtypeError,
                                 IncompatibleShapeError)
from legacy_share.nested import MODES, hierarchical_rnn

CHAR_UNITS, WORD_UNITS, DEPTH = 5, 4, 3

GRU_NAMES = [
    "hierarchical_rnn/chars/rnn/gru_cell/gates/kernel:0",
    "hierarchical_rnn/chars/rnn/gru_cell/gates/bias:0",
    "hierarchical_rnn/chars/rnn/gru_cell/candidate/kernel:0",
    "hierarchical_rnn/chars/rnn/gru_cell/candidate/bias:0",
    "hierarchical_rnn/words/rnn/gru_cell/gates/kernel:0",
    "hierarchical_rnn/words/rnn/gru_cell/gates/bias:0",
    "hierarchical_rnn/words/rnn/gru_cell/candidate/kernel:0",
    "hierarchical_rnn/words/rnn/gru_cell/candidate/bias:0",
]


def _gru_cells():
    return SharedGRUCell(CHAR_UNITS), SharedGRUCell(WORD_UNITS)


def _build(cells, mode, words, chars, scope=None):
    """Placeholders x, char_lengths, word_lengths and the three outputs."""
    x = tf1.placeholder(tf.float32, [None, words, chars, DEPTH])
    char_lengths = tf1.placeholder(tf.int32, [None, words])
    word_lengths = tf1.placeholder(tf.int32, [None])
    outputs = hierarchical_rnn(cells[0], cells[1], x, char_lengths, word_lengths,
                               mode=mode, scope=scope)
    return (x, char_lengths, word_lengths), outputs


def _feed(placeholders, values):
    return dict(zip(placeholders, values))


def _data(rng, batch, words, chars):
    x = rng.normal(size=(batch, words, chars, DEPTH)).astype(np.float32)
    char_lengths = rng.integers(1, chars + 1, size=(batch, words)).astype(np.int32)
    char_lengths[0, 1] = 0  # an empty word inside a sentence
    word_lengths = rng.integers(1, words + 1, size=batch).astype(np.int32)
    word_lengths[0] = words
    return x, char_lengths, word_lengths


def _randomise(session, rng):
    """Gives every variable random values, so biases of 1 and 0 cannot hide a bug."""
    for v in tf1.global_variables():
        v.load(rng.normal(scale=0.5, size=v.shape).astype(np.float32), session)


@pytest.mark.parametrize("mode", MODES)
def test_variable_names_are_golden(mode):
    with tf1.Graph().as_default():
        _build(_gru_cells(), mode, words=3, chars=4)
        assert [v.name for v in tf1.global_variables()] == GRU_NAMES
        assert [v.name for v in tf1.trainable_variables()] == GRU_NAMES


def test_scope_argument_replaces_default_scope():
    with tf1.Graph().as_default():
        _build(_gru_cells(), "cloned", words=2, chars=3, scope="encoder")
        assert [v.name for v in tf1.global_variables()] == [
            n.replace("hierarchical_rnn/", "encoder/") for n in GRU_NAMES]


@pytest.mark.parametrize("mode", MODES)
def test_one_variable_set_whatever_the_number_of_words(mode):
    found, ops = {}, {}
    for words in (3, 7):
        with tf1.Graph().as_default() as graph:
            _build(_gru_cells(), mode, words=words, chars=4)
            found[words] = [(v.name, v.shape.as_list()) for v in tf1.global_variables()]
            ops[words] = len(graph.get_operations())
    assert found[3] == found[7]
    assert [name for name, _ in found[7]] == GRU_NAMES
    if mode == "batched":
        assert ops[3] == ops[7]
    else:
        assert ops[7] > ops[3]


def test_plain_cells_in_cloned_mode_also_create_one_set():
    with tf1.Graph().as_default():
        cells = (tf1.nn.rnn_cell.GRUCell(CHAR_UNITS), tf1.nn.rnn_cell.GRUCell(WORD_UNITS))
        _build(cells, "cloned", words=4, chars=3)
        assert [v.name for v in tf1.global_variables()] == GRU_NAMES


@pytest.mark.parametrize("make_cells", [
    _gru_cells,
    lambda: (SharedBasicLSTMCell(CHAR_UNITS), SharedBasicLSTMCell(WORD_UNITS)),
], ids=["gru", "basic_lstm"])
def test_cloned_and_batched_agree_with_the_same_cells_in_one_graph(make_cells):
    rng = np.random.default_rng(0)
    with tf1.Graph().as_default():
        cells = make_cells()
        cloned_in, cloned = _build(cells, "cloned", words=4, chars=5)
        count = len(tf1.global_variables())
        batched_in, batched = _build(cells, "batched", words=4, chars=5)
        assert len(tf1.global_variables()) == count  # the second mode reuses every variable
        values = _data(rng, batch=3, words=4, chars=5)
        with tf1.Session() as session:
            _randomise(session, rng)
            got_cloned = session.run(cloned, _feed(cloned_in, values))
            got_batched = session.run(batched, _feed(batched_in, values))
    assert got_cloned[0].shape == (3, 4, CHAR_UNITS)
    assert got_cloned[1].shape == (3, 4, WORD_UNITS)
    for a, b in zip(tf.nest.flatten(got_cloned), tf.nest.flatten(got_batched)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_lstm_word_vectors_are_h_of_the_final_state(mode):
    rng = np.random.default_rng(6)
    x, char_lengths, word_lengths = _data(rng, batch=2, words=3, chars=4)
    with tf1.Graph().as_default():
        cells = (SharedBasicLSTMCell(CHAR_UNITS), SharedBasicLSTMCell(WORD_UNITS))
        placeholders, (vectors, _, word_state) = _build(cells, mode, words=3, chars=4)
        # The char layer's outputs equal h at every step: h of the final state is the
        # output at the last character (and zero for an empty word).
        with tf1.variable_scope("hierarchical_rnn/chars", reuse=True):
            char_outputs, _ = tf1.nn.dynamic_rnn(
                cells[0], tf.reshape(placeholders[0], [-1, 4, DEPTH]), dtype=tf.float32,
                sequence_length=tf.reshape(placeholders[1], [-1]))
        assert [v.name for v in tf1.global_variables()] == [
            "hierarchical_rnn/chars/rnn/basic_lstm_cell/kernel:0",
            "hierarchical_rnn/chars/rnn/basic_lstm_cell/bias:0",
            "hierarchical_rnn/words/rnn/basic_lstm_cell/kernel:0",
            "hierarchical_rnn/words/rnn/basic_lstm_cell/bias:0",
        ]
        with tf1.Session() as session:
            _randomise(session, rng)
            got, outputs, state = session.run(
                [vectors, char_outputs, word_state],
                _feed(placeholders, (x, char_lengths, word_lengths)))
    last = np.maximum(char_lengths.reshape(-1) - 1, 0)
    want = outputs[np.arange(len(last)), last].reshape(2, 3, CHAR_UNITS)
    want[char_lengths == 0] = 0.0
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert isinstance(state, tf1.nn.rnn_cell.LSTMStateTuple)


def test_a_checkpoint_of_batched_restores_into_cloned(tmp_path):
    rng = np.random.default_rng(1)
    values = _data(rng, batch=2, words=3, chars=4)
    prefix = str(tmp_path / "model.ckpt")
    with tf1.Graph().as_default():
        placeholders, outputs = _build(_gru_cells(), "batched", words=3, chars=4)
        with tf1.Session() as session:
            _randomise(session, rng)
            expected = session.run(outputs, _feed(placeholders, values))
            tf1.train.Saver().save(session, prefix)
    with tf1.Graph().as_default():
        placeholders, outputs = _build(_gru_cells(), "cloned", words=3, chars=4)
        with tf1.Session() as session:
            tf1.train.Saver().restore(session, prefix)
            got = session.run(outputs, _feed(placeholders, values))
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_padding_with_garbage_changes_nothing(mode):
    rng = np.random.default_rng(2)
    batch, words, chars, pad_words, pad_chars = 3, 3, 4, 2, 3
    x, char_lengths, word_lengths = _data(rng, batch, words, chars)
    word_lengths[:] = words
    big_x = rng.normal(scale=10.0, size=(batch, words + pad_words, chars + pad_chars, DEPTH))
    big_x = big_x.astype(np.float32)
    big_x[:, :words, :chars] = x
    for b in range(batch):  # characters past char_lengths are garbage too
        for w in range(words):
            big_x[b, w, char_lengths[b, w]:] = rng.normal(scale=10.0, size=DEPTH)
    big_char_lengths = rng.integers(0, chars + pad_chars + 1, size=(batch, words + pad_words))
    big_char_lengths[:, :words] = char_lengths
    with tf1.Graph().as_default():
        cells = _gru_cells()
        small_in, small = _build(cells, mode, words, chars)
        big_in, big = _build(cells, mode, words + pad_words, chars + pad_chars)
        assert [v.name for v in tf1.global_variables()] == GRU_NAMES
        with tf1.Session() as session:
            _randomise(session, rng)
            want = session.run(small, _feed(small_in, (x, char_lengths, word_lengths)))
            got = session.run(big, _feed(big_in, (big_x, big_char_lengths, word_lengths)))
    np.testing.assert_allclose(got[0][:, :words], want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1][:, :words], want[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[1][:, words:], 0.0)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-5, atol=1e-6)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _numpy_gru(weights, inputs, length, units):
    """GRU equations of docs/naming.md over inputs[:length]; returns (outputs [t, units], state)."""
    gates_kernel, gates_bias, candidate_kernel, candidate_bias = weights
    h = np.zeros(units)
    outputs = np.zeros((len(inputs), units))
    for t in range(length):
        gates = _sigmoid(np.concatenate([inputs[t], h]) @ gates_kernel + gates_bias)
        r, u = gates[:units], gates[units:]
        c = np.tanh(np.concatenate([inputs[t], r * h]) @ candidate_kernel + candidate_bias)
        h = u * h + (1 - u) * c
        outputs[t] = h
    return outputs, h


@pytest.mark.parametrize("mode", MODES)
def test_matches_numpy_gru_per_word_then_over_words(mode):
    rng = np.random.default_rng(3)
    batch, words, chars = 3, 4, 5
    values = _data(rng, batch, words, chars)
    with tf1.Graph().as_default():
        placeholders, outputs = _build(_gru_cells(), mode, words, chars)
        with tf1.Session() as session:
            _randomise(session, rng)
            got = session.run(outputs, _feed(placeholders, values))
            weights = session.run(tf1.global_variables())
    x, char_lengths, word_lengths = values
    for b in range(batch):
        vectors = np.stack([
            _numpy_gru(weights[:4], x[b, w], char_lengths[b, w], CHAR_UNITS)[1]
            for w in range(words)])
        word_outputs, word_state = _numpy_gru(weights[4:], vectors, word_lengths[b], WORD_UNITS)
        np.testing.assert_allclose(got[0][b], vectors, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[1][b], word_outputs, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[2][b], word_state, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_empty_words_and_rows_give_the_zero_state(mode):
    rng = np.random.default_rng(4)
    x, char_lengths, word_lengths = _data(rng, batch=2, words=3, chars=4)
    char_lengths[1, :] = 0
    word_lengths[1] = 0
    with tf1.Graph().as_default():
        placeholders, outputs = _build(_gru_cells(), mode, words=3, chars=4)
        with tf1.Session() as session:
            _randomise(session, rng)
            vectors, word_outputs, word_state = session.run(
                outputs, _feed(placeholders, (x, char_lengths, word_lengths)))
    assert np.isfinite(vectors).all()
    np.testing.assert_array_equal(vectors[0, 1], 0.0)  # char_lengths[0, 1] == 0
    np.testing.assert_array_equal(vectors[1], 0.0)
    np.testing.assert_array_equal(word_outputs[1], 0.0)
    np.testing.assert_array_equal(word_state[1], 0.0)
    assert np.abs(vectors[0, 0]).sum() > 0


def test_lengths_may_be_omitted():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 3, 4, DEPTH)).astype(np.float32)
    with tf1.Graph().as_default():
        cells = _gru_cells()
        without = hierarchical_rnn(cells[0], cells[1], tf.constant(x))
        full = hierarchical_rnn(cells[0], cells[1], tf.constant(x),
                                tf.fill([2, 3], 4), tf.fill([2], 3), mode="cloned")
        with tf1.Session() as session:
            _randomise(session, rng)
            got, want = session.run([without, full])
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape, match", [
    ([None, 3, DEPTH], r"rank 4 \[batch, words, chars, depth\]"),
    ([None, 2, 3, 4, DEPTH], r"rank 4"),
    ([None, None, 3, DEPTH], r"static words, chars and depth"),
])
def test_bad_input_shapes_raise(shape, match):
    with tf1.Graph().as_default():
        x = tf1.placeholder(tf.float32, shape, name="x")
        with pytest.raises(IncompatibleShapeError, match=match) as info:
            hierarchical_rnn(SharedGRUCell(2), SharedGRUCell(2), x)
        assert "'x:0'" in str(info.value)
        assert isinstance(info.value, Error)


@pytest.mark.parametrize("which, shape, match", [
    ("char_lengths", [None, 4], r"char_lengths .* shape \(None, 4\).* \[None, 3\]"),
    ("char_lengths", [None], r"one length per word of every row"),
    ("word_lengths", [None, 3], r"word_lengths .* one length per row"),
])
def test_bad_length_shapes_raise(which, shape, match):
    with tf1.Graph().as_default():
        x = tf1.placeholder(tf.float32, [None, 3, 4, DEPTH])
        lengths = {which: tf1.placeholder(tf.int32, shape)}
        with pytest.raises(IncompatibleShapeError, match=match):
            hierarchical_rnn(SharedGRUCell(2), SharedGRUCell(2), x, **lengths)


@pytest.mark.parametrize("which, shape", [("char_lengths", [None, 3]), ("word_lengths", [None])])
def test_float_lengths_are_a_dtype_error_not_a_shape_error(which, shape):
    with tf1.Graph().as_default():
        x = tf1.placeholder(tf.float32, [None, 3, 4, DEPTH])
        lengths = {which: tf1.placeholder(tf.float32, shape, name="lengths")}
        with pytest.raises(IncompatibleDtypeError) as caught:
            hierarchical_rnn(SharedGRUCell(2), SharedGRUCell(2), x, **lengths)
    assert str(caught.value) == (
        f"hierarchical_rnn: {which} 'lengths:0' has dtype float32, but must be an integer "
        "tensor: cast it with tf.cast(..., tf.int32).")
    assert isinstance(caught.value, (Error, TypeError))
    assert not isinstance(caught.value, IncompatibleShapeError)


def test_unknown_mode_names_the_valid_modes():
    with tf1.Graph().as_default():
        x = tf1.placeholder(tf.float32, [None, 3, 4, DEPTH])
        with pytest.raises(ArgumentError, match=r"'unrolled'.*'batched', 'cloned'"):
            hierarchical_rnn(SharedGRUCell(2), SharedGRUCell(2), x, mode="unrolled")
        assert tf1.global_variables() == []


def test_eager_inputs_get_the_same_clear_error():
    with pytest.raises(IncompatibleShapeError, match=r"inputs '<eager tensor>' has shape \(2, 3, 4\)"):
        hierarchical_rnn(SharedGRUCell(3), SharedGRUCell(3), tf.zeros([2, 3, 4]))
