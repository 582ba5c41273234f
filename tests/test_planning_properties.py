"""Properties of the pure planner over random checkpoints: stacks of every generation and size.

Names are written out per generation as docs/naming.md gives them (TF <= 0.12, TF 1.0 - 1.1,
TF >= 1.2), independently of the tables in legacy_share/names.py that the planner uses.
Hypothesis keeps no example database here (`database=None`): the examples are drawn again on
every run, from a fixed seed (`derandomize`), so a failure reproduces.
"""

import datetime

from hypothesis import given, settings, strategies as st

from legacy_share.planning import (
    MERGE, TensorSpec, migrated_name, plan_migration, plan_unshare)

SETTINGS = settings(max_examples=60, deadline=datetime.timedelta(seconds=1), database=None,
                    derandomize=True)

# generation -> (rnn scope, multi-cell scope, layer scope format, {cell kind: (cell scope,
# [kernel, bias of each linear map])}).
GENERATIONS = {
    "tf0": ("RNN", "MultiRNNCell", "Cell{}", {
        "gru": ("GRUCell", ["Gates/Linear/Matrix", "Gates/Linear/Bias",
                            "Candidate/Linear/Matrix", "Candidate/Linear/Bias"]),
        "basic_lstm": ("BasicLSTMCell", ["Linear/Matrix", "Linear/Bias"]),
        "lstm": ("LSTMCell", ["W_0", "B"]),
        "basic_rnn": ("BasicRNNCell", ["Linear/Matrix", "Linear/Bias"]),
    }),
    "tf1.0": ("rnn", "multi_rnn_cell", "cell_{}", {
        "gru": ("gru_cell", ["gates/weights", "gates/biases", "candidate/weights",
                             "candidate/biases"]),
        "basic_lstm": ("basic_lstm_cell", ["weights", "biases"]),
        "lstm": ("lstm_cell", ["weights", "biases"]),
        "basic_rnn": ("basic_rnn_cell", ["weights", "biases"]),
    }),
    "today": ("rnn", "multi_rnn_cell", "cell_{}", {
        "gru": ("gru_cell", ["gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"]),
        "basic_lstm": ("basic_lstm_cell", ["kernel", "bias"]),
        "lstm": ("lstm_cell", ["kernel", "bias"]),
        "basic_rnn": ("basic_rnn_cell", ["kernel", "bias"]),
    }),
}
# Columns of each linear map's kernel (and length of its bias) in units of num_units. Kernels
# have input depth + num_units rows: 2 units, as the input depth equals num_units here.
GATES = {"gru": (2, 1), "basic_lstm": (4,), "lstm": (4,), "basic_rnn": (1,)}
SLOTS = ("Adam", "Adam_1")
LEGACY_PIECES = ("RNN", "MultiRNNCell", "GRUCell", "BasicLSTMCell", "LSTMCell", "BasicRNNCell",
                 "Linear", "Matrix", "Bias", "weights", "biases", "W_0", "B")


def _stack_specs(prefix, generation, kind, layers, units, slots):
    rnn, multi, layer_format, cells = GENERATIONS[generation]
    cell_scope, paths = cells[kind]
    specs = []
    for layer in range(layers):
        scope = f"{prefix}{rnn}/{multi}/{layer_format.format(layer)}/{cell_scope}"
        for i, width in enumerate(GATES[kind]):
            for path, shape in ((paths[2 * i], (2 * units, width * units)),
                                (paths[2 * i + 1], (width * units,))):
                specs.append(TensorSpec(f"{scope}/{path}", shape, "float32"))
                specs.extend(TensorSpec(f"{scope}/{path}/{slot}", shape, "float32")
                             for slot in slots)
    return specs


@st.composite
def checkpoints(draw, layers=None):
    """Specs of 1-3 stacks (own scope each, random generation, cell and size) plus globals."""
    count = draw(st.integers(1, 3))
    slots = SLOTS if draw(st.booleans()) else ()
    specs = [TensorSpec("global_step", (), "int64"), TensorSpec("embedding", (11, 4), "float32")]
    if slots:
        specs += [TensorSpec("beta1_power", (), "float32"),
                  TensorSpec("beta2_power", (), "float32")]
    for k in range(count):
        specs += _stack_specs(
            f"stack{k}/", draw(st.sampled_from(sorted(GENERATIONS))),
            draw(st.sampled_from(sorted(GATES))),
            layers if layers is not None else draw(st.integers(1, 5)),
            draw(st.integers(1, 6)), slots)
    return specs


def _inputs_of(plan):
    used = [source for step in plan.steps for source in step.sources]
    return used + [drop.name for drop in plan.dropped]


@SETTINGS
@given(checkpoints(), st.sampled_from(["first", "mean", "strict", "layer:0"]), st.booleans())
def test_every_input_is_used_once_or_dropped_and_outputs_are_unique(specs, strategy, drop):
    plan = plan_migration(specs, strategy=strategy, drop_optimizer_state=drop)
    assert sorted(_inputs_of(plan)) == sorted(s.name for s in specs)
    outputs = [step.name for step in plan.steps]
    assert outputs == sorted(set(outputs))
    for step in plan.steps:
        assert not set(step.name.split("/")) & set(LEGACY_PIECES), step.name
        if step.action == MERGE:
            assert "/cell_0/" in step.name and len(step.sources) == len(step.layers) >= 2
        else:
            assert "/cell_" not in step.name or "/cell_0/" in step.name
    dropped = {d.name for d in plan.dropped}
    optimizer_state = {s.name for s in specs if s.name.endswith(SLOTS) or "_power" in s.name}
    assert dropped == (optimizer_state if drop else set())


@SETTINGS
@given(st.integers(1, 5).flatmap(lambda layers: st.tuples(st.just(layers),
                                                          checkpoints(layers=layers))))
def test_migrating_then_unsharing_gives_back_the_per_layer_names_and_shapes(case):
    layers, specs = case
    shared = plan_migration(specs)
    unshared = plan_unshare([TensorSpec(s.name, s.shape, s.dtype) for s in shared.steps], layers)
    want = {migrated_name(s.name): s.shape for s in specs}
    assert {step.name: step.shape for step in unshared.steps} == want


@SETTINGS
@given(checkpoints())
def test_renaming_is_idempotent_and_keeps_todays_names(specs):
    for spec in specs:
        today = migrated_name(spec.name)
        assert migrated_name(today) == today
        if not set(spec.name.split("/")) & set(LEGACY_PIECES):  # today's names, the globals
            assert today == spec.name
