"""A hierarchical RNN: a character layer encodes every word, a word layer reads the words.

`hierarchical_rnn` builds it in one of two modes that create the same variables and compute
the same values, so one checkpoint serves both:

- `cloned`: the character layer is built once per word position (one `dynamic_rnn` per word,
  always with the same cell object), the TF1 way of "cloning the first layer for every input
  of the second layer"; the graph grows with the number of words.
- `batched`: the character layer runs once over [batch * words, chars, depth] and is reshaped
  back; the graph size does not depend on the number of words.

Variable layout (`<scope>` is `scope`, default `hierarchical_rnn`; `<cell>` is the cell's own
scope, e.g. `gru_cell`)::

    <scope>/chars/rnn/<cell>/...   the character cell
    <scope>/words/rnn/<cell>/...   the word cell

e.g. `hierarchical_rnn/chars/rnn/gru_cell/gates/kernel` and
`hierarchical_rnn/words/rnn/gru_cell/gates/bias`.

Both modes enter `<scope>/chars` and call `dynamic_rnn` with its default scope `rnn`, so the
names are the same by construction. A shared cell (`legacy_share.cells.SharedGRUCell`, ...)
re-enters the scope of its first call, which guarantees exactly one set of character-cell
variables in `cloned` mode whatever the number of words; plain TF1 cells also keep their
first scope today, but only the shared cells promise it (and raise on a changed input depth).
Calling `hierarchical_rnn` again with the same shared cells (e.g. the other mode in the same
graph) reuses their variables.
"""

from legacy_share._tf import rnn_cell, tf, tf1
from legacy_share.errors import ArgumentError, IncompatibleDtypeError, IncompatibleShapeError
from legacy_share import names

__all__ = [
    "MODES",
    "CHARS_SCOPE",
    "WORDS_SCOPE",
    "DEFAULT_SCOPE",
    "hierarchical_rnn",
]

MODES = ("batched", "cloned")
DEFAULT_SCOPE = "hierarchical_rnn"
CHARS_SCOPE = "chars"
WORDS_SCOPE = "words"


def hierarchical_rnn(char_cell, word_cell, inputs, char_lengths=None, word_lengths=None,
                     mode="batched", scope=None):
    """Encodes every word with `char_cell`, then runs `word_cell` over the word vectors.

    Args:
      char_cell: TF1 RNN cell run over the characters of each word.
      word_cell: TF1 RNN cell run over the word vectors.
      inputs: float tensor [batch, words, chars, depth]; `words`, `chars` and `depth` must be
        static, `batch` may be dynamic.
      char_lengths: int tensor [batch, words], characters per word (None: all `chars`).
        Characters beyond it do not change the word vector; length 0 gives the zero state.
      word_lengths: int tensor [batch], words per row (None: all `words`). Words beyond it
        do not change `word_state`.
      mode: `batched` or `cloned` (see the module docstring); same variables, same values.
      scope: variable scope name or object (default `hierarchical_rnn`, made unique).

    Returns:
      (word_vectors, word_outputs, word_state):
      word_vectors [batch, words, char_units]: the character layer's final state per word; for
        LSTM cells its `h`; for a MultiRNNCell the last layer's (`h` of it for LSTMs).
      word_outputs [batch, words, word_units]: the word layer's outputs (zeros past word_lengths).
      word_state: the word layer's final state (structure of `word_cell.state_size`).

    Raises:
      IncompatibleShapeError: `inputs` is not rank 4 with static words/chars/depth, or the
        lengths do not match it.
      IncompatibleDtypeError: a length tensor is not of an integer dtype.
      ArgumentError (also a ValueError): `mode` is not one of MODES.
    """
    if mode not in MODES:
        raise ArgumentError(f"hierarchical_rnn: mode {mode!r} is not valid; use one of "
                         f"{', '.join(repr(m) for m in MODES)}.")
    values = [v for v in (inputs, char_lengths, word_lengths) if v is not None]
    with tf1.variable_scope(scope, default_name=DEFAULT_SCOPE, values=values):
        inputs = tf.convert_to_tensor(inputs)
        words, chars, depth = _static_dims(inputs)
        char_lengths = _lengths(char_lengths, "char_lengths", [None, words], inputs)
        word_lengths = _lengths(word_lengths, "word_lengths", [None], inputs)
        with tf1.variable_scope(CHARS_SCOPE):
            if mode == "cloned":
                word_vectors = _chars_cloned(char_cell, inputs, char_lengths, words)
            else:
                word_vectors = _chars_batched(char_cell, inputs, char_lengths, words, chars, depth)
        with tf1.variable_scope(WORDS_SCOPE):
            word_outputs, word_state = tf1.nn.dynamic_rnn(
                word_cell, word_vectors, sequence_length=word_lengths, dtype=inputs.dtype,
                scope=names.RNN_SCOPE)
    return word_vectors, word_outputs, word_state


def _chars_cloned(cell, inputs, char_lengths, words):
    vectors = []
    for w in range(words):
        lengths = None if char_lengths is None else char_lengths[:, w]
        _, state = tf1.nn.dynamic_rnn(cell, inputs[:, w], sequence_length=lengths,
                                      dtype=inputs.dtype, scope=names.RNN_SCOPE)
        vectors.append(_state_vector(state))
    return tf.stack(vectors, axis=1)


def _chars_batched(cell, inputs, char_lengths, words, chars, depth):
    flat_inputs = tf.reshape(inputs, [-1, chars, depth])
    flat_lengths = None if char_lengths is None else tf.reshape(char_lengths, [-1])
    _, state = tf1.nn.dynamic_rnn(cell, flat_inputs, sequence_length=flat_lengths,
                                  dtype=inputs.dtype, scope=names.RNN_SCOPE)
    vectors = _state_vector(state)
    units = vectors.shape[-1]
    return tf.reshape(vectors, [-1, words, units if units is not None else -1])


def _state_vector(state):
    """The tensor that stands for a final state: `h` of an LSTM, the last layer of a stack."""
    if isinstance(state, rnn_cell.LSTMStateTuple):
        return state.h
    if isinstance(state, (tuple, list)):
        return _state_vector(state[-1])
    return state


def _static_dims(inputs):
    shape = inputs.shape
    if shape.rank != 4 or any(d is None for d in shape[1:]):
        raise IncompatibleShapeError(
            f"hierarchical_rnn: inputs {_name(inputs)!r} has shape {shape}, but needs rank 4 "
            "[batch, words, chars, depth] with static words, chars and depth: reshape it or "
            "set its static shape (tf.ensure_shape / set_shape).")
    return tuple(int(d) for d in shape[1:])


def _lengths(lengths, what, expected, inputs):
    if lengths is None:
        return None
    lengths = tf.convert_to_tensor(lengths)
    if not lengths.dtype.is_integer:
        raise IncompatibleDtypeError(
            f"hierarchical_rnn: {what} {_name(lengths)!r} has dtype {lengths.dtype.name}, but "
            "must be an integer tensor: cast it with tf.cast(..., tf.int32).")
    shape = lengths.shape
    compatible = shape.rank is None or (
        shape.rank == len(expected)
        and all(e is None or d is None or d == e for d, e in zip(shape, expected)))
    batch = inputs.shape[0]
    if compatible and shape.rank and batch is not None and shape[0] is not None:
        compatible = shape[0] == batch
    if not compatible:
        want = [inputs.shape[0]] + expected[1:]
        raise IncompatibleShapeError(
            f"hierarchical_rnn: {what} {_name(lengths)!r} has shape {shape}, but inputs "
            f"{_name(inputs)!r} of shape {inputs.shape} needs {what} of shape {want}: pass one "
            "length per " + ("word of every row." if what == "char_lengths" else "row."))
    return tf.cast(lengths, tf.int32)


def _name(tensor):
    """A graph tensor's name; eager tensors have none (their `.name` raises)."""
    try:
        return tensor.name
    except AttributeError:
        return "<eager tensor>"
