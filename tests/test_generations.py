"""The naming generation is decided per stack from the cells' own names (legacy_share.generations).

Pure cases first (golden names), then real checkpoints written by TF's own Saver (V1 and V2)
from graphs TensorFlow builds today (the PTB tutorial's TF >= 1.2 graph: static calls of a
MultiRNNCell inside the user's `model/RNN` scope, or dynamic_rnn below it), migrated and
restored strictly into the graph TensorFlow builds today.
"""

import numpy as np
import pytest

from legacy_share import generations
from legacy_share.errors import PlanError
from legacy_share.migration import migrate, plan_checkpoint
from legacy_share.planning import COPY, RENAME, TensorSpec, migrated_name, plan_migration
from legacy_share.testing import old_cells
from legacy_share.testing import rnn_cell, tf, tf1
from legacy_share.cells import SharedBasicLSTMCell

UNITS, VOCAB, STEPS, BATCH = 4, 7, 3, 2

# The PTB tutorial (tensorflow/models tutorials/rnn/ptb/ptb_word_lm.py for TF >= 1.2): its
# user scope `RNN` holds a MultiRNNCell of BasicLSTMCells called step by step.
PTB_CELL_NAMES = [
    "model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/kernel",
    "model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/bias",
    "model/RNN/multi_rnn_cell/cell_1/basic_lstm_cell/kernel",
    "model/RNN/multi_rnn_cell/cell_1/basic_lstm_cell/bias",
]
PTB_OTHER_NAMES = ["model/embedding", "model/softmax_w", "model/softmax_b"]


def spec(name, shape=(8, 16)):
    return TensorSpec(name, tuple(shape), "float32")


# ------------------------------------------------------------------------------ pure

def test_ptb_names_of_tf_1_2_keep_the_users_rnn_scope():
    slots = [f"{n}/Adam" for n in PTB_CELL_NAMES] + [f"{n}/Adam_1" for n in PTB_CELL_NAMES]
    specs = [spec(n) for n in PTB_CELL_NAMES + PTB_OTHER_NAMES + slots]
    plan = plan_migration(specs, share=False)
    assert [(s.name, s.action) for s in plan.steps] == sorted((s.name, COPY) for s in specs)
    merged = {s.name for s in plan_migration(specs).steps}
    assert "model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/kernel/Adam_1" in merged
    assert not any("/rnn/" in name or "cell_1" in name for name in merged)


def test_a_tf0_rnn_scope_is_renamed_with_a_note_that_the_names_cannot_tell_whose_it_was():
    """TF 0.x's PTB tutorial opened variable_scope("RNN") itself; tf.nn.rnn made the same name."""
    tf0 = [spec(f"Model/RNN/MultiRNNCell/Cell{k}/BasicLSTMCell/Linear/{v}", shape)
           for k in (0, 1) for v, shape in (("Matrix", (8, 16)), ("Bias", (16,)))]
    plan = plan_migration(tf0, share=False)
    assert {s.name.split("/")[1] for s in plan.steps} == {"rnn"}
    assert [n for n in plan.notes if "TF 0.x named this scope RNN" in n] == [
        generations.TF0_RNN_NOTE.format(scope="Model/RNN")]
    assert "--rename rnn=RNN" in generations.TF0_RNN_NOTE
    today = plan_migration([spec(n) for n in PTB_CELL_NAMES], share=False)
    assert not any("TF 0.x named" in n for n in today.notes)


@pytest.mark.parametrize("name", PTB_CELL_NAMES + [
    "RNN/rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel",      # dynamic_rnn in a user `RNN`
    "BiRNN/bidirectional_rnn/fw/gru_cell/candidate/bias",       # a user `BiRNN`
    "MultiRNNCell/rnn/multi_rnn_cell/cell_1/lstm_cell/w_f_diag",
])
def test_scopes_above_a_cell_of_tf_1_0_or_later_are_never_renamed(name):
    assert migrated_name(name) == name
    tf1_0 = name.replace("/kernel", "/weights").replace("/bias", "/biases")
    assert migrated_name(tf1_0) == name


def test_a_tf0_stack_beside_user_scopes_that_look_old():
    tf0 = ["encoder/RNN/MultiRNNCell/Cell0/GRUCell/Gates/Linear/Matrix",
           "encoder/RNN/MultiRNNCell/Cell1/GRUCell/Gates/Linear/Matrix",
           "encoder/RNN/embedding"]
    today = PTB_CELL_NAMES + ["model/RNN/softmax_w"]
    plan = plan_migration([spec(n) for n in tf0 + today], share=False)
    assert {s.name: s.sources[0] for s in plan.steps} == {
        "encoder/rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel": tf0[0],
        "encoder/rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel": tf0[1],
        "encoder/rnn/embedding": tf0[2],  # in the TF 0.x stack's `RNN`
        **{n: n for n in today}}
    stacks = generations.stack_generations(tf0 + today)
    assert {s: st.generation for s, st in stacks.items()} == {
        "encoder/RNN/MultiRNNCell": generations.TF0,
        "model/RNN/multi_rnn_cell": generations.TODAY}


def test_a_name_outside_any_stack_keeps_its_scopes_unless_a_tf0_stack_shows_them():
    assert migrated_name("RNN/embedding") == "RNN/embedding"
    context = ["RNN/MultiRNNCell/Cell0/GRUCell/Gates/Linear/Matrix"]
    assert migrated_name("RNN/embedding", context=context) == "rnn/embedding"
    # Its own TF 0.x pieces show it: a wrapper's class name, `Linear/Matrix`.
    assert migrated_name("RNN/EmbeddingWrapper/embedding") == "rnn/embedding_wrapper/embedding"
    assert migrated_name("RNN/OutputProjectionWrapper/Linear/Bias") == \
        "rnn/output_projection_wrapper/bias"


@pytest.mark.parametrize("first,second", [
    ("rnn/multi_rnn_cell/cell_0/gru_cell/gates/weights",
     "rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel"),
    ("model/RNN/GRUCell/Gates/Linear/Matrix", "model/RNN/gru_cell/gates/bias"),
])
def test_one_stack_with_names_of_two_generations_is_refused(first, second):
    with pytest.raises(PlanError) as info:
        plan_migration([spec(first), spec(second)])
    message = str(info.value)
    assert first in message and second in message
    assert "\n" not in message and info.value.tensor == second


def test_a_cell_variable_below_a_layer_scope_of_another_generation_is_refused():
    name = "rnn/multi_rnn_cell/cell_0/lstm_cell/W_0"
    with pytest.raises(PlanError, match="different TensorFlow versions") as info:
        plan_migration([spec(name)])
    assert info.value.tensor == name and "\n" not in str(info.value)


def test_names_every_generation_shares_are_decided_by_the_scope_above_then_the_checkpoint():
    # GRUBlockCell's names are the same in every generation; TF 1.0's contrib LSTMBlockCell
    # kept TF 0.x's `LSTMBlockCell/W`, `LSTMCell/W_0` (use_compatible_names).
    assert migrated_name("RNN/GRUBlockCell/b_ru") == "rnn/gru_cell/gates/bias"  # dynamic_rnn's
    assert migrated_name("rnn/multi_rnn_cell/cell_1/LSTMBlockCell/W") == \
        "rnn/multi_rnn_cell/cell_1/lstm_cell/kernel"                           # TF 1.0
    block = "RNN/enc/GRUBlockCell/b_ru"
    tf0 = "encoder/RNN/GRUCell/Gates/Linear/Matrix"
    today = "model/rnn/gru_cell/gates/kernel"
    assert migrated_name(block) == "RNN/enc/gru_cell/gates/bias"
    assert migrated_name(block, context=[tf0]) == "rnn/enc/gru_cell/gates/bias"
    assert migrated_name(block, context=[tf0, today]) == "RNN/enc/gru_cell/gates/bias"


# ----------------------------------------------------------- real checkpoints, real graphs

def _ptb_model(static, make_multi):
    """The PTB tutorial's model in the current graph -> the Adam train op."""
    with tf1.variable_scope("model"):
        embedding = tf1.get_variable("embedding", [VOCAB, UNITS])
        ids = tf.constant(np.arange(BATCH * STEPS).reshape(BATCH, STEPS) % VOCAB)
        inputs = tf.nn.embedding_lookup(embedding, ids)
        cell = make_multi()
        with tf1.variable_scope("RNN"):
            if static:
                state, outputs = cell.zero_state(BATCH, tf.float32), []
                for step in range(STEPS):
                    if step > 0:
                        tf1.get_variable_scope().reuse_variables()
                    output, state = cell(inputs[:, step, :], state)
                    outputs.append(output)
                output = tf.stack(outputs, axis=1)
            else:
                output, _ = tf1.nn.dynamic_rnn(cell, inputs, dtype=tf.float32)
        softmax_w = tf1.get_variable("softmax_w", [UNITS, VOCAB])
        softmax_b = tf1.get_variable("softmax_b", [VOCAB])
        logits = tf.tensordot(output, softmax_w, 1) + softmax_b
    loss = tf.reduce_mean(tf.square(logits))
    return tf1.train.AdamOptimizer(0.1).minimize(loss)


def _today_multi():
    return rnn_cell.MultiRNNCell([rnn_cell.BasicLSTMCell(UNITS) for _ in range(2)])


def _shared_multi():
    return rnn_cell.MultiRNNCell([SharedBasicLSTMCell(UNITS)] * 2)


def _save(folder, build, version):
    """Builds, trains one step and saves with a real Saver -> (prefix, {name: value})."""
    folder.mkdir(parents=True)
    with tf1.Graph().as_default():
        tf1.set_random_seed(1)
        train = build()
        saver = tf1.train.Saver(write_version={"V1": tf1.train.SaverDef.V1,
                                               "V2": tf1.train.SaverDef.V2}[version])
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            session.run(train)
            prefix = saver.save(session, str(folder / "model.ckpt"), write_meta_graph=False)
    reader = tf.train.load_checkpoint(prefix)
    return prefix, {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


def _restore_strictly(build, prefix):
    """Restores `prefix` into the graph `build` makes with a Saver of every variable; asserts
    the checkpoint holds nothing else -> {name: restored value}."""
    with tf1.Graph().as_default():
        build()
        variables = tf1.global_variables()
        with tf1.Session() as session:
            tf1.train.Saver().restore(session, prefix)
            got = dict(zip([v.op.name for v in variables], session.run(variables)))
    stored = set(tf.train.load_checkpoint(prefix).get_variable_to_shape_map())
    assert stored == set(got)
    return got


@pytest.mark.parametrize("version", ["V1", "V2"])
@pytest.mark.parametrize("static", [True, False], ids=["static-calls", "dynamic_rnn"])
def test_ptb_checkpoint_of_today_migrates_to_the_graph_that_wrote_it(tmp_path, version, static):
    build = lambda: _ptb_model(static, _today_multi)  # noqa: E731
    prefix, saved = _save(tmp_path / "in", build, version)
    inner = "RNN/multi_rnn_cell" if static else "RNN/rnn/multi_rnn_cell"
    golden = [f"model/{inner}/cell_{k}/basic_lstm_cell/{v}" for k in (0, 1)
              for v in ("kernel", "bias")]
    assert set(golden) <= set(saved)  # what TensorFlow itself named them
    dst = str(tmp_path / "out" / "model.ckpt")
    plan = migrate(prefix, dst, share=False)
    assert all(s.action == COPY for s in plan.steps)
    got = _restore_strictly(build, dst)
    assert set(got) == set(saved)
    for name, value in got.items():
        np.testing.assert_array_equal(value, saved[name], err_msg=name)
    # The default route merges the layers under layer 0's name, which the shared cells create.
    shared_dst = str(tmp_path / "shared" / "model.ckpt")
    migrate(prefix, shared_dst)
    got = _restore_strictly(lambda: _ptb_model(static, _shared_multi), shared_dst)
    assert golden[0] in got and golden[2] not in got
    np.testing.assert_array_equal(got[golden[0]], saved[golden[0]])


def _mixed_model(generation):
    """A TF 0.x GRU stack in `encoder` (as TF 0.12 named it, or as today) beside today's PTB."""
    with tf1.variable_scope("encoder"):
        make = lambda: old_cells.multi_cell(generation, "gru", 2, UNITS, False)  # noqa: E731
        inputs = tf.constant(np.ones((BATCH, STEPS, UNITS), np.float32))
        encoded = old_cells.run_rnn(generation, make, inputs, bidirectional=False)
    return tf.group(_ptb_model(True, _today_multi), encoded)


@pytest.mark.parametrize("version", ["V1", "V2"])
def test_mixed_checkpoint_renames_the_tf0_stack_only(tmp_path, version):
    prefix, saved = _save(tmp_path / "in", lambda: _mixed_model("tf0"), version)
    assert "encoder/RNN/MultiRNNCell/Cell1/GRUCell/Candidate/Linear/Matrix" in saved
    dst = str(tmp_path / "out" / "model.ckpt")
    plan = plan_checkpoint(prefix, share=False)
    renamed = {s.name for s in plan.steps if s.action == RENAME}
    assert "encoder/rnn/multi_rnn_cell/cell_1/gru_cell/candidate/kernel" in renamed
    assert not any(n.startswith("model/") for n in renamed)
    migrate(prefix, dst, share=False)
    got = _restore_strictly(lambda: _mixed_model("today"), dst)
    np.testing.assert_array_equal(
        got["encoder/rnn/multi_rnn_cell/cell_1/gru_cell/candidate/kernel"],
        saved["encoder/RNN/MultiRNNCell/Cell1/GRUCell/Candidate/Linear/Matrix"])
    np.testing.assert_array_equal(got[PTB_CELL_NAMES[2]], saved[PTB_CELL_NAMES[2]])


# ------------------------------------------------- TF 2 object-based checkpoints (item 3)

def _object_tree(seed):
    """A tf.train.Checkpoint whose keys hold `RNN` and `cell_0` / `cell_1` (same shapes)."""
    rng = np.random.default_rng(seed)
    layers = {f"cell_{k}": tf.Variable(rng.standard_normal((8, 16)).astype(np.float32))
              for k in range(2)}
    rnn = tf.train.Checkpoint(multi_rnn_cell=tf.train.Checkpoint(**layers))
    return tf.train.Checkpoint(model=tf.train.Checkpoint(RNN=rnn)), layers


def _values(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


@pytest.mark.parametrize("share", [True, False], ids=["default", "no-share"])
def test_object_based_checkpoint_is_carried_bit_for_bit(tmp_path, capsys, share):
    from tests.file_guard import run_main  # pylint: disable=import-outside-toplevel
    saved_tree, layers = _object_tree(1)
    prefix = saved_tree.save(str(tmp_path / "in" / "ckpt"))
    saved = _values(prefix)
    assert "model/RNN/multi_rnn_cell/cell_1/.ATTRIBUTES/VARIABLE_VALUE" in saved
    dst = str(tmp_path / "out" / "ckpt")
    code, out, _ = run_main(capsys, "migrate", prefix, dst, *([] if share else ["--no-share"]))
    assert code == 0 and "nothing to migrate" in out
    got = _values(dst)
    assert set(got) == set(saved)
    for name, value in saved.items():  # bit for bit, the object graph's bytes too
        value, copied = np.asarray(value), np.asarray(got[name])
        assert copied.dtype == value.dtype and copied.shape == value.shape, name
        assert (copied.tolist() == value.tolist() if value.dtype == object
                else copied.tobytes() == value.tobytes()), name
    fresh, fresh_layers = _object_tree(2)
    fresh.restore(dst).assert_consumed()
    for name, variable in fresh_layers.items():
        np.testing.assert_array_equal(variable.numpy(), layers[name].numpy())


def test_object_based_checkpoint_inspect_and_refusals(tmp_path, capsys):
    from tests.file_guard import error_line, run_main  # pylint: disable=import-outside-toplevel
    prefix = _object_tree(1)[0].save(str(tmp_path / "in" / "ckpt"))
    code, out, _ = run_main(capsys, "inspect", prefix)
    assert code == 0 and "object-based" in out and "0 layer group(s)" in out
    code, _, err = run_main(capsys, "migrate", prefix, str(tmp_path / "o"), "--rename", "RNN=rnn")
    assert code == 1 and "--rename" in error_line(err) and "object-based" in err
    code, _, err = run_main(capsys, "unshare", prefix, str(tmp_path / "u"), "--layers", "2")
    assert code == 1 and "nothing to unshare" in error_line(err)
    assert not (tmp_path / "o.index").exists() and not (tmp_path / "u.index").exists()
