"""End to end: real legacy checkpoints (TF 0.12, TF 1.0 and today's names) migrated to one shared
layer, restored into graphs built with legacy_share's shared cells, and checked value by value
and against a NumPy re-implementation of the stacked equations.

Checkpoints come from `legacy_share.testing.legacy_graphs` (real graphs, real Savers), each generated
once per session through the `legacy_stack` fixture of conftest.py.
"""

import os
import re

import numpy as np
import pytest

from legacy_share.testing import legacy_graphs
from legacy_share.testing import tf, tf1
from legacy_share.errors import (DestinationExistsError, LayersDifferError, PlanError)
from legacy_share.migration import migrate, plan_checkpoint, unshare
from legacy_share.restoring import restore_shared
from tests import numpy_rnn
from tests.file_guard import snapshot

UNITS = 6
WRITE_VERSION = {"tf0": "V1", "tf1.0": "V1", "today": "V2", "block-tf0": "V1", "block-tf1.4": "V2"}
STRATEGIES = ("first", "layer:1", "mean")
CASES = [(cell, generation, layers)
         for cell in ("gru", "basic_lstm")
         for generation in ("tf0", "tf1.0", "today")
         for layers in (2, 3)]
CASE_IDS = [f"{c}-{g}-{n}layers" for c, g, n in CASES]
GLOBALS = ("global_step", "beta1_power", "beta2_power")
EXTRAS = ("embedding", "softmax_w", "softmax_b")
CELL_SCOPE = {"gru": "gru_cell", "basic_lstm": "basic_lstm_cell", "lstm": "lstm_cell",
              "basic_rnn": "basic_rnn_cell"}
CELL_PIECES = {
    "gru": ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"),
    "basic_lstm": ("kernel", "bias"),
    "lstm": ("kernel", "bias", "w_f_diag", "w_i_diag", "w_o_diag"),
    "basic_rnn": ("kernel", "bias"),
}
LAYER = re.compile(r"^cell_(\d+)$")
WORD = re.compile(r"^word_(\d+)$")
SLOT = re.compile(r"/Adam(_1)?$")


def stack_kwargs(cell, generation, layers, **more):
    return dict(cell=cell, generation=generation, layers=layers, num_units=UNITS,
                write_version=WRITE_VERSION[generation], **more)


# --------------------------------------------------------------------------------- helpers


def read_checkpoint(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def layer_of(name, pattern=LAYER):
    """(layer, the name with layer 0) of a today name, or (None, name)."""
    return legacy_graphs.layer_of(name, pattern)


def expected_migration(stack, strategy, pattern=LAYER, drop_optimizer_state=False):
    """What migrating `stack` must write, computed from its values in NumPy -> (values, merged names)."""
    out, groups = {}, {}
    for name, value in stack.values.items():
        today = stack.renamed[name]
        if drop_optimizer_state and (SLOT.search(today) or today.endswith("_power")):
            continue
        layer, merged = layer_of(today, pattern)
        if layer is None:
            out[today] = value
        else:
            groups.setdefault(merged, {})[layer] = value
    for merged, by_layer in groups.items():
        layers = sorted(by_layer)
        if strategy in ("first", "strict"):
            out[merged] = by_layer[layers[0]]
        elif strategy.startswith("layer:"):
            out[merged] = by_layer[int(strategy.split(":")[1])]
        else:
            stacked = np.stack([by_layer[k].astype(np.float64) for k in layers])
            out[merged] = stacked.mean(axis=0).astype(by_layer[layers[0]].dtype)
    return out, set(groups)


def assert_checkpoint(got, expected, merged, exact_merge=True):
    """Same names, dtypes and shapes; unmerged tensors bit for bit; merged ones exact or within 1e-6."""
    assert sorted(got) == sorted(expected)
    for name, want in expected.items():
        value = got[name]
        assert value.dtype == want.dtype and value.shape == want.shape, name
        if name in merged and not exact_merge:
            np.testing.assert_allclose(value, want, rtol=1e-6, atol=1e-7, err_msg=name)
        else:
            assert value.tobytes() == want.tobytes(), name


def numpy_stack(cell, weights, top, layers, inputs, shared):
    """Outputs [batch, time, units] of a stack in scope `top` from today-named `weights`."""
    steps, states = [], []
    batch = inputs.shape[0]
    for i in range(layers):
        prefix = f"{top}/multi_rnn_cell/cell_{0 if shared else i}/{CELL_SCOPE[cell]}"
        w = [weights[f"{prefix}/{piece}"] for piece in CELL_PIECES[cell]]
        units = w[1].shape[0] // {"gru": 2, "basic_lstm": 4, "lstm": 4}[cell]
        zeros = np.zeros((batch, units))
        if cell == "gru":
            steps.append(numpy_rnn.gru_cell(w))
            states.append(zeros)
        elif cell == "basic_lstm":
            steps.append(numpy_rnn.basic_lstm_cell(w))
            states.append((zeros, zeros))
        else:
            steps.append(lambda x, s, w=w: numpy_rnn.lstm_step(x, s, *w))
            states.append((zeros, zeros))
    outputs, _ = numpy_rnn.run_stack(steps, states, inputs.astype(np.float64))
    return outputs


def numpy_outputs(cell, weights, layers, inputs, bidirectional, shared):
    if not bidirectional:
        return numpy_stack(cell, weights, "rnn", layers, inputs, shared)
    fw = numpy_stack(cell, weights, "bidirectional_rnn/fw", layers, inputs, shared)
    bw = numpy_stack(cell, weights, "bidirectional_rnn/bw", layers, inputs[:, ::-1], shared)
    return np.concatenate([fw, bw[:, ::-1]], axis=2)


def run_graph(stack, prefix, generation="shared", optimizer=True, restore=None, **build):
    """Builds `stack`'s model as `generation`, restores `prefix` with a strict Saver (or calls
    `restore(session, prefix)`) -> (graph variable names, rnn_inputs, outputs, variable values)."""
    options = dict(cell=stack.cell, layers=stack.layers, num_units=stack.num_units,
                   input_depth=stack.input_depth, bidirectional=stack.bidirectional,
                   use_peepholes=stack.use_peepholes, extra_tensors=stack.extra_tensors,
                   num_proj=stack.num_proj, seq2seq=stack.seq2seq)
    options.update(build)
    with tf1.Graph().as_default() as graph:
        model = legacy_graphs.build_stack(generation=generation, optimizer=optimizer, **options)
        variables = tf1.global_variables()
        with tf1.Session(graph=graph) as session:
            if restore is None:
                tf1.train.Saver().restore(session, prefix)
            else:
                restore(session, prefix)
            rnn_inputs, outputs, values = session.run(
                [model.rnn_inputs, model.outputs, {v.op.name: v for v in variables}],
                {model.inputs: stack.feed["inputs"]})
    return set(values), rnn_inputs, outputs, values


# --------------------------------------------------------------- the generator on its own

TF0_GRU = [
    "RNN/MultiRNNCell/Cell0/GRUCell/Candidate/Linear/Bias",
    "RNN/MultiRNNCell/Cell0/GRUCell/Candidate/Linear/Matrix",
    "RNN/MultiRNNCell/Cell0/GRUCell/Gates/Linear/Bias",
    "RNN/MultiRNNCell/Cell0/GRUCell/Gates/Linear/Matrix",
    "RNN/MultiRNNCell/Cell1/GRUCell/Candidate/Linear/Bias",
    "RNN/MultiRNNCell/Cell1/GRUCell/Candidate/Linear/Matrix",
    "RNN/MultiRNNCell/Cell1/GRUCell/Gates/Linear/Bias",
    "RNN/MultiRNNCell/Cell1/GRUCell/Gates/Linear/Matrix",
]
TF0_BI_BASIC_LSTM = [
    "BiRNN/BW/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Bias",
    "BiRNN/BW/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Matrix",
    "BiRNN/BW/MultiRNNCell/Cell1/BasicLSTMCell/Linear/Bias",
    "BiRNN/BW/MultiRNNCell/Cell1/BasicLSTMCell/Linear/Matrix",
    "BiRNN/FW/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Bias",
    "BiRNN/FW/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Matrix",
    "BiRNN/FW/MultiRNNCell/Cell1/BasicLSTMCell/Linear/Bias",
    "BiRNN/FW/MultiRNNCell/Cell1/BasicLSTMCell/Linear/Matrix",
]
TF0_LSTM_PEEPHOLES = [
    "RNN/MultiRNNCell/Cell0/LSTMCell/B",
    "RNN/MultiRNNCell/Cell0/LSTMCell/W_0",
    "RNN/MultiRNNCell/Cell0/LSTMCell/W_F_diag",
    "RNN/MultiRNNCell/Cell0/LSTMCell/W_I_diag",
    "RNN/MultiRNNCell/Cell0/LSTMCell/W_O_diag",
    "RNN/MultiRNNCell/Cell1/LSTMCell/B",
    "RNN/MultiRNNCell/Cell1/LSTMCell/W_0",
    "RNN/MultiRNNCell/Cell1/LSTMCell/W_F_diag",
    "RNN/MultiRNNCell/Cell1/LSTMCell/W_I_diag",
    "RNN/MultiRNNCell/Cell1/LSTMCell/W_O_diag",
]
TF10_GRU = [
    "rnn/multi_rnn_cell/cell_0/gru_cell/candidate/biases",
    "rnn/multi_rnn_cell/cell_0/gru_cell/candidate/weights",
    "rnn/multi_rnn_cell/cell_0/gru_cell/gates/biases",
    "rnn/multi_rnn_cell/cell_0/gru_cell/gates/weights",
    "rnn/multi_rnn_cell/cell_1/gru_cell/candidate/biases",
    "rnn/multi_rnn_cell/cell_1/gru_cell/candidate/weights",
    "rnn/multi_rnn_cell/cell_1/gru_cell/gates/biases",
    "rnn/multi_rnn_cell/cell_1/gru_cell/gates/weights",
]
TF10_BI_BASIC_LSTM = [
    "bidirectional_rnn/bw/multi_rnn_cell/cell_0/basic_lstm_cell/biases",
    "bidirectional_rnn/bw/multi_rnn_cell/cell_0/basic_lstm_cell/weights",
    "bidirectional_rnn/bw/multi_rnn_cell/cell_1/basic_lstm_cell/biases",
    "bidirectional_rnn/bw/multi_rnn_cell/cell_1/basic_lstm_cell/weights",
    "bidirectional_rnn/fw/multi_rnn_cell/cell_0/basic_lstm_cell/biases",
    "bidirectional_rnn/fw/multi_rnn_cell/cell_0/basic_lstm_cell/weights",
    "bidirectional_rnn/fw/multi_rnn_cell/cell_1/basic_lstm_cell/biases",
    "bidirectional_rnn/fw/multi_rnn_cell/cell_1/basic_lstm_cell/weights",
]
TF10_LSTM = [
    "rnn/multi_rnn_cell/cell_0/lstm_cell/biases",
    "rnn/multi_rnn_cell/cell_0/lstm_cell/weights",
    "rnn/multi_rnn_cell/cell_1/lstm_cell/biases",
    "rnn/multi_rnn_cell/cell_1/lstm_cell/weights",
]
TODAY_GRU = [
    "rnn/multi_rnn_cell/cell_0/gru_cell/candidate/bias",
    "rnn/multi_rnn_cell/cell_0/gru_cell/candidate/kernel",
    "rnn/multi_rnn_cell/cell_0/gru_cell/gates/bias",
    "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel",
    "rnn/multi_rnn_cell/cell_1/gru_cell/candidate/bias",
    "rnn/multi_rnn_cell/cell_1/gru_cell/candidate/kernel",
    "rnn/multi_rnn_cell/cell_1/gru_cell/gates/bias",
    "rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel",
]

GOLDEN = [
    ("tf0", "gru", False, False, TF0_GRU),
    ("tf0", "basic_lstm", True, False, TF0_BI_BASIC_LSTM),
    ("tf0", "lstm", False, True, TF0_LSTM_PEEPHOLES),
    ("tf1.0", "gru", False, False, TF10_GRU),
    ("tf1.0", "basic_lstm", True, False, TF10_BI_BASIC_LSTM),
    ("tf1.0", "lstm", False, False, TF10_LSTM),
    ("today", "gru", False, False, TODAY_GRU),
]


@pytest.mark.parametrize("generation, cell, bidirectional, peepholes, golden", GOLDEN,
                         ids=[f"{g[0]}-{g[1]}{'-bi' if g[2] else ''}" for g in GOLDEN])
def test_generator_writes_the_literal_legacy_names(legacy_stack, generation, cell, bidirectional,
                                                   peepholes, golden):
    stack = legacy_stack(**stack_kwargs(cell, generation, 2, bidirectional=bidirectional,
                                        use_peepholes=peepholes))
    variables = sorted(n for n in stack.values
                       if not SLOT.search(n) and n not in GLOBALS + EXTRAS)
    assert variables == golden
    slots = {f"{v}/{slot}" for v in golden + list(EXTRAS) for slot in ("Adam", "Adam_1")}
    assert set(stack.values) == set(golden) | slots | set(EXTRAS) | set(GLOBALS)
    assert stack.values["global_step"] == 3 and stack.values["global_step"].dtype == np.int64
    assert stack.values["embedding"].shape == (legacy_graphs.VOCAB, UNITS)
    if generation == "tf0":
        assert os.path.isfile(stack.prefix)  # V1: one file, no .index
    assert sum(len(names) for names in stack.layer_names) == 3 * len(golden)


@pytest.mark.parametrize("generation", ["tf0", "tf1.0"])
@pytest.mark.parametrize("cell, bidirectional", [("gru", False), ("basic_lstm", True),
                                                 ("lstm", False)])
def test_generator_renamed_matches_a_real_today_stack(legacy_stack, generation, cell,
                                                      bidirectional):
    """`renamed` maps every old name onto exactly the names and shapes today's classes save."""
    kwargs = dict(bidirectional=bidirectional, use_peepholes=cell == "lstm")
    old = legacy_stack(**stack_kwargs(cell, generation, 2, **kwargs))
    today = legacy_stack(**stack_kwargs(cell, "today", 2, **kwargs))
    renamed = {old.renamed[name]: value.shape for name, value in old.values.items()}
    assert renamed == {name: value.shape for name, value in today.values.items()}


@pytest.mark.parametrize("generation, cell, bidirectional", [
    ("tf0", "gru", False), ("tf0", "basic_lstm", True), ("tf0", "lstm", False),
    ("tf1.0", "gru", True), ("tf1.0", "basic_lstm", False), ("today", "gru", False),
    ("today", "basic_lstm", True), ("today", "lstm", False)])
def test_generator_cells_compute_todays_equations(legacy_stack, generation, cell, bidirectional):
    stack = legacy_stack(**stack_kwargs(cell, generation, 2, bidirectional=bidirectional,
                                        use_peepholes=cell == "lstm"))
    _, rnn_inputs, outputs, _ = run_graph(stack, stack.prefix, generation=generation)
    weights = {stack.renamed[n]: v for n, v in stack.values.items()}
    np.testing.assert_array_equal(rnn_inputs, weights["embedding"][stack.feed["inputs"]])
    want = numpy_outputs(cell, weights, 2, rnn_inputs, bidirectional, shared=False)
    np.testing.assert_allclose(outputs, want, atol=1e-5)


@pytest.mark.parametrize("generation, bidirectional", [("tf0", True), ("today", False)])
def test_generator_tie_layers_makes_layers_equal(legacy_stack, generation, bidirectional):
    tied = legacy_stack(**stack_kwargs("gru", generation, 3, bidirectional=bidirectional,
                                       tie_layers=True))
    trained = legacy_stack(**stack_kwargs("gru", generation, 3, bidirectional=bidirectional))
    layers = {}
    for name in tied.values:
        layer, first = layer_of(tied.renamed[name])
        if layer is not None:
            layers.setdefault(first, {})[layer] = name
    assert len(layers) == 12 * (2 if bidirectional else 1)  # 4 variables x (value, Adam, Adam_1)
    for by_layer in layers.values():
        assert sorted(by_layer) == [0, 1, 2]
        for layer in (1, 2):
            np.testing.assert_array_equal(tied.values[by_layer[layer]], tied.values[by_layer[0]])
            assert not np.array_equal(trained.values[by_layer[layer]],
                                      trained.values[by_layer[0]])


@pytest.mark.parametrize("generation", ["today", "tf0"])
def test_big_checkpoint_has_the_names_of_a_real_stack(legacy_stack, tmp_path, generation):
    real = legacy_stack(**stack_kwargs("gru", generation, 2, extra_tensors=False))
    prefix = str(tmp_path / "big")
    big = legacy_graphs.save_big_gru_checkpoint(
        prefix, layers=2, num_units=UNITS, generation=generation, batch_bytes=1000, verbose=False)
    assert big.prefix == prefix
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    assert {n: tuple(s) for n, s in shapes.items()} == {n: v.shape for n, v in real.values.items()}
    assert {n: d.as_numpy_dtype for n, d in dtypes.items()} == {
        n: v.dtype.type for n, v in real.values.items()}
    files = sorted(os.listdir(tmp_path))
    assert files[-1] == "big.index" and len(files) > 2  # several data shards, no temp folder
    assert big.nbytes == sum(v.nbytes for v in real.values.values())


# ----------------------------------------------------------------------------- migration


@pytest.fixture(scope="session")
def migrated(tmp_path_factory):
    """`migrated(stack, strategy, **options)` -> (plan, output prefix, output values), cached."""
    cache = {}

    def get(stack, strategy, **options):
        key = (stack.prefix, strategy, tuple(sorted(options.items())))
        if key not in cache:
            dst = str(tmp_path_factory.mktemp("migrated") / "shared.ckpt")
            plan = migrate(stack.prefix, dst, strategy=strategy, **options)
            cache[key] = (plan, dst, read_checkpoint(dst))
        return cache[key]

    return get


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("cell, generation, layers", CASES, ids=CASE_IDS)
def test_migrate_writes_the_merged_values(legacy_stack, migrated, cell, generation, layers,
                                          strategy):
    stack = legacy_stack(**stack_kwargs(cell, generation, layers))
    _, _, got = migrated(stack, strategy)
    expected, merged = expected_migration(stack, strategy)
    assert_checkpoint(got, expected, merged, exact_merge=strategy != "mean")
    scope = f"rnn/multi_rnn_cell/cell_0/{CELL_SCOPE[cell]}"
    for piece in CELL_PIECES[cell]:
        for suffix in ("", "/Adam", "/Adam_1"):
            assert f"{scope}/{piece}{suffix}" in got  # variables and their slots, merged alike
    assert not [name for name in got if re.search(r"cell_[1-9]|Cell\d|Linear", name)]
    for name in EXTRAS + GLOBALS:
        assert got[name].tobytes() == stack.values[name].tobytes()


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("cell, generation, layers", CASES, ids=CASE_IDS)
def test_shared_graph_restores_and_matches_numpy(legacy_stack, migrated, cell, generation, layers,
                                                 strategy):
    stack = legacy_stack(**stack_kwargs(cell, generation, layers))
    _, dst, got = migrated(stack, strategy)
    graph_names, rnn_inputs, outputs, values = run_graph(stack, dst)
    assert graph_names == set(got)  # the strict Saver found every variable, and nothing is left
    for name, value in values.items():
        assert value.tobytes() == got[name].tobytes(), name
    np.testing.assert_array_equal(rnn_inputs, got["embedding"][stack.feed["inputs"]])
    want = numpy_outputs(cell, got, layers, rnn_inputs, False, shared=True)
    np.testing.assert_allclose(outputs, want, atol=1e-5)


@pytest.mark.parametrize("cell, generation, layers", CASES, ids=CASE_IDS)
def test_strict_fails_on_a_trained_stack(legacy_stack, tmp_path, cell, generation, layers):
    stack = legacy_stack(**stack_kwargs(cell, generation, layers))
    dst = str(tmp_path / "out.ckpt")
    with pytest.raises(LayersDifferError, match=r"rnn/multi_rnn_cell/cell_0/.*differ"):
        migrate(stack.prefix, dst, strategy="strict")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("cell, generation, layers", CASES, ids=CASE_IDS)
def test_strict_passes_on_a_tied_stack_and_keeps_its_outputs(legacy_stack, migrated, cell,
                                                             generation, layers):
    stack = legacy_stack(**stack_kwargs(cell, generation, layers, tie_layers=True))
    _, dst, got = migrated(stack, "strict")
    expected, merged = expected_migration(stack, "strict")
    assert_checkpoint(got, expected, merged)
    _, _, shared_outputs, _ = run_graph(stack, dst)
    _, _, legacy_outputs, _ = run_graph(stack, stack.prefix, generation=generation)
    np.testing.assert_allclose(shared_outputs, legacy_outputs, atol=1e-6)


BIDIRECTIONAL = [("gru", "tf0", 2), ("basic_lstm", "tf1.0", 3), ("gru", "today", 3)]


@pytest.mark.parametrize("strategy", ["first", "mean"])
@pytest.mark.parametrize("cell, generation, layers", BIDIRECTIONAL,
                         ids=[f"{c}-{g}-{n}layers" for c, g, n in BIDIRECTIONAL])
def test_bidirectional_merges_forward_and_backward_separately(legacy_stack, migrated, cell,
                                                              generation, layers, strategy):
    stack = legacy_stack(**stack_kwargs(cell, generation, layers, bidirectional=True))
    _, dst, got = migrated(stack, strategy)
    expected, merged = expected_migration(stack, strategy)
    assert_checkpoint(got, expected, merged, exact_merge=strategy != "mean")
    kernel = f"multi_rnn_cell/cell_0/{CELL_SCOPE[cell]}/{CELL_PIECES[cell][0]}"
    assert not np.array_equal(got[f"bidirectional_rnn/fw/{kernel}"],
                              got[f"bidirectional_rnn/bw/{kernel}"])
    graph_names, rnn_inputs, outputs, _ = run_graph(stack, dst)
    assert graph_names == set(got)
    want = numpy_outputs(cell, got, layers, rnn_inputs, True, shared=True)
    np.testing.assert_allclose(outputs, want, atol=1e-5)


# ---------------------------------------------------------------- a cell cloned per word


@pytest.fixture(scope="session")
def word_clones(tmp_path_factory):
    return legacy_graphs.save_word_clones(str(tmp_path_factory.mktemp("words")), words=3,
                                          num_units=UNITS)


def test_word_clones_are_real_gru_cells_per_word(word_clones):
    kernels = sorted(n for n in word_clones.values if n.endswith("gates/kernel"))
    assert kernels == [f"word_{w}/rnn/gru_cell/gates/kernel" for w in range(3)]
    assert [len(names) for names in word_clones.layer_names] == [12, 12, 12]


def test_word_clones_without_group_pattern_are_copied(word_clones, migrated):
    _, _, got = migrated(word_clones, "first")
    assert_checkpoint(got, word_clones.values, set())


@pytest.mark.parametrize("strategy", ["first", "mean"])
def test_word_clones_merge_with_a_group_pattern(word_clones, migrated, strategy):
    _, dst, got = migrated(word_clones, strategy, group_patterns=(r"word_(\d+)",))
    expected, merged = expected_migration(word_clones, strategy, pattern=WORD)
    assert len(merged) == 12
    assert_checkpoint(got, expected, merged, exact_merge=strategy != "mean")
    with tf1.Graph().as_default() as graph:
        model = legacy_graphs.build_word_clones(3, UNITS, shared=True)
        with tf1.Session(graph=graph) as session:
            tf1.train.Saver().restore(session, dst)
            outputs = session.run(model.outputs, {model.inputs: word_clones.feed["inputs"]})
            assert {v.op.name for v in tf1.global_variables()} == set(got)
    chars = word_clones.feed["inputs"]
    weights = [got[f"word_0/rnn/gru_cell/{piece}"] for piece in CELL_PIECES["gru"]]
    for w in range(3):
        _, (final,) = numpy_rnn.run_stack([numpy_rnn.gru_cell(weights)],
                                          [np.zeros((chars.shape[0], UNITS))], chars[:, w])
        np.testing.assert_allclose(outputs[:, w], final, atol=1e-5)


# --------------------------------------------------------------- options, errors, safety


def test_drop_optimizer_state_restores_into_a_graph_without_optimizer(legacy_stack, migrated):
    stack = legacy_stack(**stack_kwargs("gru", "tf0", 3))
    plan, dst, got = migrated(stack, "mean", drop_optimizer_state=True)
    expected, merged = expected_migration(stack, "mean", drop_optimizer_state=True)
    assert_checkpoint(got, expected, merged, exact_merge=False)
    assert not [n for n in got if SLOT.search(n) or n.endswith("_power")]
    assert len(plan.dropped) == len(stack.values) - len(got) - 4 * 2  # 8 layer tensors merged away
    graph_names, _, _, _ = run_graph(stack, dst, optimizer=False)
    assert set(got) - graph_names == {"global_step"}


@pytest.mark.parametrize("strategy", ["first", "mean"])
def test_layer0_of_another_depth_cannot_be_shared(legacy_stack, tmp_path, strategy):
    stack = legacy_stack(**stack_kwargs("gru", "tf1.0", 3, input_depth=4))
    with pytest.raises(PlanError) as caught:
        migrate(stack.prefix, str(tmp_path / "out.ckpt"), strategy=strategy)
    message = str(caught.value)
    assert "\n" not in message
    assert re.search(r"gates/(kernel|weights)|candidate/(kernel|weights)", message)
    assert re.search(r"\[10, (12|6)\]", message) and re.search(r"\[12, (12|6)\]", message)
    assert os.listdir(tmp_path) == []


def test_layer1_of_a_stack_with_another_input_depth_feeds_a_projected_shared_graph(
        legacy_stack, migrated):
    stack = legacy_stack(**stack_kwargs("gru", "tf1.0", 3, input_depth=4))
    _, dst, got = migrated(stack, "layer:1")
    expected, merged = expected_migration(stack, "layer:1")
    assert_checkpoint(got, expected, merged)
    assert got["rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel"].shape == (2 * UNITS, 2 * UNITS)

    def restore_all_but_projection(session, prefix):
        projection = [v for v in tf1.global_variables() if v.op.name == "input_projection"]
        session.run(tf1.variables_initializer(projection))
        restored = [v for v in tf1.global_variables() if v not in projection]
        tf1.train.Saver(var_list=restored).restore(session, prefix)

    graph_names, rnn_inputs, outputs, values = run_graph(
        stack, dst, optimizer=False, project_inputs=True, restore=restore_all_but_projection)
    assert graph_names - set(got) == {"input_projection"}
    projected = got["embedding"][stack.feed["inputs"]] @ values["input_projection"]
    np.testing.assert_allclose(rnn_inputs, projected, atol=1e-6)
    want = numpy_outputs("gru", got, 3, rnn_inputs, False, shared=True)
    np.testing.assert_allclose(outputs, want, atol=1e-5)


def test_plan_checkpoint_is_a_dry_run(legacy_stack, tmp_path, monkeypatch):
    stack = legacy_stack(**stack_kwargs("basic_lstm", "tf0", 3))
    monkeypatch.chdir(tmp_path)
    folder = os.path.dirname(stack.prefix)
    before = sorted(os.listdir(folder))
    plan = plan_checkpoint(stack.prefix, strategy="mean")
    assert sorted(os.listdir(folder)) == before and os.listdir(tmp_path) == []
    expected, _ = expected_migration(stack, "mean")
    assert sorted(step.name for step in plan.steps) == sorted(expected)
    assert str(plan.strategy) == "mean"


def test_inputs_are_never_modified(legacy_stack, tmp_path):
    stacks = [legacy_stack(**stack_kwargs("gru", "tf0", 3)),
              legacy_stack(**stack_kwargs("basic_lstm", "today", 2))]
    for stack in stacks:
        before = snapshot(*stack.files)
        listing = sorted(os.listdir(os.path.dirname(stack.prefix)))
        plan_checkpoint(stack.prefix, strategy="mean")
        for k, strategy in enumerate(("first", "mean", "layer:1")):
            migrate(stack.prefix, str(tmp_path / f"{k}-{stack.generation}.ckpt"), strategy=strategy)
        with pytest.raises(LayersDifferError):
            migrate(stack.prefix, str(tmp_path / "strict.ckpt"), strategy="strict")
        run_graph(stack, stack.prefix, restore=lambda s, p: restore_shared(s, p, strategy="mean"))
        assert snapshot(*stack.files) == before
        assert sorted(os.listdir(os.path.dirname(stack.prefix))) == listing


def test_existing_destination_needs_force(legacy_stack, tmp_path):
    stack = legacy_stack(**stack_kwargs("gru", "today", 2))
    dst = str(tmp_path / "out.ckpt")
    migrate(stack.prefix, dst, strategy="first")
    with pytest.raises(DestinationExistsError, match="force"):
        migrate(stack.prefix, dst, strategy="mean")
    migrate(stack.prefix, dst, strategy="mean", force=True)
    expected, merged = expected_migration(stack, "mean")
    assert_checkpoint(read_checkpoint(dst), expected, merged, exact_merge=False)


RESTORE_CASES = [("gru", "tf0", 3, False), ("basic_lstm", "today", 2, False),
                 ("gru", "tf1.0", 2, True)]


@pytest.mark.parametrize("strategy", ["first", "mean"])
@pytest.mark.parametrize("cell, generation, layers, bidirectional", RESTORE_CASES,
                         ids=[f"{c}-{g}-{n}{'-bi' if b else ''}" for c, g, n, b in RESTORE_CASES])
def test_restore_shared_equals_migrate_then_restore(legacy_stack, migrated, cell, generation,
                                                    layers, bidirectional, strategy):
    stack = legacy_stack(**stack_kwargs(cell, generation, layers, bidirectional=bidirectional))
    _, dst, got = migrated(stack, strategy)
    _, _, via_saver, saver_values = run_graph(stack, dst)
    _, _, direct, values = run_graph(
        stack, stack.prefix, restore=lambda s, p: restore_shared(s, p, strategy=strategy))
    for name, value in saver_values.items():
        assert values[name].tobytes() == value.tobytes(), name
    np.testing.assert_array_equal(direct, via_saver)


def test_unshare_round_trip_restores_into_todays_per_layer_graph(legacy_stack, migrated,
                                                                 tmp_path):
    stack = legacy_stack(**stack_kwargs("gru", "tf1.0", 3))
    _, shared_prefix, shared = migrated(stack, "mean")
    dst = str(tmp_path / "unshared.ckpt")
    unshare(shared_prefix, dst, 3)
    got = read_checkpoint(dst)
    assert sorted(got) == sorted(set(stack.renamed.values()))
    for name, value in got.items():
        _, first = layer_of(name)
        assert value.tobytes() == shared[first].tobytes(), name
    _, _, per_layer, _ = run_graph(stack, dst, generation="today")
    _, _, one_layer, _ = run_graph(stack, shared_prefix)
    np.testing.assert_allclose(per_layer, one_layer, atol=1e-6)


@pytest.mark.parametrize("generation", ["tf0", "tf1.0"])
def test_lstm_cell_with_peepholes_migrates_and_matches_numpy(legacy_stack, migrated, generation):
    stack = legacy_stack(**stack_kwargs("lstm", generation, 2, use_peepholes=True))
    _, dst, got = migrated(stack, "mean")
    expected, merged = expected_migration(stack, "mean")
    assert_checkpoint(got, expected, merged, exact_merge=False)
    assert "rnn/multi_rnn_cell/cell_0/lstm_cell/w_f_diag/Adam_1" in got
    graph_names, rnn_inputs, outputs, _ = run_graph(stack, dst)
    assert graph_names == set(got)
    want = numpy_outputs("lstm", got, 2, rnn_inputs, False, shared=True)
    np.testing.assert_allclose(outputs, want, atol=1e-5)


def test_generator_rejects_what_it_cannot_build(tmp_path):
    with pytest.raises(ValueError, match="tie_layers needs input_depth == num_units"):
        legacy_graphs.save_legacy_stack(str(tmp_path), input_depth=4, tie_layers=True)
    with pytest.raises(ValueError, match="generation must be one of"):
        legacy_graphs.save_legacy_stack(str(tmp_path), generation="tf0.9")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------- routes: layer 0 fed by an embedding
#
# The common real checkpoint: layer 0's input is an embedding of another width than num_units,
# so its kernels cannot share with the layers above. `share=False` keeps every layer (today's
# per-layer graph); `share_from=1` keeps layer 0 and merges the rest under `cell_1`, the names of
# `MultiRNNCell([Cell(n)] + [SharedCell(n)] * (L - 1))`.

DEPTH = 4  # the embedding width, != UNITS
ROUTE_CASES = [
    dict(cell="gru", generation="tf0"),
    dict(cell="gru", generation="tf1.0"),
    dict(cell="gru", generation="today"),
    dict(cell="basic_lstm", generation="tf0"),
    dict(cell="basic_lstm", generation="tf1.0"),
    dict(cell="lstm", generation="tf0", num_proj=5),
    dict(cell="lstm", generation="tf1.0", num_proj=5),
    dict(cell="basic_rnn", generation="tf0"),
    dict(cell="basic_rnn", generation="tf1.0"),
    dict(cell="gru", generation="tf0", bidirectional=True),
    dict(cell="basic_lstm", generation="tf1.0", bidirectional=True),
    dict(cell="gru", generation="tf0", seq2seq=True),
    dict(cell="basic_lstm", generation="tf1.0", seq2seq=True),
    dict(cell="gru", generation="block-tf0"),
    dict(cell="gru", generation="block-tf1.4"),
    dict(cell="lstm", generation="block-tf0", use_peepholes=True),
]
ROUTE_IDS = ["-".join([c["cell"], c["generation"]] + [k for k in (
    "num_proj", "bidirectional", "seq2seq", "use_peepholes") if c.get(k)])
             for c in ROUTE_CASES]
ROUTES = {"no-share": dict(share=False), "share-from-1": dict(share_from=1)}


def route_stack(legacy_stack, case):
    options = dict(case)
    return legacy_stack(**stack_kwargs(options.pop("cell"), options.pop("generation"), 3,
                                       input_depth=DEPTH, **options))


def route_expected(stack, share_from):
    """What migrating `stack` with `share_from` (None: no sharing) by `first` writes."""
    out = {}
    for name, value in stack.values.items():
        today = stack.renamed[name]
        layer, _ = layer_of(today)
        if share_from is None or layer is None or layer <= share_from:
            out[today] = value
        # layers above share_from are merged onto layer share_from by `first`
    return out


def numpy_route(stack, weights, share_from):
    """Outputs of `stack`'s model in NumPy from today-named `weights`; layer i reads the
    weights of cell_i, or of cell_{share_from} for i >= share_from (None: per layer)."""
    ids = stack.feed["inputs"]
    scope = CELL_SCOPE[stack.cell]
    pieces = CELL_PIECES[stack.cell] if stack.cell != "lstm" else (
        ("kernel", "bias") + (("w_f_diag", "w_i_diag", "w_o_diag") if stack.use_peepholes else ())
        + (("projection/kernel",) if stack.num_proj else ()))

    def run(top, inputs, initial=None):
        steps, states = [], []
        batch = inputs.shape[0]
        for i in range(stack.layers):
            k = i if share_from is None else min(i, share_from)
            w = [weights[f"{top}/multi_rnn_cell/cell_{k}/{scope}/{p}"] for p in pieces]
            zeros = np.zeros((batch, UNITS))
            if stack.cell == "gru":
                steps.append(numpy_rnn.gru_cell(w))
                states.append(zeros)
            elif stack.cell == "basic_rnn":
                steps.append(numpy_rnn.basic_rnn_cell(w))
                states.append(zeros)
            elif stack.cell == "basic_lstm":
                steps.append(numpy_rnn.basic_lstm_cell(w))
                states.append((zeros, zeros))
            else:
                proj = dict(projection_kernel=w[-1]) if stack.num_proj else {}
                core = w[:-1] if stack.num_proj else w
                steps.append(lambda x, s, core=core, proj=proj: numpy_rnn.lstm_step(x, s, *core,
                                                                                   **proj))
                states.append((zeros, np.zeros((batch, stack.num_proj or UNITS))))
        return numpy_rnn.run_stack(steps, initial or states, inputs)

    embedded = weights["embedding"].astype(np.float64)[ids]
    if stack.seq2seq:
        _, final = run("encoder/rnn", embedded)
        decoder_inputs = weights["decoder/decoder_embedding"].astype(np.float64)[ids]
        return run("decoder/rnn", decoder_inputs, final)[0]
    if not stack.bidirectional:
        return run("rnn", embedded)[0]
    fw, _ = run("bidirectional_rnn/fw", embedded)
    bw, _ = run("bidirectional_rnn/bw", embedded[:, ::-1])
    return np.concatenate([fw, bw[:, ::-1]], axis=2)


@pytest.fixture(scope="module")
def legacy_outputs():
    """`legacy_outputs(stack)` -> the outputs of `stack`'s own (legacy) graph, built once."""
    cache = {}

    def get(stack):
        if stack.prefix not in cache:
            cache[stack.prefix] = run_graph(stack, stack.prefix, generation=stack.generation)[2]
        return cache[stack.prefix]

    return get


@pytest.mark.parametrize("case", ROUTE_CASES, ids=ROUTE_IDS)
def test_generator_builds_every_route_case_with_todays_names_and_equations(legacy_stack,
                                                                           legacy_outputs, case):
    stack = route_stack(legacy_stack, case)
    today = legacy_stack(**stack_kwargs(stack.cell, "today", 3, input_depth=DEPTH,
                                        **{k: v for k, v in case.items()
                                           if k not in ("cell", "generation")}))
    assert {stack.renamed[n]: v.shape for n, v in stack.values.items()} == {
        n: v.shape for n, v in today.values.items()}
    weights = {stack.renamed[n]: v for n, v in stack.values.items()}
    kernel0 = [n for n in weights if re.search(r"cell_0/\w+/(gates/)?kernel$", n)][0]
    assert weights[kernel0].shape[0] == DEPTH + (stack.num_proj or UNITS)  # embedding-fed
    np.testing.assert_allclose(legacy_outputs(stack), numpy_route(stack, weights, None),
                               atol=1e-5)


@pytest.mark.parametrize("case", ROUTE_CASES, ids=ROUTE_IDS)
def test_default_migration_refuses_layer_0_with_the_two_routes(legacy_stack, tmp_path, case):
    stack = route_stack(legacy_stack, case)
    with pytest.raises(PlanError) as caught:
        migrate(stack.prefix, str(tmp_path / "out.ckpt"))
    message, tensor = str(caught.value), caught.value.tensor
    assert "\n" not in message and message.startswith(stack.prefix)
    assert "--share-from 1" in message and "--no-share" in message and "layer:" not in message
    assert tensor in stack.values and not SLOT.search(tensor) and tensor in message
    stacks = 2 if stack.bidirectional or stack.seq2seq else 1
    assert f"cannot share the layers of {stacks} stack" in message
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", ROUTE_CASES, ids=ROUTE_IDS)
def test_route_restores_strictly_into_todays_graph_and_matches_numpy(legacy_stack, migrated,
                                                                      legacy_outputs, case, route):
    stack = route_stack(legacy_stack, case)
    options = ROUTES[route]
    plan, dst, got = migrated(stack, "first", **options)
    share_from = options.get("share_from")
    assert plan.share_from == share_from
    expected = route_expected(stack, share_from)
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype and got[name].tobytes() == value.tobytes(), name
    generation = "today" if share_from is None else "shared"
    graph_names, _, outputs, values = run_graph(stack, dst, generation=generation,
                                                share_from=share_from or 0)
    assert graph_names == set(got)  # the strict Saver found every variable, and nothing is left
    if share_from == 1:
        assert not [n for n in graph_names if "cell_2" in n]  # the shared cell lives in cell_1
        assert [n for n in graph_names if "cell_1/" in n and n.endswith("/Adam")]
    for name, value in values.items():
        assert value.tobytes() == got[name].tobytes(), name
    np.testing.assert_allclose(outputs, numpy_route(stack, got, share_from), atol=1e-5)
    if share_from is None:  # renaming only: the model computes what it computed before
        np.testing.assert_allclose(outputs, legacy_outputs(stack), atol=1e-6)


@pytest.mark.parametrize("route", ROUTES)
def test_restore_shared_takes_the_routes(legacy_stack, migrated, route):
    stack = route_stack(legacy_stack, dict(cell="gru", generation="tf0", bidirectional=True))
    options = ROUTES[route]
    _, dst, _ = migrated(stack, "first", **options)
    share_from = options.get("share_from")
    generation = "today" if share_from is None else "shared"
    _, _, via_saver, saver_values = run_graph(stack, dst, generation=generation,
                                              share_from=share_from or 0)
    _, _, direct, values = run_graph(stack, stack.prefix, generation=generation,
                                     share_from=share_from or 0,
                                     restore=lambda s, p: restore_shared(s, p, **options))
    for name, value in saver_values.items():
        assert values[name].tobytes() == value.tobytes(), name
    np.testing.assert_array_equal(direct, via_saver)


def test_unshare_share_from_inverts_migrate_share_from(legacy_stack, migrated, tmp_path):
    stack = route_stack(legacy_stack, dict(cell="basic_lstm", generation="tf1.0"))
    _, shared_prefix, shared = migrated(stack, "mean", share_from=1)
    dst = str(tmp_path / "unshared.ckpt")
    plan = unshare(shared_prefix, dst, 3, share_from=1)
    assert plan.share_from == 1
    got = read_checkpoint(dst)
    assert sorted(got) == sorted(set(stack.renamed.values()))
    for name, value in got.items():
        layer, _ = layer_of(name)
        source = name.replace("cell_2", "cell_1") if layer == 2 else name
        assert value.tobytes() == shared[source].tobytes(), name
    _, _, per_layer, _ = run_graph(stack, dst, generation="today")
    _, _, one_set, _ = run_graph(stack, shared_prefix, share_from=1)
    np.testing.assert_allclose(per_layer, one_set, atol=1e-6)


# ------------------------------------------------------ every dtype and rank, bit for bit

ODD_VALUES = {
    "notes/text": np.array(b"tail\x00\x00", dtype=object),
    "notes/empty": np.array(b"", dtype=object),
    "notes/vocabulary": np.array([[b"a\x00", b""], [b"\xff\xfe", b"long" * 50]], dtype=object),
    "flags/on": np.array(True),
    "flags/mask": np.array([True, False, True]),
    "counts/int8": np.array([-128, 0, 127], np.int8),
    "counts/uint16": np.array(65535, np.uint16),
    "counts/int32": np.array(-7, np.int32),
    "signal/complex64": np.array([1 + 2j, -3j], np.complex64),
    "signal/half": np.array([[0.5, -0.0], [np.inf, np.nan]], np.float16),
    "signal/float64": np.array(np.pi),
    "empty/zero_rows": np.zeros((0, 3), np.float32),
}


@pytest.mark.parametrize("write_version", ["V1", "V2"])
def test_tf1_checkpoint_with_string_and_scalar_variables_round_trips(legacy_stack, tmp_path,
                                                                     write_version):
    stack = legacy_stack(**stack_kwargs("gru", "tf0", 2))
    folder = tmp_path / "odd"
    folder.mkdir()
    with tf1.Graph().as_default() as graph:
        for name, value in ODD_VALUES.items():
            dtype = tf.string if value.dtype == object else tf.as_dtype(value.dtype)
            tf1.get_variable(name, initializer=tf.constant(value, dtype=dtype), dtype=dtype)
        for name, value in stack.values.items():
            tf1.get_variable(name, initializer=value)
        version = getattr(tf1.train.SaverDef, write_version)
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            prefix = tf1.train.Saver(write_version=version).save(session, str(folder / "m.ckpt"))
    for options in (dict(share=False), dict(strategy="strict", tolerance=10.0, share_from=1)):
        dst = str(tmp_path / f"out{len(options)}" / "m.ckpt")
        migrate(prefix, dst, **options)
        got = read_checkpoint(dst)
        for name, want in ODD_VALUES.items():
            value = got[name]
            if want.dtype == object:  # a scalar string reads back as `bytes`
                value = np.asarray(value, dtype=object)
                assert value.shape == want.shape, name
                assert list(value.reshape(-1)) == list(want.reshape(-1)), name
            else:
                assert value.dtype == want.dtype and value.tobytes() == want.tobytes(), name


def test_tf2_object_checkpoint_still_restores_with_tf_train_checkpoint(tmp_path):
    assert tf.executing_eagerly()

    def make(values=None):
        module = tf.Module()
        module.kernel = tf.Variable(values["kernel"] if values else tf.random.normal([3, 4]))
        module.vocabulary = tf.Variable(values["vocabulary"] if values else
                                        tf.constant([b"a", b"b\x00"]))
        module.step = tf.Variable(values["step"] if values else tf.constant(5, tf.int64))
        return module

    module = make()
    optimizer_state = tf.Variable(tf.ones([3, 4]))
    saved = tf.train.Checkpoint(model=module, slot=optimizer_state).save(str(tmp_path / "tf2"))
    dst = str(tmp_path / "out" / "ckpt")
    plan = migrate(saved, dst)
    assert {s.action for s in plan.steps} == {"copy"}
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" in {s.name for s in plan.steps}
    zeros = dict(kernel=tf.zeros([3, 4]), vocabulary=tf.constant([b"", b""]),
                 step=tf.constant(0, tf.int64))
    restored = make(zeros)
    slot = tf.Variable(tf.zeros([3, 4]))
    status = tf.train.Checkpoint(model=restored, slot=slot).restore(dst)
    status.assert_existing_objects_matched().assert_consumed()
    assert restored.kernel.numpy().tobytes() == module.kernel.numpy().tobytes()
    assert list(restored.vocabulary.numpy()) == [b"a", b"b\x00"]
    assert int(restored.step.numpy()) == 5 and slot.numpy().tolist() == [[1.0] * 4] * 3


def test_the_share_from_1_graph_creates_exactly_layer_0s_and_layer_1s_variables():
    """`MultiRNNCell([GRUCell(n)] + [SharedGRUCell(n)] * 3)`: the shared cell's first call is in
    `cell_1`, so its one set is named like layer 1 and layers 2, 3 create nothing."""
    with tf1.Graph().as_default():
        legacy_graphs.build_stack("gru", 4, UNITS, DEPTH, share_from=1, optimizer=False)
        variables = {v.op.name: tuple(v.shape.as_list()) for v in tf1.global_variables()}
    stack = "rnn/multi_rnn_cell/cell_{}/gru_cell/"
    assert variables == {
        "embedding": (legacy_graphs.VOCAB, DEPTH), "softmax_w": (UNITS, legacy_graphs.VOCAB),
        "softmax_b": (legacy_graphs.VOCAB,),
        stack.format(0) + "gates/kernel": (DEPTH + UNITS, 2 * UNITS),
        stack.format(0) + "gates/bias": (2 * UNITS,),
        stack.format(0) + "candidate/kernel": (DEPTH + UNITS, UNITS),
        stack.format(0) + "candidate/bias": (UNITS,),
        stack.format(1) + "gates/kernel": (2 * UNITS, 2 * UNITS),
        stack.format(1) + "gates/bias": (2 * UNITS,),
        stack.format(1) + "candidate/kernel": (2 * UNITS, UNITS),
        stack.format(1) + "candidate/bias": (UNITS,),
    }
