"""Shared cells: names, counts, sharing, numerics against NumPy, errors, graph and eager mode."""

import inspect
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import legacy_share
from legacy_share import errors, names
from legacy_share.testing import tf, tf1
from tests import numpy_rnn

rnn_cell = tf1.nn.rnn_cell

GOLDEN_SHARED_GRU = [
    "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel:0",
    "rnn/multi_rnn_cell/cell_0/gru_cell/gates/bias:0",
    "rnn/multi_rnn_cell/cell_0/gru_cell/candidate/kernel:0",
    "rnn/multi_rnn_cell/cell_0/gru_cell/candidate/bias:0",
]


@pytest.fixture
def graph():
    with tf1.Graph().as_default() as g:
        yield g


def _variable_names():
    return [v.name for v in tf1.global_variables()]


def _run(fetches):
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        return sess.run(fetches), sess.run(tf1.global_variables())


def test_shared_gru_is_a_drop_in_gru_cell():
    cell = legacy_share.SharedGRUCell(4, activation=tf.tanh)
    assert isinstance(cell, rnn_cell.GRUCell)
    assert isinstance(cell, rnn_cell.RNNCell)
    assert cell.state_size == 4 and cell.output_size == 4


@pytest.mark.usefixtures("graph")
def test_classic_scenario_one_set_of_weights_for_a_shared_stack():
    inputs = tf1.placeholder(tf.float32, [3, 10])
    cell = legacy_share.SharedGRUCell(10)
    stack = rnn_cell.MultiRNNCell([cell] * 2)
    stack(inputs, stack.zero_state(3, tf.float32))
    assert _variable_names() == [
        "multi_rnn_cell/cell_0/gru_cell/gates/kernel:0",
        "multi_rnn_cell/cell_0/gru_cell/gates/bias:0",
        "multi_rnn_cell/cell_0/gru_cell/candidate/kernel:0",
        "multi_rnn_cell/cell_0/gru_cell/candidate/bias:0",
    ]


@pytest.mark.usefixtures("graph")
def test_classic_scenario_distinct_cells_give_one_set_per_layer():
    inputs = tf1.placeholder(tf.float32, [3, 10])
    stack = rnn_cell.MultiRNNCell([rnn_cell.GRUCell(10) for _ in range(2)])
    stack(inputs, stack.zero_state(3, tf.float32))
    assert len(_variable_names()) == 8
    assert sorted({n.split("/")[1] for n in _variable_names()}) == ["cell_0", "cell_1"]


@pytest.mark.usefixtures("graph")
@pytest.mark.parametrize("layers", [2, 3, 5])
def test_dynamic_rnn_over_shared_stack_creates_exactly_layer_0_names(layers):
    inputs = tf1.placeholder(tf.float32, [2, 7, 6])
    stack = rnn_cell.MultiRNNCell([legacy_share.SharedGRUCell(6)] * layers)
    tf1.nn.dynamic_rnn(stack, inputs, dtype=tf.float32)
    assert _variable_names() == GOLDEN_SHARED_GRU
    assert [n[:-2] for n in _variable_names()] == names.shared_variable_names()


@pytest.mark.usefixtures("graph")
@pytest.mark.parametrize("cell_class, kwargs, golden", [
    (legacy_share.SharedBasicLSTMCell, {}, ["basic_lstm_cell/kernel", "basic_lstm_cell/bias"]),
    (legacy_share.SharedBasicRNNCell, {}, ["basic_rnn_cell/kernel", "basic_rnn_cell/bias"]),
    (legacy_share.SharedLSTMCell, {"use_peepholes": True},
     ["lstm_cell/kernel", "lstm_cell/bias", "lstm_cell/w_f_diag", "lstm_cell/w_i_diag",
      "lstm_cell/w_o_diag"]),
])
def test_every_cell_kind_shares_under_layer_0_names(cell_class, kwargs, golden):
    inputs = tf1.placeholder(tf.float32, [2, 5, 4])
    stack = rnn_cell.MultiRNNCell([cell_class(4, **kwargs)] * 3)
    tf1.nn.dynamic_rnn(stack, inputs, dtype=tf.float32)
    expected = [f"rnn/multi_rnn_cell/cell_0/{n}:0" for n in golden]
    assert _variable_names() == expected
    contract = names.shared_variable_names(cell_class.CELL_SCOPE)
    assert {n[:-2] for n in expected} <= set(contract)


@pytest.mark.usefixtures("graph")
def test_scope_name_is_the_first_calls_scope():
    cell = legacy_share.SharedGRUCell(3)
    with pytest.raises(legacy_share.NotCalledError, match="call it once first"):
        cell.scope_name  # pylint: disable=pointless-statement
    stack = rnn_cell.MultiRNNCell([cell] * 2)
    tf1.nn.dynamic_rnn(stack, tf1.zeros([1, 2, 3]), dtype=tf.float32)
    assert cell.scope_name == "rnn/multi_rnn_cell/cell_0"


@pytest.mark.usefixtures("graph")
def test_calls_from_other_scopes_reuse_and_agree():
    """A character cell cloned over every word: one set of weights, same outputs for same inputs."""
    cell = legacy_share.SharedGRUCell(5)
    x = tf1.constant(np.random.RandomState(0).randn(2, 5), tf.float32)
    h = tf1.zeros([2, 5])
    outputs = []
    for word in range(4):
        with tf1.variable_scope(f"word_{word}"):
            outputs.append(cell(x, h)[0])
    assert _variable_names() == [
        "word_0/gru_cell/gates/kernel:0", "word_0/gru_cell/gates/bias:0",
        "word_0/gru_cell/candidate/kernel:0", "word_0/gru_cell/candidate/bias:0"]
    values, _ = _run(outputs)
    for value in values[1:]:
        np.testing.assert_array_equal(value, values[0])


@pytest.mark.usefixtures("graph")
def test_reuse_does_not_leak_into_the_callers_scope():
    cell = legacy_share.SharedGRUCell(3)
    with tf1.variable_scope("enc") as enc:
        cell(tf1.zeros([1, 3]), tf1.zeros([1, 3]))
        cell(tf1.zeros([1, 3]), tf1.zeros([1, 3]))
        before = tf1.get_variable("after_cell", [2])
    with tf1.variable_scope("enc"):
        again = tf1.get_variable("after_reentry", [2])
    assert not enc.reuse
    assert before.name == "enc/after_cell:0" and again.name == "enc/after_reentry:0"
    assert len(_variable_names()) == 6


class _TwoUnitCell(legacy_share.SharedCell, rnn_cell.RNNCell):
    """A shared cell of 2 units whose `call` a test writes."""

    @property
    def state_size(self):
        return 2

    @property
    def output_size(self):
        return 2


@pytest.mark.usefixtures("graph")
def test_later_call_never_creates_a_variable():
    class GrowingCell(_TwoUnitCell):
        """Creates one more variable per call: the shared scope must refuse the second."""

        def __init__(self):
            super().__init__()
            self.calls = 0

        def call(self, inputs, state):
            self.calls += 1
            weight = tf1.get_variable(f"w{self.calls}", [2])
            return inputs * weight, state

    cell = GrowingCell()
    with tf1.variable_scope("a"):
        cell(tf1.zeros([1, 2]), tf1.zeros([1, 2]))
    with tf1.variable_scope("b"), pytest.raises(errors.NewVariableError) as caught:
        cell(tf1.zeros([1, 2]), tf1.zeros([1, 2]))
    message = str(caught.value)
    assert "GrowingCell 'rnn_cell" in message and "scope 'a'" in message
    assert "tried to create a/rnn_cell/w2 (with tf.compat.v1.get_variable)" in message
    assert f"Its first call was at {__file__}:" in message
    assert "Only the first call may create variables" in message and "\n" not in message
    assert isinstance(caught.value, ValueError)  # what TensorFlow raised here before
    assert _variable_names() == ["a/rnn_cell/w1:0"]


@pytest.mark.usefixtures("graph")
def test_later_call_creating_a_tf_variable_is_a_clear_error():
    """tf.Variable ignores variable scopes: only counting the trainable variables catches it."""

    class VariableCell(_TwoUnitCell):
        """Makes a new tf.Variable on every call, as a `tf.Variable` for `get_variable` slip does."""

        def call(self, inputs, state):
            return inputs * tf1.Variable(tf.ones([2]), name="scale"), state

    cell = VariableCell()
    cell(tf1.zeros([1, 2]), tf1.zeros([1, 2]))
    with pytest.raises(errors.NewVariableError,
                       match=r"scope '<root>'.* tried to create rnn_cell/scale_1 \(with tf.Variable\)"):
        cell(tf1.zeros([1, 2]), tf1.zeros([1, 2]))


def test_call_in_another_graph_is_a_clear_error():
    cell = legacy_share.SharedGRUCell(3)
    with tf1.Graph().as_default() as first:
        with tf1.variable_scope("enc"):
            cell(tf1.zeros([1, 3]), tf1.zeros([1, 3]))
    with tf1.Graph().as_default() as second:
        with pytest.raises(errors.DifferentGraphError) as caught:
            cell(tf1.zeros([1, 3]), tf1.zeros([1, 3]))
        assert tf1.global_variables() == []
    message = str(caught.value)
    assert f"graph of its first call ({first!r}, scope 'enc')" in message
    assert f"another graph ({second!r})" in message
    assert "create a new SharedGRUCell for each graph" in message and "\n" not in message
    with first.as_default():  # the first graph still works
        cell(tf1.zeros([1, 3]), tf1.zeros([1, 3]))
        assert len(tf1.global_variables()) == 4


@pytest.mark.usefixtures("graph")
def test_input_depth_the_weights_cannot_take_is_a_clear_error():
    stack = rnn_cell.MultiRNNCell([legacy_share.SharedGRUCell(10)] * 2)
    with pytest.raises(legacy_share.IncompatibleShapeError) as caught:
        tf1.nn.dynamic_rnn(stack, tf1.zeros([2, 3, 100]), dtype=tf.float32)
    message = str(caught.value)
    assert "input depth 100" in message and "input depth 10," in message
    assert "output size (10: num_units" in message and "project the input" in message
    assert "\n" not in message


def _next_line():
    """The number of the caller's next line (where the call under test is)."""
    return inspect.currentframe().f_back.f_lineno + 1


def test_errors_of_a_later_call_say_where_the_first_call_was():
    """As make_template's "originally defined at": the caller's file:line, found through
    TensorFlow's frames (dynamic_rnn), not a line inside legacy_share or TensorFlow."""
    cell = legacy_share.SharedGRUCell(3)
    with tf1.Graph().as_default():
        first = _next_line()
        cell(tf1.zeros([1, 3]), tf1.zeros([1, 3]))
    with tf1.Graph().as_default(), pytest.raises(errors.DifferentGraphError) as caught:
        cell(tf1.zeros([1, 3]), tf1.zeros([1, 3]))
    assert str(caught.value).endswith(f" Its first call was at {__file__}:{first}.")
    with tf1.Graph().as_default():
        stack = rnn_cell.MultiRNNCell([legacy_share.SharedGRUCell(10)] * 2)
        with pytest.raises(legacy_share.IncompatibleShapeError) as caught:
            first = _next_line()
            tf1.nn.dynamic_rnn(stack, tf1.zeros([2, 3, 100]), dtype=tf.float32)
    assert str(caught.value).endswith(f" Its first call was at {__file__}:{first}.")
    assert "\n" not in str(caught.value)


@pytest.mark.usefixtures("graph")
def test_unknown_input_depth_later_is_left_to_tensorflow():
    cell = legacy_share.SharedGRUCell(3)
    cell(tf1.zeros([1, 3]), tf1.zeros([1, 3]))
    unknown = tf1.placeholder(tf.float32, [1, None])
    cell(unknown, tf1.zeros([1, 3]))  # no IncompatibleShapeError: the depth is not known yet
    assert len(_variable_names()) == 4


@pytest.mark.usefixtures("graph")
def test_failed_first_call_captures_nothing():
    cell = legacy_share.SharedGRUCell(3)
    with pytest.raises(ValueError, match="Dimensions must be equal|Incompatible shapes"):
        cell(tf1.zeros([1, 3]), tf1.zeros([1, 7]))
    with pytest.raises(legacy_share.NotCalledError):
        cell.scope_name  # pylint: disable=pointless-statement


def _random_gru_weights(rng, depth, units):
    return [rng.randn(depth + units, 2 * units).astype(np.float32) * 0.5,
            rng.randn(2 * units).astype(np.float32) * 0.5,
            rng.randn(depth + units, units).astype(np.float32) * 0.5,
            rng.randn(units).astype(np.float32) * 0.5]


def _assign(variables, values):
    return [v.assign(value) for v, value in zip(variables, values)]


@pytest.mark.usefixtures("graph")
@pytest.mark.parametrize("layers", [1, 3])
def test_shared_gru_stack_matches_numpy(layers):
    rng = np.random.RandomState(layers)
    inputs = rng.randn(2, 6, 4).astype(np.float32)
    weights = _random_gru_weights(rng, 4, 4)
    stack = rnn_cell.MultiRNNCell([legacy_share.SharedGRUCell(4)] * layers)
    outputs, state = tf1.nn.dynamic_rnn(stack, tf1.constant(inputs), dtype=tf.float32)
    with tf1.Session() as sess:
        sess.run(_assign(tf1.global_variables(), weights))
        got_outputs, got_state = sess.run([outputs, state])
    step = numpy_rnn.gru_cell(weights)
    zeros = np.zeros((2, 4), np.float32)
    want_outputs, want_states = numpy_rnn.run_stack([step] * layers, [zeros] * layers, inputs)
    np.testing.assert_allclose(got_outputs, want_outputs, rtol=1e-5, atol=1e-5)
    for got, want in zip(got_state, want_states):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.usefixtures("graph")
def test_shared_basic_lstm_stack_matches_numpy():
    rng = np.random.RandomState(7)
    inputs = rng.randn(3, 5, 4).astype(np.float32)
    weights = [rng.randn(8, 16).astype(np.float32) * 0.5, rng.randn(16).astype(np.float32) * 0.5]
    stack = rnn_cell.MultiRNNCell([legacy_share.SharedBasicLSTMCell(4)] * 2)
    outputs, _ = tf1.nn.dynamic_rnn(stack, tf1.constant(inputs), dtype=tf.float32)
    with tf1.Session() as sess:
        sess.run(_assign(tf1.global_variables(), weights))
        got = sess.run(outputs)
    zeros = (np.zeros((3, 4), np.float32),) * 2
    want, _ = numpy_rnn.run_stack([numpy_rnn.basic_lstm_cell(weights)] * 2, [zeros] * 2, inputs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.usefixtures("graph")
def test_shared_lstm_with_peepholes_and_projection_matches_numpy():
    rng = np.random.RandomState(8)
    units, proj = 5, 3
    inputs = rng.randn(2, 4, proj).astype(np.float32)
    cell = legacy_share.SharedLSTMCell(units, use_peepholes=True, num_proj=proj)
    outputs, _ = tf1.nn.dynamic_rnn(rnn_cell.MultiRNNCell([cell] * 2), tf1.constant(inputs),
                                    dtype=tf.float32)
    variables = {v.name.split("/lstm_cell/")[1][:-2]: v for v in tf1.global_variables()}
    assert sorted(variables) == ["bias", "kernel", "projection/kernel", "w_f_diag", "w_i_diag",
                                 "w_o_diag"]
    values = {name: rng.randn(*v.shape.as_list()).astype(np.float32) * 0.5
              for name, v in variables.items()}
    with tf1.Session() as sess:
        sess.run([variables[n].assign(values[n]) for n in variables])
        got = sess.run(outputs)

    def step(x, state):
        return numpy_rnn.lstm_step(
            x, state, values["kernel"], values["bias"], values["w_f_diag"], values["w_i_diag"],
            values["w_o_diag"], values["projection/kernel"])

    zeros = (np.zeros((2, units), np.float32), np.zeros((2, proj), np.float32))
    want, _ = numpy_rnn.run_stack([step] * 2, [zeros] * 2, inputs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.usefixtures("graph")
@pytest.mark.parametrize("wrap", ["dropout", "residual"])
def test_wrappers_inside_multi_rnn_cell_keep_one_set(wrap):
    cell = legacy_share.SharedGRUCell(4)
    if wrap == "dropout":
        layers = [rnn_cell.DropoutWrapper(cell, output_keep_prob=1.0) for _ in range(3)]
    else:
        layers = [rnn_cell.ResidualWrapper(cell) for _ in range(3)]
    tf1.nn.dynamic_rnn(rnn_cell.MultiRNNCell(layers), tf1.zeros([2, 3, 4]), dtype=tf.float32)
    assert _variable_names() == GOLDEN_SHARED_GRU


@pytest.mark.usefixtures("graph")
def test_static_rnn_and_bidirectional_rnn():
    fw, bw = legacy_share.SharedGRUCell(3), legacy_share.SharedGRUCell(3)
    steps = [tf1.zeros([2, 3]) for _ in range(4)]
    tf1.nn.static_rnn(rnn_cell.MultiRNNCell([fw] * 2), steps, dtype=tf.float32, scope="static")
    assert len(_variable_names()) == 4
    fw2, bw2 = legacy_share.SharedGRUCell(3), legacy_share.SharedGRUCell(3)
    tf1.nn.bidirectional_dynamic_rnn(
        rnn_cell.MultiRNNCell([fw2] * 2), rnn_cell.MultiRNNCell([bw2] * 2),
        tf1.zeros([2, 4, 3]), dtype=tf.float32)
    bidirectional = [n for n in _variable_names() if n.startswith("bidirectional_rnn/")]
    assert bidirectional == [
        f"bidirectional_rnn/{d}/multi_rnn_cell/cell_0/gru_cell/{v}:0"
        for d in ("fw", "bw")
        for v in ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")]
    del bw


@pytest.mark.usefixtures("graph")
def test_inside_a_while_loop():
    cell = legacy_share.SharedGRUCell(3)
    x = tf1.ones([2, 3])

    def body(i, h):
        return i + 1, cell(x, h)[1]

    _, final = tf1.while_loop(lambda i, h: i < 4, body, [tf.constant(0), tf1.zeros([2, 3])])
    cell(x, final)
    assert len(_variable_names()) == 4
    value, _ = _run(final)
    assert value.shape == (2, 3) and np.all(np.isfinite(value))


def test_eager_calls_create_no_new_variables():
    assert tf.executing_eagerly()
    cell = legacy_share.SharedGRUCell(3)
    x, h = tf.ones([2, 3]), tf.zeros([2, 3])
    first, _ = cell(x, h)
    count = len(cell.variables)
    with tf1.variable_scope("elsewhere"):
        second, _ = cell(x, h)
    assert count == 4 and len(cell.variables) == count
    np.testing.assert_array_equal(first.numpy(), second.numpy())


def _python(code, **env):
    environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    environment.update(env, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment, check=False)


def test_import_arranges_the_legacy_keras_switch():
    result = _python("import legacy_share, os, tensorflow as tf;"
                     "print(os.environ['TF_USE_LEGACY_KERAS'], tf.compat.v1.nn.rnn_cell.GRUCell)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 ")


def test_shared_cells_after_tensorflow_was_asked_for_keras_raise_legacy_keras_error():
    code = ("import tensorflow as tf\n"
            "try:\n    tf.compat.v1.nn.rnn_cell.GRUCell\nexcept Exception:\n    pass\n"
            "try:\n    import legacy_share\n    legacy_share.SharedGRUCell\n"
            "except ImportError as e:\n    print(type(e).__name__, '|', e)\n")
    result = _python(code)
    if tf.__version__ < "2.16":
        pytest.skip("TensorFlow < 2.16 serves the legacy cells without tf_keras")
    assert result.stdout.startswith("LegacyKerasError | "), result.stderr
    assert "import legacy_share before tensorflow" in result.stdout
    assert result.stdout.count("\n") == 1


def test_depth_check_under_disable_v2_behavior():
    """There shapes hold `Dimension`s: an unknown depth passes, a wrong one is our error."""
    result = _python(
        "import legacy_share, tensorflow as tf\n"
        "tf1 = tf.compat.v1\n"
        "tf1.disable_v2_behavior()\n"
        "cell = legacy_share.SharedGRUCell(3)\n"
        "cell(tf1.zeros([1, 3]), tf1.zeros([1, 3]))\n"
        "cell(tf1.placeholder(tf.float32, [1, None]), tf1.zeros([1, 3]))\n"
        "try:\n"
        "    cell(tf1.zeros([1, 5]), tf1.zeros([1, 3]))\n"
        "except legacy_share.IncompatibleShapeError as e:\n"
        "    print('raised', e)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("raised SharedGRUCell in scope '<root>' was built for input "
                                    "depth 3, but this call brings input depth 5")


@pytest.mark.usefixtures("graph")
def test_shape_error_of_a_projected_lstm_names_its_output_size():
    cell = legacy_share.SharedLSTMCell(8, num_proj=3)
    with pytest.raises(legacy_share.IncompatibleShapeError, match=r"output size \(3: num_units, or "
                                                                  r"num_proj"):
        tf1.nn.dynamic_rnn(rnn_cell.MultiRNNCell([cell] * 2), tf1.zeros([2, 3, 5]),
                           dtype=tf.float32)


SHARED_AND_PLAIN = [
    (legacy_share.SharedGRUCell, rnn_cell.GRUCell, {}),
    (legacy_share.SharedLSTMCell, rnn_cell.LSTMCell, {"use_peepholes": True}),
    (legacy_share.SharedBasicLSTMCell, rnn_cell.BasicLSTMCell, {}),
    (legacy_share.SharedBasicRNNCell, rnn_cell.BasicRNNCell, {}),
]
_IDS = [shared.__name__ for shared, _, _ in SHARED_AND_PLAIN]


@pytest.mark.usefixtures("graph")
@pytest.mark.parametrize("shared, plain, kwargs", SHARED_AND_PLAIN, ids=_IDS)
def test_names_are_unique_from_the_plain_cells_counter(shared, plain, kwargs):
    cells = [plain(4, **kwargs), shared(4, **kwargs), plain(4, **kwargs), shared(4, **kwargs)]
    scope = shared.CELL_SCOPE
    numbers = [int(re.fullmatch(rf"{scope}(?:_(\d+))?", c.name).group(1) or 0) for c in cells]
    assert numbers == sorted(set(numbers)), [c.name for c in cells]  # one counter, no repeats


def _variables_of(make_graph):
    with tf1.Graph().as_default():
        make_graph()
        return [(v.name, v.shape.as_list()) for v in tf1.global_variables()]


@pytest.mark.parametrize("shared, plain, kwargs", SHARED_AND_PLAIN, ids=_IDS)
def test_variable_names_equal_the_plain_cells_graph(shared, plain, kwargs):
    """Golden: the names TF's own cells give (layer 0 of `[cell] * k`, each cell in its scope)."""
    def stack(cell_class):
        cells = rnn_cell.MultiRNNCell([cell_class(4, **kwargs)] * 3)
        tf1.nn.dynamic_rnn(cells, tf1.zeros([2, 3, 4]), dtype=tf.float32)

    def two_cells(cell_class):
        for scope in ("encoder", "decoder"):
            tf1.nn.dynamic_rnn(cell_class(4, **kwargs), tf1.zeros([2, 3, 4]), dtype=tf.float32,
                               scope=scope)

    for build in (stack, two_cells):
        want = _variables_of(lambda b=build: b(plain))
        assert _variables_of(lambda b=build: b(shared)) == want
    contract = names.shared_variable_names(shared.CELL_SCOPE)
    assert _variables_of(lambda: stack(shared))[0][0] == contract[0] + ":0"
    assert _variables_of(lambda: two_cells(shared))[0][0] == contract[0].replace(
        "rnn/multi_rnn_cell/cell_0/", "encoder/") + ":0"


def _keras_serialize(cell):
    """The config a Keras model file of the TF1 era holds (`use_legacy_format` where it exists)."""
    keyword = {"use_legacy_format": True} if "use_legacy_format" in inspect.signature(
        tf.keras.layers.serialize).parameters else {}
    return tf.keras.layers.serialize(cell, **keyword), keyword


@pytest.mark.usefixtures("graph")
@pytest.mark.parametrize("shared, plain, kwargs", SHARED_AND_PLAIN, ids=_IDS)
def test_keras_config_round_trip_needs_custom_objects(shared, plain, kwargs):
    del plain
    cell = shared(4, activation=tf.nn.relu, **kwargs)
    config = cell.get_config()
    again = shared.from_config(config)
    assert type(again) is shared and again.get_config() == config

    saved, keyword = _keras_serialize(cell)
    saved = json.loads(json.dumps(saved))
    assert saved["class_name"] == shared.__name__
    with pytest.raises(ValueError, match=f"Unknown layer: '{shared.__name__}'"):
        tf.keras.layers.deserialize(saved, **keyword)
    loaded = tf.keras.layers.deserialize(
        saved, custom_objects={shared.__name__: shared}, **keyword)
    assert type(loaded) is shared and loaded.get_config() == config
    with tf.keras.utils.custom_object_scope({shared.__name__: shared}):
        assert type(tf.keras.layers.deserialize(saved, **keyword)) is shared
    loaded(tf1.zeros([2, 4]), loaded.zero_state(2, tf.float32))  # a working cell again
    assert all(v.name.startswith(f"{config['name']}/") for v in tf1.global_variables())
