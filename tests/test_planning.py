"""Tests of the pure planning core: names, groups, strategies, errors, tables and JSON."""

import ast
import json
import pathlib
import re

import pytest

from legacy_share import planning
from legacy_share.errors import PlanError
from legacy_share.planning import (
    LayerGroup, Plan, Step, Strategy, TensorSpec, find_layer_groups, migrated_name,
    plan_migration, plan_unshare)

F32 = "float32"


def spec(name, shape=(4, 8), dtype=F32):
    return TensorSpec(name, tuple(shape), dtype)


def by_name(plan):
    return {step.name: step for step in plan.steps}


def one_line_plan_error(match, *args, **kwargs):
    with pytest.raises(PlanError, match=match) as info:
        plan_migration(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


# Golden names, written out literally: (input name, today's name).
TF0_NAMES = [
    ("RNN/GRUCell/Gates/Linear/Matrix", "rnn/gru_cell/gates/kernel"),
    ("RNN/GRUCell/Gates/Linear/Bias", "rnn/gru_cell/gates/bias"),
    ("RNN/GRUCell/Candidate/Linear/Matrix", "rnn/gru_cell/candidate/kernel"),
    ("RNN/GRUCell/Candidate/Linear/Bias", "rnn/gru_cell/candidate/bias"),
    ("RNN/BasicLSTMCell/Linear/Matrix", "rnn/basic_lstm_cell/kernel"),
    ("RNN/BasicLSTMCell/Linear/Bias", "rnn/basic_lstm_cell/bias"),
    ("RNN/LSTMCell/W_0", "rnn/lstm_cell/kernel"),
    ("RNN/LSTMCell/B", "rnn/lstm_cell/bias"),
    ("RNN/LSTMCell/W_F_diag", "rnn/lstm_cell/w_f_diag"),
    ("RNN/LSTMCell/W_I_diag", "rnn/lstm_cell/w_i_diag"),
    ("RNN/LSTMCell/W_O_diag", "rnn/lstm_cell/w_o_diag"),
    ("RNN/LSTMCell/W_P_0", "rnn/lstm_cell/projection/kernel"),
    ("RNN/BasicRNNCell/Linear/Matrix", "rnn/basic_rnn_cell/kernel"),
    ("RNN/BasicRNNCell/Linear/Bias", "rnn/basic_rnn_cell/bias"),
    ("RNN/MultiRNNCell/Cell0/GRUCell/Gates/Linear/Matrix",
     "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel"),
    ("RNN/MultiRNNCell/Cell3/BasicLSTMCell/Linear/Bias",
     "rnn/multi_rnn_cell/cell_3/basic_lstm_cell/bias"),
    ("RNN/MultiRNNCell/Cell12/LSTMCell/W_P_0",
     "rnn/multi_rnn_cell/cell_12/lstm_cell/projection/kernel"),
    ("BiRNN/FW/GRUCell/Candidate/Linear/Matrix", "bidirectional_rnn/fw/gru_cell/candidate/kernel"),
    ("BiRNN/BW/BasicRNNCell/Linear/Bias", "bidirectional_rnn/bw/basic_rnn_cell/bias"),
    ("BiRNN/FW/MultiRNNCell/Cell1/LSTMCell/B", "bidirectional_rnn/fw/multi_rnn_cell/cell_1/lstm_cell/bias"),
    ("encoder/RNN/LSTMCell/W_F_diag", "encoder/rnn/lstm_cell/w_f_diag"),
]
TF1_0_NAMES = [
    ("rnn/gru_cell/gates/weights", "rnn/gru_cell/gates/kernel"),
    ("rnn/gru_cell/gates/biases", "rnn/gru_cell/gates/bias"),
    ("rnn/gru_cell/candidate/weights", "rnn/gru_cell/candidate/kernel"),
    ("rnn/gru_cell/candidate/biases", "rnn/gru_cell/candidate/bias"),
    ("rnn/basic_lstm_cell/weights", "rnn/basic_lstm_cell/kernel"),
    ("rnn/basic_lstm_cell/biases", "rnn/basic_lstm_cell/bias"),
    ("rnn/lstm_cell/weights", "rnn/lstm_cell/kernel"),
    ("rnn/lstm_cell/biases", "rnn/lstm_cell/bias"),
    ("rnn/lstm_cell/projection/weights", "rnn/lstm_cell/projection/kernel"),
    ("rnn/basic_rnn_cell/weights", "rnn/basic_rnn_cell/kernel"),
    ("rnn/basic_rnn_cell/biases", "rnn/basic_rnn_cell/bias"),
    ("rnn/multi_rnn_cell/cell_2/gru_cell/gates/weights",
     "rnn/multi_rnn_cell/cell_2/gru_cell/gates/kernel"),
    ("bidirectional_rnn/bw/multi_rnn_cell/cell_0/lstm_cell/projection/weights",
     "bidirectional_rnn/bw/multi_rnn_cell/cell_0/lstm_cell/projection/kernel"),
]
TODAY_NAMES = [
    "rnn/gru_cell/gates/kernel", "rnn/gru_cell/gates/bias", "rnn/gru_cell/candidate/kernel",
    "rnn/gru_cell/candidate/bias", "rnn/basic_lstm_cell/kernel", "rnn/basic_lstm_cell/bias",
    "rnn/lstm_cell/kernel", "rnn/lstm_cell/bias", "rnn/lstm_cell/w_f_diag",
    "rnn/lstm_cell/w_i_diag", "rnn/lstm_cell/w_o_diag", "rnn/lstm_cell/projection/kernel",
    "rnn/basic_rnn_cell/kernel", "rnn/basic_rnn_cell/bias",
    "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel",
    "bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/w_o_diag",
]


@pytest.mark.parametrize("old,new", TF0_NAMES + TF1_0_NAMES)
def test_legacy_names_are_renamed(old, new):
    plan = plan_migration([spec(old)])
    assert plan.steps == (Step(new, (4, 8), F32, planning.RENAME, (old,)),)
    assert migrated_name(old) == new


@pytest.mark.parametrize("name", TODAY_NAMES)
def test_todays_names_are_copied(name):
    assert plan_migration([spec(name)]).steps == (Step(name, (4, 8), F32, planning.COPY, (name,)),)


SLOTS = ["Adam", "Adam_1", "Momentum", "RMSProp", "RMSProp_1", "Adagrad", "Adadelta",
         "Adadelta_1", "Ftrl", "Ftrl_1", "ExponentialMovingAverage", "MyOptimizer"]


@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("old,new", [
    ("RNN/MultiRNNCell/Cell0/GRUCell/Gates/Linear/Matrix",
     "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel"),
    ("rnn/lstm_cell/projection/weights", "rnn/lstm_cell/projection/kernel"),
    ("BiRNN/BW/LSTMCell/W_0", "bidirectional_rnn/bw/lstm_cell/kernel"),
    ("RNN/softmax_w", "RNN/softmax_w"),  # no stack says which TF wrote it: kept as written
])
def test_slots_follow_their_variable(old, new, slot):
    plan = plan_migration([spec(old), spec(f"{old}/{slot}")])
    assert [s.name for s in plan.steps] == [new, f"{new}/{slot}"]
    assert plan.steps[1].sources == (f"{old}/{slot}",)


@pytest.mark.parametrize("name", [
    "my_RNN_thing/Matrix",
    "embedding/Matrix",
    "softmax/Linear/Matrix",
    "decoder/Linear/Bias",
    "RNNs/GRUCellular/Gates/Linear/Matrix",
    "model/weights",
    "model/biases",
    "model/W_0",
    "model/B",
    "rnn/lstm_cell_extra/weights",
    "Cell0/GRUCell_x/kernel",
    "FW/x",
    "foo/RNN",
    "foo/MultiRNNCell",
    "rnn/gru_cell/my_extra/weights",
    "rnn/lstm_cell/W_F_diag_x",
    "global_step",
])
def test_no_rename_outside_whole_components_and_cell_scopes(name):
    step, = plan_migration([spec(name)]).steps
    assert (step.name, step.action) == (name, planning.COPY)


def test_cell_variable_names_only_change_below_the_cell_scope():
    plan = plan_migration([spec("Cell0/x"), spec("RNN/Linear/Matrix"), spec("BW/FW/y")])
    assert [s.name for s in plan.steps] == ["BW/FW/y", "Cell0/x", "rnn/Linear/Matrix"]


def gru_stack(prefix, layers, shapes=None, slot=None):
    """TF0.x GRU MultiRNNCell variables (gates kernel + bias) of `layers` layers under `prefix`."""
    out = []
    for layer in range(layers):
        shape = shapes[layer] if shapes else (16, 16)
        for leaf, shp in (("Gates/Linear/Matrix", shape), ("Gates/Linear/Bias", (shape[1],))):
            name = f"{prefix}/MultiRNNCell/Cell{layer}/GRUCell/{leaf}"
            out.append(spec(name, shp))
            if slot:
                out.append(spec(f"{name}/{slot}", shp))
    return out


def test_layers_merge_onto_layer_0_with_slots_in_their_own_groups():
    plan = plan_migration(gru_stack("RNN", 3, slot="Adam") + [spec("global_step", (), "int64")])
    steps = by_name(plan)
    kernel = steps["rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel"]
    assert kernel.action == planning.MERGE
    assert kernel.layers == (0, 1, 2)
    assert kernel.sources == tuple(f"RNN/MultiRNNCell/Cell{i}/GRUCell/Gates/Linear/Matrix"
                                   for i in range(3))
    adam = steps["rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel/Adam"]
    assert adam.action == planning.MERGE
    assert adam.sources == tuple(f"{s}/Adam" for s in kernel.sources)
    assert sorted(steps) == [
        "global_step",
        "rnn/multi_rnn_cell/cell_0/gru_cell/gates/bias",
        "rnn/multi_rnn_cell/cell_0/gru_cell/gates/bias/Adam",
        "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel",
        "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel/Adam",
    ]
    assert [s.name for s in plan.steps] == sorted(steps)
    assert plan.dropped == ()


def test_fw_and_bw_stacks_and_outer_scopes_are_never_merged():
    specs = gru_stack("BiRNN/FW", 2) + gru_stack("BiRNN/BW", 2, shapes=[(8, 8), (8, 8)])
    specs += gru_stack("encoder/RNN", 2) + gru_stack("decoder/RNN", 2)
    merged = [s for s in plan_migration(specs).steps if s.action == planning.MERGE]
    assert [s.name for s in merged if s.name.endswith("kernel")] == [
        "bidirectional_rnn/bw/multi_rnn_cell/cell_0/gru_cell/gates/kernel",
        "bidirectional_rnn/fw/multi_rnn_cell/cell_0/gru_cell/gates/kernel",
        "decoder/rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel",
        "encoder/rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel",
    ]
    assert all(len(s.layers) == 2 for s in merged)
    assert by_name(plan_migration(specs))[
        "bidirectional_rnn/bw/multi_rnn_cell/cell_0/gru_cell/gates/kernel"].shape == (8, 8)


def test_user_group_pattern_matches_whole_components():
    specs = [spec(f"word_{i}/rnn/gru_cell/gates/kernel") for i in range(3)]
    specs += [spec("sword_1/x"), spec("word_1x/x"), spec("word_0x/x")]
    steps = by_name(plan_migration(specs, group_patterns=[r"word_(\d+)"]))
    assert steps["word_0/rnn/gru_cell/gates/kernel"].layers == (0, 1, 2)
    assert steps["word_0/rnn/gru_cell/gates/kernel"].action == planning.MERGE
    assert {n: s.action for n, s in steps.items() if n != "word_0/rnn/gru_cell/gates/kernel"} == {
        "sword_1/x": planning.COPY, "word_1x/x": planning.COPY, "word_0x/x": planning.COPY}
    without = plan_migration(specs)
    assert all(s.action == planning.COPY for s in without.steps) and len(without.steps) == 6


def test_group_pattern_index_is_replaced_inside_its_component():
    specs = [spec(f"enc/layer{i}_lstm/w") for i in (1, 2)]
    step, = plan_migration(specs, group_patterns=[r"layer(\d+)_lstm"]).steps
    assert (step.name, step.layers) == ("enc/layer0_lstm/w", (1, 2))


def test_a_group_of_one_layer_keeps_its_name_and_is_not_merged():
    name = "rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel"
    assert plan_migration([spec(name)]).steps == (Step(name, (4, 8), F32, planning.COPY, (name,)),)
    old = "RNN/MultiRNNCell/Cell1/GRUCell/Gates/Linear/Matrix"
    assert plan_migration([spec(old)]).steps == (Step(name, (4, 8), F32, planning.RENAME, (old,)),)


def test_find_layer_groups():
    specs = gru_stack("RNN", 2, shapes=[(24, 32), (32, 32)]) + [spec("x/cell_5/y"), spec("e")]
    groups = find_layer_groups(specs)
    assert [g.name for g in groups] == ["rnn/multi_rnn_cell/cell_0/gru_cell/gates/bias",
                                        "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel"]
    assert groups[1] == LayerGroup(groups[1].name, (
        (0, spec("RNN/MultiRNNCell/Cell0/GRUCell/Gates/Linear/Matrix", (24, 32))),
        (1, spec("RNN/MultiRNNCell/Cell1/GRUCell/Gates/Linear/Matrix", (32, 32)))))
    words = find_layer_groups([spec("word_0/a"), spec("word_1/a")], group_patterns=[r"word_(\d+)"])
    assert [(g.name, [l for l, _ in g.members]) for g in words] == [("word_0/a", [0, 1])]
    assert find_layer_groups(specs, excludes=["^RNN/"]) == []


@pytest.mark.parametrize("text,expected", [
    ("first", Strategy("first")),
    ("mean", Strategy("mean")),
    ("strict", Strategy("strict")),
    ("layer:2", Strategy("layer", 2)),
    (" Layer:0 ", Strategy("layer", 0)),
])
def test_strategy_parse(text, expected):
    assert Strategy.parse(text) == expected


@pytest.mark.parametrize("text", ["last", "layer", "layer:", "layer:-1", "layer:x", "", "first:1"])
def test_strategy_parse_rejects_bad_text_with_the_valid_forms(text):
    with pytest.raises(PlanError, match=r"unknown strategy .*first, layer:K .*mean, strict"):
        Strategy.parse(text)
    with pytest.raises(PlanError, match="unknown strategy"):
        plan_migration([spec("a")], strategy=text)


@pytest.mark.parametrize("tolerance", [-1, "x", float("nan"), float("inf"), "inf"])
def test_strategy_rejects_bad_tolerance(tolerance):
    """One rule for the API and the CLI: a plan's JSON never holds `Infinity`."""
    with pytest.raises(PlanError, match="tolerance must be a finite number >= 0"):
        Strategy.parse("strict", tolerance)


DIFFERING = gru_stack("RNN", 3, shapes=[(24, 32), (32, 32), (32, 32)])
KERNEL0 = "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel"


@pytest.mark.parametrize("strategy", ["first", "mean", "strict"])
def test_equal_shapes_merge_under_first_mean_strict(strategy):
    plan = plan_migration(gru_stack("RNN", 3), strategy=strategy, tolerance=1e-6)
    step = by_name(plan)[KERNEL0]
    assert (step.action, step.shape, step.layers, step.shards) == (planning.MERGE, (16, 16), (0, 1, 2), 1)
    assert plan.strategy.kind == strategy
    assert plan.strategy.tolerance == 1e-6


@pytest.mark.parametrize("strategy", ["first", "mean", "strict"])
def test_layer_0_of_another_depth_is_refused_with_the_two_commands_that_work(strategy):
    message = one_line_plan_error("cannot share", DIFFERING, strategy=strategy)
    assert KERNEL0 in message and "RNN/MultiRNNCell/Cell0/GRUCell/Gates/Linear/Matrix" in message
    assert "layer 0: [24, 32] float32; layers 1, 2: [32, 32] float32" in message
    assert "--share-from 1" in message and "--no-share" in message
    assert "layer:" not in message and "--exclude" not in message
    # Both suggested ways out plan.
    assert by_name(plan_migration(DIFFERING, strategy=strategy, share_from=1))[
        KERNEL0.replace("cell_0", "cell_1")].layers == (1, 2)
    assert {s.action for s in plan_migration(DIFFERING, strategy=strategy, share=False).steps} == {
        planning.RENAME}


def test_the_refusal_names_the_variable_not_its_slot_and_sets_the_tensor():
    specs = gru_stack("RNN", 2, shapes=[(24, 32), (32, 32)], slot="Adam")
    with pytest.raises(PlanError) as info:
        plan_migration(sorted(specs, key=lambda s: s.name, reverse=True))
    message = str(info.value)
    assert "/Adam" not in message
    assert info.value.tensor == "RNN/MultiRNNCell/Cell0/GRUCell/Gates/Linear/Matrix"
    # A slot that sorts before the variable of its stack is still not the one named.
    odd = [spec(f"x/cell_{i}/b/Adam", (i + 1,)) for i in (0, 1)]
    odd += [spec(f"x/cell_{i}/b", (2,)) for i in (0, 1)]
    odd += [spec(f"x/cell_{i}/k", (i + 3,)) for i in (0, 1)]
    message = one_line_plan_error("cannot share", odd)
    assert "x/cell_0/k (" in message and "Adam" not in message


def test_every_stack_that_cannot_share_is_refused_in_one_message():
    specs = (gru_stack("encoder/RNN", 3, shapes=[(24, 32), (32, 32), (32, 32)])
             + gru_stack("decoder/RNN", 2, shapes=[(20, 32), (32, 32)])
             + gru_stack("BiRNN/FW", 2) + gru_stack("BiRNN/BW", 2, shapes=[(8, 32), (32, 32)]))
    message = one_line_plan_error("cannot share the layers of 3 stacks", specs)
    for stack in ("encoder/rnn", "decoder/rnn", "bidirectional_rnn/bw"):
        assert f"{stack}/multi_rnn_cell/cell_0/gru_cell/gates/kernel (" in message
    assert "bidirectional_rnn/fw" not in message
    assert message.count("--share-from 1") == 1


def test_share_from_suggests_the_layer_from_which_layers_agree():
    specs = [spec(f"x/cell_{i}/k", shape) for i, shape in enumerate([(4,), (5,), (6,), (6,)])]
    message = one_line_plan_error("cannot share", specs)
    assert "--share-from 2 (layers 0-1 keep" in message
    message = one_line_plan_error("from layer 1", specs, share_from=1)
    assert "--share-from 2" in message
    steps = by_name(plan_migration(specs, share_from=2))
    assert steps["x/cell_2/k"].layers == (2, 3) and steps["x/cell_1/k"].action == planning.COPY
    only_last = [spec(f"x/cell_{i}/k", (i + 1,)) for i in range(3)]
    message = one_line_plan_error("cannot share", only_last)
    assert "--share-from" not in message and "--no-share" in message


def test_differing_dtypes_raise():
    specs = [spec("x/cell_0/k", (2,), F32), spec("x/cell_1/k", (2,), "float64")]
    one_line_plan_error(r"cannot share .*x/cell_0/k .*layer 0: \[2\] float32; layer 1: \[2\] float64",
                        specs)


@pytest.mark.parametrize("layer,shape", [(0, (24, 32)), (1, (32, 32)), (2, (32, 32))])
def test_layer_k_takes_layer_k_and_lists_every_layer(layer, shape):
    step = by_name(plan_migration(DIFFERING, strategy=f"layer:{layer}"))[KERNEL0]
    assert (step.action, step.shape, step.layers) == (planning.MERGE, shape, (0, 1, 2))
    assert len(step.sources) == 3


def test_layer_k_missing_in_a_group_raises_naming_it():
    message = one_line_plan_error(
        "strategy layer:3 needs layer 3 but rnn/multi_rnn_cell/cell_0/gru_cell/gates/bias merges "
        "layers 0, 1, 2", DIFFERING, strategy="layer:3")
    assert "--no-share" in message
    one_line_plan_error("strategy layer:0 needs layer 0 but .* merges layers 1, 2", DIFFERING,
                        strategy="layer:0", share_from=1)


def test_mean_of_integer_tensors_raises():
    specs = [spec("x/cell_0/count", (), "int64"), spec("x/cell_1/count", (), "int64")]
    one_line_plan_error("strategy mean cannot average the int64 tensors of x/cell_0/count", specs,
                        strategy="mean")
    assert by_name(plan_migration(specs, strategy="strict"))["x/cell_0/count"].dtype == "int64"


def test_strategy_object_is_accepted():
    plan = plan_migration(gru_stack("RNN", 2), strategy=Strategy("layer", 1))
    assert plan.strategy == Strategy("layer", 1)


OPTIMIZER_STATE = [
    "RNN/GRUCell/Gates/Linear/Matrix/Adam", "RNN/GRUCell/Gates/Linear/Matrix/Adam_1",
    "embedding/Momentum", "embedding/RMSProp", "embedding/RMSProp_1", "embedding/Adagrad",
    "embedding/Adadelta", "embedding/Adadelta_1", "embedding/Ftrl", "embedding/Ftrl_1",
]


def test_drop_optimizer_state():
    globals_ = [spec("beta1_power", ()), spec("beta2_power", ()), spec("train/beta1_power_1", ())]
    kept = [spec("RNN/GRUCell/Gates/Linear/Matrix"), spec("embedding"),
            spec("embedding/ExponentialMovingAverage"), spec("global_step", (), "int64"),
            spec("signal_power", (3,))]
    specs = kept + [spec(n) for n in OPTIMIZER_STATE] + globals_
    plan = plan_migration(specs, drop_optimizer_state=True)
    assert sorted(d.name for d in plan.dropped) == sorted(OPTIMIZER_STATE + [g.name for g in globals_])
    assert [d.name for d in plan.dropped] == sorted(d.name for d in plan.dropped)
    assert all("optimizer" in d.reason for d in plan.dropped)
    assert sorted(s.name for s in plan.steps) == [
        "embedding", "embedding/ExponentialMovingAverage", "global_step",
        "rnn/gru_cell/gates/kernel", "signal_power"]
    kept_all = plan_migration(specs)
    assert kept_all.dropped == () and len(kept_all.steps) == len(specs)
    assert by_name(kept_all)["beta1_power"].action == planning.COPY


def test_excludes_copy_untouched_and_ungrouped():
    specs = gru_stack("RNN", 2) + gru_stack("BiRNN/FW", 2) + [spec("RNN/softmax")]
    plan = plan_migration(specs, excludes=[r"^RNN/MultiRNNCell/", "nothing-matches"])
    steps = by_name(plan)
    for s in gru_stack("RNN", 2):
        assert steps[s.name].action == planning.COPY
    # The excluded TF 0.x stack does not count: nothing left says which TF wrote RNN/softmax.
    assert steps["RNN/softmax"].action == planning.COPY
    assert steps["bidirectional_rnn/fw/multi_rnn_cell/cell_0/gru_cell/gates/kernel"].action == planning.MERGE


def test_drop_optimizer_state_applies_to_excluded_tensors_too():
    specs = [spec("RNN/MultiRNNCell/Cell0/x"), spec("RNN/MultiRNNCell/Cell0/x/Adam")]
    plan = plan_migration(specs, excludes=["^RNN/"], drop_optimizer_state=True)
    assert [(s.name, s.action) for s in plan.steps] == [("RNN/MultiRNNCell/Cell0/x", planning.COPY)]
    assert [d.name for d in plan.dropped] == ["RNN/MultiRNNCell/Cell0/x/Adam"]


def test_which_layer_index_of_a_name_groups_it():
    specs = [spec(f"rnn/multi_rnn_cell/cell_{o}/multi_rnn_cell/cell_{i}/w") for o in (0, 1) for i in (0, 1)]
    steps = plan_migration(specs).steps
    assert [(s.name, s.layers) for s in steps] == [
        ("rnn/multi_rnn_cell/cell_0/multi_rnn_cell/cell_0/w", (0, 1)),
        ("rnn/multi_rnn_cell/cell_1/multi_rnn_cell/cell_0/w", (0, 1))]
    words = [spec(f"word_{w}/rnn/multi_rnn_cell/cell_{i}/w") for w in (0, 1) for i in (0, 1)]
    assert [s.name for s in plan_migration(words).steps] == [
        "word_0/rnn/multi_rnn_cell/cell_0/w", "word_1/rnn/multi_rnn_cell/cell_0/w"]
    # An explicit group pattern wins over the built-in `cell_{i}`.
    assert [(s.name, s.layers) for s in plan_migration(words, group_patterns=[r"word_(\d+)"]).steps] == [
        ("word_0/rnn/multi_rnn_cell/cell_0/w", (0, 1)), ("word_0/rnn/multi_rnn_cell/cell_1/w", (0, 1))]


def test_user_renames_come_before_the_built_in_ones():
    specs = [spec("RNN/my_gru/Gates/Linear/Matrix"), spec("stack/layer3/w"), spec("stack/layer4/w"),
             spec("wrapper/model/x")]
    plan = plan_migration(specs, renames=[("my_gru", "GRUCell"), (r"layer(\d+)", r"cell_\1"),
                                          ("wrapper", ""), ("model", "net/model")])
    assert sorted(by_name(plan)) == ["net/model/x", "rnn/gru_cell/gates/kernel", "stack/cell_0/w"]
    assert by_name(plan)["stack/cell_0/w"].layers == (3, 4)
    # Whole components only: `my_gru_2` is not `my_gru`.
    assert migrated_name("a/my_gru_2/b", renames=[("my_gru", "x")]) == "a/my_gru_2/b"


def test_bad_user_options_raise():
    with pytest.raises(PlanError, match=r"rename regex '\(' is invalid"):
        plan_migration([spec("a")], renames=[("(", "x")])
    with pytest.raises(PlanError, match="is not an"):
        plan_migration([spec("a")], renames=["abc"])
    with pytest.raises(PlanError, match=r"exclude regex '\[' is invalid"):
        plan_migration([spec("a")], excludes=["["])
    with pytest.raises(PlanError, match="needs exactly one"):
        plan_migration([spec("a")], group_patterns=[r"word_\d+"])
    with pytest.raises(PlanError, match="must capture the layer index digits"):
        plan_migration([spec("word_a/x")], group_patterns=[r"word_(\w+)"])
    with pytest.raises(PlanError, match="leave nothing"):
        plan_migration([spec("a")], renames=[("a", "")])
    with pytest.raises(PlanError, match="listed twice"):
        plan_migration([spec("a"), spec("a")])


@pytest.mark.parametrize("specs,first,second", [
    ([spec("RNN/GRUCell/Gates/Linear/Matrix"), spec("rnn/gru_cell/gates/kernel")],
     "RNN/GRUCell/Gates/Linear/Matrix", "rnn/gru_cell/gates/kernel"),
    ([spec("rnn/gru_cell/gates/weights"), spec("rnn/gru_cell/gates/kernel")],
     "rnn/gru_cell/gates/weights", "rnn/gru_cell/gates/kernel"),
    ([spec("RNN/LSTMCell/W_0"), spec("rnn/lstm_cell/weights/part_0")],
     "RNN/LSTMCell/W_0", "rnn/lstm_cell/weights/part_0"),
    ([spec("x/cell_1/k"), spec("x/cell_01/k")], "x/cell_1/k", "x/cell_01/k"),
    ([spec("x/cell_0/k"), spec("x/cell_1/k"), spec("x/cell_2/k")], "x/cell_0/k", "x/cell_1/k"),
    ([spec("x/Cell0/k"), spec("x/cell_0/k")], "x/Cell0/k", "x/cell_0/k"),
])
def test_collisions_name_both_inputs(specs, first, second):
    # The excluded x/cell_0/k is copied under its name, which the group of layers 1, 2 also wants.
    excludes = ["^x/cell_0/"] if len(specs) == 3 else ()
    renames = [("Cell0", "cell_0")]
    for order in (specs, specs[::-1]):
        with pytest.raises(PlanError) as info:
            plan_migration(order, renames=renames, excludes=excludes)
        message = str(info.value)
        assert first in message and second in message and "\n" not in message


def test_excluded_tensor_colliding_with_a_renamed_one():
    old, today = "RNN/GRUCell/Gates/Linear/Bias", "rnn/gru_cell/gates/bias"
    with pytest.raises(PlanError, match=f"{today} and {old}|{old} and {today}"):
        plan_migration([spec(today), spec(old)], excludes=["^rnn/"])


def test_sharded_lstm_weights_are_concatenated_in_index_order():
    shards = [spec(f"RNN/LSTMCell/W_{k}", (2 if k else 3, 40)) for k in range(11)]
    plan = plan_migration(shards[::-1] + [spec("RNN/LSTMCell/W_0/Adam", (3, 40)),
                                          spec("RNN/LSTMCell/W_1/Adam", (2, 40))])
    kernel, adam = plan.steps
    assert kernel == Step("rnn/lstm_cell/kernel", (23, 40), F32, planning.RENAME,
                          tuple(f"RNN/LSTMCell/W_{k}" for k in range(11)), (), 11)
    assert adam == Step("rnn/lstm_cell/kernel/Adam", (5, 40), F32, planning.RENAME,
                        ("RNN/LSTMCell/W_0/Adam", "RNN/LSTMCell/W_1/Adam"), (), 2)


@pytest.mark.parametrize("pattern,new", [
    ("RNN/LSTMCell/W_P_{}", "rnn/lstm_cell/projection/kernel"),
    ("rnn/lstm_cell/weights/part_{}", "rnn/lstm_cell/kernel"),
    ("rnn/lstm_cell/projection/weights/part_{}", "rnn/lstm_cell/projection/kernel"),
])
def test_other_sharded_forms(pattern, new):
    step, = plan_migration([spec(pattern.format(k), (5, 6)) for k in range(2)]).steps
    assert (step.name, step.shape, step.shards) == (new, (10, 6), 2)
    assert step.sources == (pattern.format(0), pattern.format(1))


def test_sharded_layers_merge_layer_major():
    specs = [spec(f"RNN/MultiRNNCell/Cell{l}/LSTMCell/W_{k}", (4, 16)) for k in (1, 0) for l in (1, 0)]
    step, = plan_migration(specs).steps
    assert (step.name, step.shape, step.layers, step.shards) == (
        "rnn/multi_rnn_cell/cell_0/lstm_cell/kernel", (8, 16), (0, 1), 2)
    assert step.layer_sources() == (
        ("RNN/MultiRNNCell/Cell0/LSTMCell/W_0", "RNN/MultiRNNCell/Cell0/LSTMCell/W_1"),
        ("RNN/MultiRNNCell/Cell1/LSTMCell/W_0", "RNN/MultiRNNCell/Cell1/LSTMCell/W_1"))


def test_shard_errors():
    one_line_plan_error(r"shard 1 of rnn/lstm_cell/kernel is missing",
                        [spec("RNN/LSTMCell/W_0"), spec("RNN/LSTMCell/W_2")])
    one_line_plan_error(r"shards of rnn/lstm_cell/kernel cannot be concatenated",
                        [spec("RNN/LSTMCell/W_0", (2, 8)), spec("RNN/LSTMCell/W_1", (2, 9))])
    one_line_plan_error(r"different shard counts \(layer 0: 2, layer 1: 1\)",
                        [spec("RNN/MultiRNNCell/Cell0/LSTMCell/W_0"),
                         spec("RNN/MultiRNNCell/Cell0/LSTMCell/W_1"),
                         spec("RNN/MultiRNNCell/Cell1/LSTMCell/W_0", (8, 8))])


SHARED = [
    spec("rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel"),
    spec("rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel/Adam"),
    spec("embedding"),
    spec("global_step", (), "int64"),
]


def test_unshare_duplicates_layer_0_with_slots():
    plan = plan_unshare(SHARED, 3)
    steps = by_name(plan)
    assert len(steps) == 2 + 2 * 3
    for layer in (1, 2):
        for suffix in ("", "/Adam"):
            step = steps[f"rnn/multi_rnn_cell/cell_{layer}/gru_cell/gates/kernel{suffix}"]
            assert step.action == planning.DUPLICATE
            assert step.sources == (f"rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel{suffix}",)
            assert step.shape == (4, 8)
    assert steps["rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel"].action == planning.COPY
    assert steps["embedding"].action == planning.COPY
    assert [s.name for s in plan.steps] == sorted(steps)
    assert plan.summary() == "8 tensors out: 4 copied, 0 renamed, 4 duplicated from 2 shared tensors; 0 dropped"
    assert {s.action for s in plan_unshare(SHARED, 1).steps} == {planning.COPY}


def test_unshare_with_group_pattern():
    steps = by_name(plan_unshare([spec("word_0/w"), spec("x")], 2, group_patterns=[r"word_(\d+)"]))
    assert steps["word_1/w"] == Step("word_1/w", (4, 8), F32, planning.DUPLICATE, ("word_0/w",))


@pytest.mark.parametrize("specs,kwargs", [
    (SHARED + [spec("rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel")], {}),
    ([spec("word_2/w")], {"group_patterns": [r"word_(\d+)"]}),
])
def test_unshare_refuses_a_per_layer_checkpoint(specs, kwargs):
    with pytest.raises(PlanError, match="already per-layer"):
        plan_unshare(specs, 3, **kwargs)


@pytest.mark.parametrize("layers", [0, -2, 1.5, "3", True])
def test_unshare_needs_at_least_one_layer(layers):
    with pytest.raises(PlanError, match="layers must be an integer >= 1"):
        plan_unshare(SHARED, layers)


@pytest.mark.parametrize("share_from", [-1, 1.5, True, "1", None])
def test_share_from_must_be_a_layer_index(share_from):
    """Without the check, share_from=-1 plans a layer `cell_-1`."""
    with pytest.raises(PlanError, match=f"share_from must be an integer >= 0, got {share_from!r}"):
        plan_migration(DIFFERING, share_from=share_from)
    with pytest.raises(PlanError, match="share_from must be an integer >= 0"):
        plan_unshare(SHARED, 3, share_from=share_from)


@pytest.mark.parametrize("layers, share_from", [(1, 2), (2, 2), (3, 5)])
def test_unshare_needs_more_layers_than_share_from(layers, share_from):
    """Below share_from a shared checkpoint keeps per-layer tensors that `layers` would cut off."""
    specs = [spec(f"rnn/multi_rnn_cell/cell_{k}/gru_cell/gates/kernel") for k in
             range(share_from + 1)]
    with pytest.raises(PlanError, match=f"layers must be more than share_from \\({share_from}\\), "
                                        f"got {layers}"):
        plan_unshare(specs, layers, share_from=share_from)


def sample_plan():
    specs = gru_stack("RNN", 2) + [spec("RNN/LSTMCell/W_0", (3, 4)), spec("RNN/LSTMCell/W_1", (3, 4)),
                                   spec("emb", (7, 2)), spec("beta1_power", ())]
    return plan_migration(specs, strategy="strict", tolerance=0.5, drop_optimizer_state=True)


@pytest.mark.parametrize("make", [
    sample_plan, lambda: plan_unshare(SHARED, 2),
    lambda: plan_migration(DIFFERING, strategy="layer:1"),
    lambda: plan_migration(DIFFERING, share_from=1, strategy="strict", tolerance=0.25),
    lambda: plan_migration(DIFFERING, share=False),
    lambda: plan_migration([spec("RNN/LSTMBlockCell/W")]),
    lambda: plan_unshare([spec("x/cell_0/k"), spec("x/cell_1/k")], 3, share_from=1)])
def test_json_round_trip(make):
    plan = make()
    data = json.loads(plan.to_json())
    assert set(data) == {"strategy", "share_from", "notes", "steps", "dropped", "stacks"}
    assert Plan.from_dict(data) == plan
    assert Plan.from_json(plan.to_json()) == plan
    assert plan.to_dict() == data


def test_format_table():
    plan = sample_plan()
    lines = [line for line in plan.format_table().splitlines()
             if "TF 0.x named this scope RNN" not in line]  # tested in test_generations
    assert lines[-1] == ("4 tensors out: 1 copied, 1 renamed, 2 merged from 4 layer tensors by "
                         "strict (tolerance 0.5); 1 dropped")
    assert re.fullmatch(r"drop +beta1_power +optimizer global 'beta1_power' .*", lines[-2])
    step_lines = lines[:4]
    assert [line.split()[0] for line in step_lines] == ["copy", "rename", "merge", "merge"]
    assert len({line.index(line.split()[1]) for line in step_lines}) == 1  # names aligned
    assert len({line.index("float32") for line in step_lines}) == 1        # dtypes aligned
    assert step_lines[0].split() == ["copy", "emb", "[7,", "2]", "float32"]
    assert "RNN/LSTMCell/W_0, RNN/LSTMCell/W_1 (concat 2 shards each)" in step_lines[1]
    assert "layers 0,1: RNN/MultiRNNCell/Cell0/GRUCell/Gates/Linear/Bias" in step_lines[2]


def test_planning_imports_no_tensorflow():
    source = pathlib.Path(planning.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert not {m for m in imported if "tensorflow" in m or m.endswith("_tf") or "keras" in m}


def test_a_variable_named_like_a_layer_scope_is_not_a_layer_and_neither_are_its_slots():
    specs = [spec(f"foo/cell_{i}{slot}") for i in (0, 1) for slot in ("", "/Adam", "/Adam_1")]
    plan = plan_migration(specs)
    assert [s.name for s in plan.steps] == sorted(s.name for s in specs)
    assert {s.action for s in plan.steps} == {planning.COPY}


def test_only_adam_family_powers_are_optimizer_globals():
    specs = [spec("beta1_power", ()), spec("opt/beta2_power", ()), spec("model/signal_power", ())]
    plan = plan_migration(specs, drop_optimizer_state=True)
    assert [s.name for s in plan.steps] == ["model/signal_power"]
    assert sorted(d.name for d in plan.dropped) == ["beta1_power", "opt/beta2_power"]


def test_unshare_refuses_a_checkpoint_without_layer_0_scopes():
    one_line = r"nothing to unshare; .* migrate the checkpoint first"
    with pytest.raises(PlanError, match=one_line):
        plan_unshare([spec("RNN/MultiRNNCell/Cell0/GRUCell/Gates/Linear/Matrix")], 3)


def test_bad_tolerance_is_reported_as_given():
    with pytest.raises(PlanError, match=r"got 'abc'"):
        Strategy.parse("strict", tolerance="abc")


@pytest.mark.parametrize("dtype", ["complex64", "int64", "string", "bool"])
def test_mean_is_refused_at_plan_time_for_what_the_writer_cannot_average(dtype):
    specs = [spec(f"rnn/multi_rnn_cell/cell_{i}/x/k", (2,), dtype) for i in (0, 1)]
    with pytest.raises(PlanError, match=rf"strategy mean cannot average the {dtype} tensors"):
        plan_migration(specs, strategy="mean")


# ------------------------------------------- every name TensorFlow gave these weights
#
# Golden names written out from TensorFlow's own sources (read, not copied):
# tensorflow/contrib/rnn/python/tools/checkpoint_convert.py (r1.2 and later) `_RNN_NAME_REPLACEMENTS`
# and `_RNN_SHARDED_NAME_REPLACEMENTS`; contrib/rnn/python/ops/gru_ops.py and lstm_ops.py;
# contrib/legacy_seq2seq/python/ops/seq2seq.py; python/ops/rnn_cell.py (r0.12) for the wrappers.

# checkpoint_convert.py `_RNN_NAME_REPLACEMENTS`, every pair whose old name a real cell created:
# (old, today's). Where legacy-share goes further than checkpoint_convert, the comment says so.
CHECKPOINT_CONVERT_TABLE = [
    ("basic_rnn_cell/weights", "basic_rnn_cell/kernel"),
    ("basic_rnn_cell/biases", "basic_rnn_cell/bias"),
    ("gru_cell/gates/weights", "gru_cell/gates/kernel"),
    ("gru_cell/gates/biases", "gru_cell/gates/bias"),
    ("gru_cell/candidate/weights", "gru_cell/candidate/kernel"),
    ("gru_cell/candidate/biases", "gru_cell/candidate/bias"),
    ("basic_lstm_cell/weights", "basic_lstm_cell/kernel"),
    ("basic_lstm_cell/biases", "basic_lstm_cell/bias"),
    ("lstm_cell/weights", "lstm_cell/kernel"),
    ("lstm_cell/biases", "lstm_cell/bias"),
    ("lstm_cell/projection/weights", "lstm_cell/projection/kernel"),
    ("output_projection_wrapper/weights", "output_projection_wrapper/kernel"),
    ("output_projection_wrapper/biases", "output_projection_wrapper/bias"),
    ("input_projection_wrapper/weights", "input_projection_wrapper/kernel"),
    ("input_projection_wrapper/biases", "input_projection_wrapper/bias"),
    # checkpoint_convert keeps `lstm_block_wrapper/kernel`, a name no TF 2 cell creates; the
    # fused cell computes LSTMCell's equations, so legacy-share names it like LSTMCell.
    ("lstm_block_wrapper/weights", "lstm_cell/kernel"),
    ("lstm_block_wrapper/biases", "lstm_cell/bias"),
    ("layer_norm_basic_lstm_cell/weights", "layer_norm_basic_lstm_cell/kernel"),
    ("layer_norm_basic_lstm_cell/biases", "layer_norm_basic_lstm_cell/bias"),
    ("ugrnn_cell/weights", "ugrnn_cell/kernel"),
    ("ugrnn_cell/biases", "ugrnn_cell/bias"),
    ("nas_rnn/weights", "nas_rnn/kernel"),
    ("nas_rnn/recurrent_weights", "nas_rnn/recurrent_kernel"),
    ("intersection_rnn_cell/weights", "intersection_rnn_cell/kernel"),
    ("intersection_rnn_cell/biases", "intersection_rnn_cell/bias"),
    ("intersection_rnn_cell/in_projection/weights", "intersection_rnn_cell/in_projection/kernel"),
    ("intersection_rnn_cell/in_projection/biases", "intersection_rnn_cell/in_projection/bias"),
    ("phased_lstm_cell/mask_gates/weights", "phased_lstm_cell/mask_gates/kernel"),
    ("phased_lstm_cell/mask_gates/biases", "phased_lstm_cell/mask_gates/bias"),
    ("phased_lstm_cell/new_input/weights", "phased_lstm_cell/new_input/kernel"),
    ("phased_lstm_cell/new_input/biases", "phased_lstm_cell/new_input/bias"),
    ("phased_lstm_cell/output_gate/weights", "phased_lstm_cell/output_gate/kernel"),
    ("phased_lstm_cell/output_gate/biases", "phased_lstm_cell/output_gate/bias"),
    ("attention_cell_wrapper/weights", "attention_cell_wrapper/kernel"),
    ("attention_cell_wrapper/biases", "attention_cell_wrapper/bias"),
    ("attention_cell_wrapper/attn_output_projection/weights",
     "attention_cell_wrapper/attn_output_projection/kernel"),
    ("attention_cell_wrapper/attn_output_projection/biases",
     "attention_cell_wrapper/attn_output_projection/bias"),
    ("attention_cell_wrapper/attention/weights", "attention_cell_wrapper/attention/kernel"),
    ("attention_cell_wrapper/attention/biases", "attention_cell_wrapper/attention/bias"),
    # `_RNN_SHARDED_NAME_REPLACEMENTS`: `LSTMCell/W_` -> `lstm_cell/weights/part_` (legacy-share
    # concatenates the shards into today's one kernel, see test_sharded_*), and
    # `MultiRNNCell/Cell` -> `multi_rnn_cell/cell_`.
    ("RNN/MultiRNNCell/Cell3/LSTMCell/B", "rnn/multi_rnn_cell/cell_3/lstm_cell/bias"),
]

# Names checkpoint_convert.py maps that no real cell ever created, so legacy-share leaves them:
# GRUCell always made its variables below `gates` / `candidate` (r1.0 rnn_cell_impl.py), never
# `gru_cell/weights`; LSTMCell's projection is `_linear(..., bias=False)` (no
# `projection/biases`); no GRUCell was ever sharded into `GRUCell/W_k`, and BasicLSTMCell's
# `_linear` had no shards (`Linear/Matrix_k`).
NEVER_CREATED = ["rnn/gru_cell/weights", "rnn/gru_cell/biases",
                 "rnn/lstm_cell/projection/biases", "model/GRUCell/W_0", "model/GRUCell/W_1",
                 "model/BasicLSTMCell/Linear/Matrix_1"]

# TF <= 0.12 forms of the wrappers (python/ops/rnn_cell.py r0.12: `_linear` opened `Linear`
# with `Matrix` and `Bias`; wrapper scopes were the class names) and legacy seq2seq
# (contrib/legacy_seq2seq/python/ops/seq2seq.py: `attention_decoder`, `Attention_%d`,
# `AttnOutputProjection`, `AttnW_%d`, `AttnV_%d`; TF 1.0 `weights` / `biases`).
WRAPPER_AND_SEQ2SEQ_NAMES = [
    ("embedding_attention_seq2seq/RNN/EmbeddingWrapper/embedding",
     "embedding_attention_seq2seq/rnn/embedding_wrapper/embedding"),
    ("embedding_attention_seq2seq/embedding_attention_decoder/attention_decoder/Attention_0/"
     "Linear/Matrix",
     "embedding_attention_seq2seq/embedding_attention_decoder/attention_decoder/Attention_0/kernel"),
    ("attention_decoder/Attention_0/Linear/Matrix", "attention_decoder/Attention_0/kernel"),
    ("attention_decoder/Attention_1/Linear/Bias", "attention_decoder/Attention_1/bias"),
    ("attention_decoder/AttnOutputProjection/Linear/Matrix",
     "attention_decoder/AttnOutputProjection/kernel"),
    ("attention_decoder/AttnOutputProjection/Linear/Bias",
     "attention_decoder/AttnOutputProjection/bias"),
    ("attention_decoder/Linear/Matrix", "attention_decoder/kernel"),
    ("attention_decoder/Linear/Bias", "attention_decoder/bias"),
    ("attention_decoder/Attention_0/weights", "attention_decoder/Attention_0/kernel"),
    ("attention_decoder/AttnOutputProjection/biases", "attention_decoder/AttnOutputProjection/bias"),
    ("attention_decoder/AttnW_0", "attention_decoder/AttnW_0"),
    ("attention_decoder/AttnV_0", "attention_decoder/AttnV_0"),
    ("attention_decoder/GRUCell/Gates/Linear/Matrix", "attention_decoder/gru_cell/gates/kernel"),
    ("RNN/OutputProjectionWrapper/Linear/Matrix", "rnn/output_projection_wrapper/kernel"),
    ("RNN/OutputProjectionWrapper/Linear/Bias", "rnn/output_projection_wrapper/bias"),
    ("RNN/InputProjectionWrapper/Linear/Matrix", "rnn/input_projection_wrapper/kernel"),
    ("RNN/AttentionCellWrapper/Linear/Matrix", "rnn/attention_cell_wrapper/kernel"),
    ("RNN/AttentionCellWrapper/Attention/Linear/Matrix", "rnn/attention_cell_wrapper/attention/kernel"),
    ("RNN/AttentionCellWrapper/Attention/AttnW", "rnn/attention_cell_wrapper/attention/attn_w"),
    ("RNN/AttentionCellWrapper/Attention/AttnV", "rnn/attention_cell_wrapper/attention/attn_v"),
    ("RNN/AttentionCellWrapper/AttnOutputProjection/Linear/Bias",
     "rnn/attention_cell_wrapper/attn_output_projection/bias"),
    ("RNN/AttentionCellWrapper/LSTMCell/W_0", "rnn/attention_cell_wrapper/lstm_cell/kernel"),
]

# contrib/rnn/python/ops/lstm_ops.py, every generation -> LSTMCell's names (docs/keras.md).
LSTM_BLOCK_NAMES = [
    ("RNN/LSTMBlockCell/W", "rnn/lstm_cell/kernel"),              # TF 0.11 - 0.12
    ("RNN/LSTMBlockCell/b", "rnn/lstm_cell/bias"),
    ("RNN/LSTMBlockCell/wci", "rnn/lstm_cell/w_i_diag"),
    ("RNN/LSTMBlockCell/wcf", "rnn/lstm_cell/w_f_diag"),
    ("RNN/LSTMBlockCell/wco", "rnn/lstm_cell/w_o_diag"),
    ("RNN/MultiRNNCell/Cell1/LSTMBlockCell/W", "rnn/multi_rnn_cell/cell_1/lstm_cell/kernel"),
    ("RNN/LSTMCell/W_0", "rnn/lstm_cell/kernel"),                 # 0.12 use_compatible_names
    ("RNN/LSTMCell/W_I_diag", "rnn/lstm_cell/w_i_diag"),
    ("rnn/lstm_cell/weights", "rnn/lstm_cell/kernel"),            # TF 1.0 - 1.1
    ("rnn/lstm_cell/w_f_diag", "rnn/lstm_cell/w_f_diag"),         # TF >= 1.2: today's
    ("encoder/lstm_block_wrapper/weights", "encoder/lstm_cell/kernel"),  # fused, TF <= 1.1
    ("encoder/lstm_block_wrapper/kernel", "encoder/lstm_cell/kernel"),   # fused, TF 1.2 - 1.4
    ("encoder/lstm_block_wrapper/bias", "encoder/lstm_cell/bias"),
    ("rnn/lstm_cell/kernel", "rnn/lstm_cell/kernel"),                    # fused, TF 1.5
    ("encoder/lstm_fused_cell/kernel", "encoder/lstm_cell/kernel"),      # fused, TF >= 1.6
    ("encoder/lstm_fused_cell/w_o_diag", "encoder/lstm_cell/w_o_diag"),
]


@pytest.mark.parametrize("old,new", CHECKPOINT_CONVERT_TABLE + WRAPPER_AND_SEQ2SEQ_NAMES
                         + LSTM_BLOCK_NAMES)
def test_golden_names_from_tensorflows_sources(old, new):
    assert migrated_name(old) == new
    plan = plan_migration([spec(old), spec(old + "/Adam")])
    assert [s.name for s in plan.steps] == [new, new + "/Adam"]


@pytest.mark.parametrize("name", NEVER_CREATED)
def test_checkpoint_convert_names_no_real_cell_created_are_left_alone(name):
    assert migrated_name(name) == name


# contrib/rnn/python/ops/gru_ops.py: GRUBlockCell (TF <= 1.4 scope `GRUBlockCell`) created
# `w_ru` [d+n, 2n], `b_ru` [2n], `w_c` [d+n, n], `b_c` [n]; the master-branch version of Dec
# 2017 (scope `gru_cell`) saved the gate kernel [d+n, 2n] as `w_c` and the candidate kernel as
# `w_ru`. Shapes, not names, say which is which.
@pytest.mark.parametrize("scope,gate_name,candidate_name", [
    ("RNN/MultiRNNCell/Cell0/GRUBlockCell", "w_ru", "w_c"),
    ("rnn/multi_rnn_cell/cell_0/GRUBlockCell", "w_ru", "w_c"),
    ("rnn/multi_rnn_cell/cell_0/gru_cell", "w_c", "w_ru"),
])
def test_gru_block_cell_kernels_are_told_apart_by_shape(scope, gate_name, candidate_name):
    d, n = 5, 3
    specs = [spec(f"{scope}/{gate_name}", (d + n, 2 * n)), spec(f"{scope}/b_ru", (2 * n,)),
             spec(f"{scope}/{candidate_name}", (d + n, n)), spec(f"{scope}/b_c", (n,)),
             spec(f"{scope}/{gate_name}/Adam", (d + n, 2 * n))]
    steps = by_name(plan_migration(specs))
    prefix = "rnn/multi_rnn_cell/cell_0/gru_cell"
    assert steps[f"{prefix}/gates/kernel"].sources == (f"{scope}/{gate_name}",)
    assert steps[f"{prefix}/gates/kernel/Adam"].sources == (f"{scope}/{gate_name}/Adam",)
    assert steps[f"{prefix}/candidate/kernel"].sources == (f"{scope}/{candidate_name}",)
    assert steps[f"{prefix}/gates/bias"].sources == (f"{scope}/b_ru",)
    assert steps[f"{prefix}/candidate/bias"].sources == (f"{scope}/b_c",)


@pytest.mark.parametrize("name,says", [
    ("RNN/LSTMBlockCell/W", ["cell_clip=3.0", "forget_bias", "wci/wcf/wco", "--meta",
                             "--cell-clip 3"]),
    ("enc/lstm_block_wrapper/kernel", ["+-3", "forget_bias", "--meta", "--cell-clip 3"]),
    ("enc/lstm_fused_cell/kernel", ["forget_bias", "--meta"]),
])
def test_block_cells_hidden_settings_become_plan_notes(name, says):
    plan = plan_migration([spec(name), spec(name + "/Adam")])
    note, = [n for n in plan.notes if not n.startswith("RNN: TF 0.x named this scope")]
    assert name.rsplit("/", 1)[0] in note and all(word in note for word in says)
    assert f"note: {note}" in plan.format_table()
    assert plan_migration([spec("rnn/lstm_cell/kernel")]).notes == ()


def test_route_of_a_group():
    f = planning.route
    assert f([(0, (4, 8), F32), (1, (4, 8), F32)]).text == "merged (default)"
    late = f([(0, (2, 8), F32), (1, (4, 8), F32), (2, (4, 8), F32)])
    assert (late.merges_by_default, late.share_from) == (False, 1)
    assert late.text == "refused; --share-from 1 or --no-share"
    assert f([(0, (2,), F32), (1, (3,), F32)]).text == "refused; --no-share keeps every layer"
    assert f([(0, (2,), F32), (1, (3,), F32)], share=False).text == "kept per layer (--no-share)"


def test_every_planning_module_is_pure_and_small():
    for module in ("planning", "plans", "grouping", "renaming", "tables", "names"):
        path = pathlib.Path(planning.__file__).with_name(f"{module}.py")
        source = path.read_text()
        assert len(source.splitlines()) <= 450, module
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                imported = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported = {node.module}
            else:
                continue
            assert not {m for m in imported if "tensorflow" in m or m.endswith("_tf")
                        or "keras" in m or m in ("os", "io", "shutil")}, module
