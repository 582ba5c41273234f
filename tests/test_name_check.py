"""The name check: every stack a plan calls exact is rebuilt in TensorFlow and must match.

Golden names are TensorFlow's own (r1.15 `rnn_cell_impl.py`: GRUCell `gates/kernel`
[d+n, 2n], `gates/bias`, `candidate/kernel` [d+n, n], `candidate/bias`; BasicLSTMCell /
BasicRNNCell `kernel`, `bias`; LSTMCell `kernel` [d+p, 4n], `bias`, `w_f_diag`, `w_i_diag`,
`w_o_diag`, `projection/kernel` [n, p]; MultiRNNCell `cell_%d`; `rnn.py`: dynamic_rnn `rnn`,
bidirectional_dynamic_rnn `bidirectional_rnn/fw`, `/bw`). Checkpoints are written by TF's Saver.
"""

import dataclasses
import json
import os

import numpy as np
import pytest

from legacy_share.testing import tf, tf1, rnn_cell  # first: this process serves the legacy cells
from legacy_share import graph_names, migration, opening, planning, stack_graphs
from legacy_share.errors import NameCheckError
from legacy_share.stack_graphs import (BIDIRECTIONAL, BIDIRECTIONAL_SCOPED,
                                       BIDIRECTIONAL_SHARED, CELL_CALL,
                                       DYNAMIC_RNN, StackGraph)
from tests.file_guard import error_line, run_main, save_variables

GRU = ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")


def _gru(prefix, depth, n):
    return {f"{prefix}/gru_cell/gates/kernel": (depth + n, 2 * n),
            f"{prefix}/gru_cell/gates/bias": (2 * n,),
            f"{prefix}/gru_cell/candidate/kernel": (depth + n, n),
            f"{prefix}/gru_cell/candidate/bias": (n,)}


GOLDEN = [
    (StackGraph("", DYNAMIC_RNN, "gru_cell", 8, 5, 2),
     {**_gru("rnn/multi_rnn_cell/cell_0", 5, 8), **_gru("rnn/multi_rnn_cell/cell_1", 8, 8)}),
    (StackGraph("", DYNAMIC_RNN, "gru_cell", 8, 8, 3, 0), _gru("rnn/multi_rnn_cell/cell_0", 8, 8)),
    (StackGraph("", DYNAMIC_RNN, "gru_cell", 8, 5, 3, 1),
     {**_gru("rnn/multi_rnn_cell/cell_0", 5, 8), **_gru("rnn/multi_rnn_cell/cell_1", 8, 8)}),
    (StackGraph("model/RNN", CELL_CALL, "basic_lstm_cell", 6, 4, 2),
     {"model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/kernel": (10, 24),
      "model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/bias": (24,),
      "model/RNN/multi_rnn_cell/cell_1/basic_lstm_cell/kernel": (12, 24),
      "model/RNN/multi_rnn_cell/cell_1/basic_lstm_cell/bias": (24,)}),
    (StackGraph("enc", BIDIRECTIONAL, "lstm_cell", 6, 5, None, None, True, 3),
     {f"enc/bidirectional_rnn/{d}/lstm_cell/{v}": s for d in ("fw", "bw") for v, s in (
         ("kernel", (8, 24)), ("bias", (24,)), ("w_f_diag", (6,)), ("w_i_diag", (6,)),
         ("w_o_diag", (6,)), ("projection/kernel", (6, 3)))}),
    # the same cells as both directions: bw reuses fw's variables (TF >= 1.2 cells keep theirs)
    (StackGraph("enc", BIDIRECTIONAL_SHARED, "gru_cell", 8, 5, 2),
     {**_gru("enc/bidirectional_rnn/fw/multi_rnn_cell/cell_0", 5, 8),
      **_gru("enc/bidirectional_rnn/fw/multi_rnn_cell/cell_1", 8, 8)}),
    # bidirectional_dynamic_rnn(..., scope="a/bi-lstm0"): rnn.py enters `scope or
    # "bidirectional_rnn"`, then "fw" / "bw", and runs dynamic_rnn(scope=fw_scope) there
    (StackGraph("a/bi-lstm0", BIDIRECTIONAL_SCOPED, "basic_lstm_cell", 6, 5, 2),
     {f"a/bi-lstm0/{d}/multi_rnn_cell/cell_{k}/basic_lstm_cell/{v}": s
      for d in ("fw", "bw") for k, depth in ((0, 5), (1, 6))
      for v, s in (("kernel", (depth + 6, 24)), ("bias", (24,)))}),
    (StackGraph("a/b", DYNAMIC_RNN, "basic_rnn_cell", 7, 2),
     {"a/b/rnn/basic_rnn_cell/kernel": (9, 7), "a/b/rnn/basic_rnn_cell/bias": (7,)}),
]


@pytest.mark.parametrize("graph,golden", GOLDEN, ids=lambda x: getattr(x, "cell", ""))
def test_tensorflow_creates_the_golden_names(graph, golden):
    assert graph_names.build(graph) == golden


def test_a_keras3_process_builds_in_one_child_with_the_same_names():
    graphs = [g for g, _ in GOLDEN]
    assert graph_names._build_in_child(graphs) == [golden for _, golden in GOLDEN]


@pytest.mark.parametrize("name,scope,call", [
    ("model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/kernel", "model/RNN", CELL_CALL),
    ("model/RNN/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Matrix", "model", DYNAMIC_RNN),
    ("enc/BiRNN/FW/GRUCell/Gates/Linear/Matrix", "enc", BIDIRECTIONAL),
    # today's `fw` right above the cell: bidirectional_dynamic_rnn(scope="enc/BiRNN") (issue 19)
    ("enc/BiRNN/fw/gru_cell/gates/kernel", "enc/BiRNN", BIDIRECTIONAL_SCOPED),
    ("RNN/lstm_cell/kernel", "RNN", CELL_CALL),
    ("a/rnn/multi_rnn_cell/cell_1/gru_cell/gates/weights", "a", DYNAMIC_RNN),
])
def test_the_scope_comes_from_the_input_names_users_part_verbatim(name, scope, call):
    stack, = stack_graphs.stacks_of([name])
    assert (stack.scope, stack.call, stack.by_rule) == (scope, call, "")


# ------------------------------------------------------------------ real checkpoints pass


def _stacks(plan):
    return [(s.names, s.graph) for s in plan.stacks]


@pytest.mark.parametrize("case,options", [
    (dict(cell="gru", generation="tf0"), dict(share=False)),
    (dict(cell="gru", generation="tf0", tie_layers=True), {}),
    (dict(cell="basic_lstm", generation="tf1.0", layers=3, input_depth=5), dict(share_from=1)),
    (dict(cell="lstm", generation="tf0", use_peepholes=True, num_proj=4, input_depth=5),
     dict(share=False)),
    (dict(cell="basic_rnn", generation="today", layers=3), dict(share=False)),
    (dict(cell="gru", generation="tf0", bidirectional=True), dict(share=False)),
    (dict(cell="gru", generation="tf1.0", bidirectional=True, tie_layers=True), {}),
    (dict(cell="basic_lstm", generation="today", seq2seq=True, layers=3, input_depth=5),
     dict(share_from=1)),
    (dict(cell="gru", generation="shared", layers=3), {}),
])
def test_correct_plans_of_real_checkpoints_are_exact(legacy_stack, case, options):
    stack = legacy_stack(write_version="V2", **case)
    plan = migration.plan_checkpoint(stack.prefix, **options)
    assert plan.stacks and all(s.names == stack_graphs.EXACT for s in plan.stacks), plan.stacks
    data = json.loads(plan.to_json())
    assert [s["names"] for s in data["stacks"]] == [stack_graphs.EXACT] * len(plan.stacks)
    assert "stack " in plan.format_table() and ": exact (" in plan.format_table()


def test_the_shared_route_is_checked_against_the_shared_cells(legacy_stack):
    stack = legacy_stack(cell="gru", generation="tf0", layers=3, tie_layers=True,
                         write_version="V2")
    plan = migration.plan_checkpoint(stack.prefix, share_from=1)
    assert _stacks(plan) == [(stack_graphs.EXACT,
                              "dynamic_rnn(MultiRNNCell([GRUCell(8)] * 1 + [SharedGRUCell(8)] * 2))"
                              " in scope '<root>', input depth 8")]


def test_unshare_is_checked_against_the_per_layer_graph(legacy_stack, tmp_path):
    stack = legacy_stack(cell="gru", generation="shared", layers=3, write_version="V2")
    plan = migration.unshare(stack.prefix, str(tmp_path / "out"), 4)
    assert _stacks(plan) == [(stack_graphs.EXACT, "dynamic_rnn(MultiRNNCell([GRUCell(8)] * 4)) "
                                                  "in scope '<root>', input depth 8")]


def _save_ptb(folder, scope="RNN", layers=(0, 1), extra=None, depth=6, units=6):
    """The PTB tutorial's TF >= 1.2 layout: `model/<scope>/multi_rnn_cell/cell_i/basic_lstm_cell`,
    the cell called by hand in the user's own `<scope>`; only `layers` are saved."""
    os.makedirs(folder, exist_ok=True)
    with tf.Graph().as_default():
        cell = rnn_cell.MultiRNNCell([rnn_cell.BasicLSTMCell(units)
                                      for _ in range(max(layers) + 1)])
        with tf1.variable_scope("model"), tf1.variable_scope(scope):
            cell(tf.zeros([1, depth]), cell.zero_state(1, tf.float32))
            if extra:
                with tf1.variable_scope("multi_rnn_cell/cell_0/basic_lstm_cell"):
                    tf1.get_variable(extra, [units])
        keep = [v for v in tf1.global_variables()
                if not any(f"/cell_{k}/" in v.name for k in set(range(max(layers) + 1))
                           - set(layers))]
        saver = tf1.train.Saver(keep)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            return saver.save(session, os.path.join(folder, "model.ckpt"))


def test_a_user_scope_kept_verbatim_is_exact(tmp_path):
    prefix = _save_ptb(str(tmp_path), scope="encoder_RNN")
    plan = migration.plan_checkpoint(prefix, share=False)
    assert _stacks(plan) == [(stack_graphs.EXACT, "MultiRNNCell([BasicLSTMCell(6)] * 2) called "
                                                  "in scope 'model/encoder_RNN', input depth 6")]


def test_a_plan_that_renames_the_users_RNN_scope_is_never_returned(tmp_path):
    """The PTB tutorial's own `RNN` scope (TF >= 1.2 names): a plan that writes `model/rnn/...`
    restores into no graph the user has; the check refuses it, whatever the planner does."""
    prefix = _save_ptb(str(tmp_path))
    for options in (dict(share=False), {}):
        try:
            plan = migration.plan_checkpoint(prefix, **options)
        except NameCheckError as exc:
            assert "expected model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/bias [24]" in str(exc)
            assert "planned model/rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias" in str(exc)
            continue
        assert all(s.name.startswith("model/RNN/") for s in plan.steps), plan.format_table()


# ------------------------------------------------------------------ each way of being wrong


def _plan(legacy_stack):
    stack = legacy_stack(cell="gru", generation="tf0", write_version="V2")
    plan = planning.plan_migration(opening.open_for_planning(stack.prefix).checkpoint.specs, share=False)
    return stack, plan


def _check(plan, stack):
    specs = opening.open_for_planning(stack.prefix).checkpoint.specs
    return graph_names.check_plan(plan, [s.name for s in specs])


def _replace_step(plan, target, **change):
    steps = tuple(dataclasses.replace(s, **change) if s.name == target else s for s in plan.steps)
    return dataclasses.replace(plan, steps=tuple(sorted(steps, key=lambda s: s.name)))


KERNEL0 = "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel"


def test_a_renamed_scope_is_refused_naming_expected_and_planned(legacy_stack):
    stack, plan = _plan(legacy_stack)
    assert _check(plan, stack).stacks[0].names == stack_graphs.EXACT
    wrong = _replace_step(plan, KERNEL0, name="RNN/multi_rnn_cell/cell_0/gru_cell/gates/kernel")
    with pytest.raises(NameCheckError) as caught:
        _check(wrong, stack)
    message = str(caught.value)
    assert "\n" not in message
    assert (f"expected {KERNEL0} [16, 16] (created by today's graph that restores it, "
            f"dynamic_rnn(MultiRNNCell([GRUCell(8)] * 2))") in message
    assert "but planned RNN/multi_rnn_cell/cell_0/gru_cell/gates/kernel [16, 16]" in message
    assert caught.value.tensor == "RNN/MultiRNNCell/Cell0/GRUCell/Gates/Linear/Matrix"


def test_a_wrong_shape_is_refused(legacy_stack):
    stack, plan = _plan(legacy_stack)
    wrong = _replace_step(plan, "rnn/multi_rnn_cell/cell_1/gru_cell/gates/bias", shape=(8,))
    with pytest.raises(NameCheckError, match=r"planned rnn/multi_rnn_cell/cell_1/gru_cell/gates/"
                                             r"bias \[8\] but .* creates it as \[16\]"):
        _check(wrong, stack)


def test_a_missing_layer_is_refused_naming_it_in_every_route(tmp_path, capsys):
    prefix = _save_ptb(str(tmp_path / "in"), scope="lm", layers=(0, 2))
    for options in (["--no-share"], [], ["--share-from", "1"]):
        code, out, err = run_main(capsys, "migrate", prefix, str(tmp_path / "out"), *options)
        assert code == 1 and not out and not os.path.exists(tmp_path / "out.index")
        line = error_line(err)
        if options:  # per-layer routes: the planner refuses the hole before any check
            assert ("model/lm/multi_rnn_cell/cell_1/basic_lstm_cell/bias is missing: the "
                    "checkpoint stores layers 0, 2") in line, line
        else:  # merged: only the graph TensorFlow builds shows that layer 1 is missing
            assert ("expected model/lm/multi_rnn_cell/cell_1/basic_lstm_cell/bias [24]" in line
                    and "the checkpoint does not hold it" in line), line


def test_an_extra_variable_in_a_cell_is_refused(tmp_path, capsys):
    prefix = _save_ptb(str(tmp_path / "in"), scope="lm", extra="layer_norm_gain")
    code, _, err = run_main(capsys, "migrate", prefix, str(tmp_path / "out"), "--no-share",
                            "--dry-run")
    assert code == 1
    assert ("planned model/lm/multi_rnn_cell/cell_0/basic_lstm_cell/layer_norm_gain [6], which "
            "today's graph that restores it") in error_line(err)


def test_a_cell_the_checkpoint_holds_in_part_is_incomplete_not_exact(tmp_path):
    prefix = save_variables(str(tmp_path), {
        "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel": np.zeros((6, 4), np.float32),
        "rnn/multi_rnn_cell/cell_0/gru_cell/gates/bias": np.zeros(4, np.float32)})
    plan = migration.plan_checkpoint(prefix, share=False)
    assert _stacks(plan) == [(stack_graphs.INCOMPLETE, (
        "the checkpoint lacks rnn/multi_rnn_cell/cell_0/gru_cell/candidate/bias [2] (and 1 "
        "more), which dynamic_rnn(MultiRNNCell([GRUCell(2)] * 1)) in scope '<root>', input "
        "depth 4 creates"))]


# ------------------------------------------------------------------ no graph to check against


def test_a_legacy_seq2seq_stack_has_names_by_rule(tmp_path, capsys):
    scope = "embedding_rnn_seq2seq/embedding_rnn_decoder/rnn_decoder/output_projection_wrapper"
    prefix = save_variables(str(tmp_path / "in"), {
        f"{scope}/multi_rnn_cell/cell_0/gru_cell/{v}": np.zeros(s, np.float32)
        for v, s in zip(GRU, ((12, 8), (8,), (12, 4), (4,)))})
    code, out, _ = run_main(capsys, "migrate", prefix, str(tmp_path / "out"), "--dry-run",
                            "--json")
    assert code == 0
    stacks = json.loads(out)["stacks"]
    assert [s["names"] for s in stacks] == ["names by rule; no graph to check against"]
    assert stacks[0]["graph"] == ("its cell is inside embedding_rnn_seq2seq, which no TF 2 "
                                  "class rebuilds")
    code, out, _ = run_main(capsys, "migrate", prefix, str(tmp_path / "out"), "--dry-run")
    assert "names by rule; no graph to check against" in out and ": exact" not in out


# ------------------------------------------------------------------ export


def test_export_checks_its_stack_and_refuses_a_missing_layer(tmp_path):
    import legacy_share.keras  # pylint: disable=import-outside-toplevel
    good = _save_ptb(str(tmp_path / "good"), scope="lm")
    assert [s.status for s in legacy_share.keras.plan(good).stacks] == ["exact"]
    holed = _save_ptb(str(tmp_path / "holed"), scope="lm", layers=(0, 2))
    stack, = legacy_share.keras.plan(holed).stacks
    assert stack.status == "refused"
    assert "layer 1 (model/lm/multi_rnn_cell/cell_1/basic_lstm_cell) is missing" in stack.reason


def _shared_directions_graph(make_cells):
    """bidirectional_dynamic_rnn(cells, the same cells) in scope `bi_rnn`, as
    TSLNIHAOGIT/rnn_text_classification's model.py builds it (hunt case c04)."""
    graph = tf1.Graph()
    with graph.as_default():
        inputs = tf1.placeholder(tf.float32, [2, 3, 6])
        cells = make_cells()
        with tf1.variable_scope("bi_rnn"):
            tf1.nn.bidirectional_dynamic_rnn(cells, cells, inputs, dtype=tf.float32)
    return graph


def _restores_strictly(graph, prefix):
    with graph.as_default(), tf1.Session(graph=graph) as session:
        tf1.train.Saver().restore(session, prefix)  # every variable of the graph, by name
        stored = {n for n, _ in tf1.train.list_variables(prefix)}
        assert stored == {v.op.name for v in tf1.global_variables()}, stored


def test_directions_that_share_their_cells_are_checked_against_that_graph(tmp_path, capsys):
    from legacy_share.cells import SharedLSTMCell  # pylint: disable=import-outside-toplevel

    def own():
        return rnn_cell.MultiRNNCell([rnn_cell.LSTMCell(6) for _ in range(2)])

    def merged():
        shared = SharedLSTMCell(6)
        return rnn_cell.MultiRNNCell([shared, shared])

    graph = _shared_directions_graph(own)
    with graph.as_default(), tf1.Session(graph=graph) as session:
        session.run(tf1.global_variables_initializer())
        prefix = tf1.train.Saver().save(session, str(tmp_path / "in" / "model.ckpt"),
                                        write_meta_graph=False)
    for options, cells, described in (
            (["--no-share"], own, "MultiRNNCell([LSTMCell(6)] * 2)"),
            ([], merged, "MultiRNNCell([SharedLSTMCell(6)] * 2)")):
        out = str(tmp_path / f"out{len(options)}")
        code, printed, _ = run_main(capsys, "migrate", prefix, out, *options)
        assert code == 0
        assert (f": exact (bidirectional_dynamic_rnn({described}, the same cells) in scope "
                f"'bi_rnn', input depth 6)") in printed, printed
        _restores_strictly(_shared_directions_graph(cells), out)


@pytest.mark.parametrize("leaf", ["weights", "kernel"])
def test_only_fw_is_the_shared_directions_graph_only_with_tf_1_2_names(leaf):
    stack, = stack_graphs.stacks_of([f"e/bidirectional_rnn/fw/gru_cell/gates/{leaf}"])
    planned = {"e/bidirectional_rnn/fw/gru_cell/gates/kernel": (9, 8)}
    # TF <= 1.1 cells kept no variables: the same cells as both directions still made bw
    expected = BIDIRECTIONAL if leaf == "weights" else BIDIRECTIONAL_SHARED
    assert stack_graphs.graph_of(stack, planned).call == expected


def test_one_direction_under_a_user_scope_is_checked_as_a_cell_called_there():
    """`x/fw/gru_cell` alone: a cell called in scope `x/fw` creates these names (the export
    refuses it as half of a pair, the migrator renames nothing there)."""
    stack, = stack_graphs.stacks_of(["x/fw/gru_cell/gates/kernel"])
    assert (stack.scope, stack.call) == ("x", BIDIRECTIONAL_SCOPED)
    graph = stack_graphs.graph_of(stack, {"x/fw/gru_cell/gates/kernel": (9, 8)})
    assert (graph.scope, graph.call) == ("x/fw", CELL_CALL)
