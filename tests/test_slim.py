"""legacy_share.slim: tf-slim's init_fn, warm-starting from a TF 0.x checkpoint, with tf-slim itself."""

import logging

import numpy as np
import pytest
import tf_slim as slim

from legacy_share import errors
from legacy_share.testing import legacy_graphs
from legacy_share.testing import tf, tf1
from legacy_share.cells import SharedGRUCell
from legacy_share.slim import assign_from_legacy_checkpoint_fn

LAYERS, UNITS = 2, 8
SOFTMAX = ["softmax_w", "softmax_b"]


@pytest.fixture
def legacy(legacy_stack):
    """A 2-layer GRU with Adam, TF 0.x names, V1, trained 3 steps (so global_step is 3)."""
    return legacy_stack(cell="gru", layers=LAYERS, num_units=UNITS, generation="tf0")


def _migrated_values(legacy):
    """Today's name -> value `first` gives it: the saved tensor of layer 0 (or of no layer)."""
    wanted = {}
    for saved, today in legacy.renamed.items():
        name = today.replace(f"/cell_{LAYERS - 1}/", "/cell_0/")
        if today == name:  # layer 0, or no layer: `first` keeps its value
            wanted[name] = legacy.values[saved]
    return wanted


def _shared_model():
    """The legacy model rebuilt with `MultiRNNCell([SharedGRUCell(8)] * 2)`; slim's train_op.

    Inputs and target are constants, so that slim's own `train_step` can run it.
    """
    rng = np.random.RandomState(0)
    shape = (legacy_graphs.BATCH, legacy_graphs.TIME)
    ids = tf1.constant(rng.randint(0, legacy_graphs.VOCAB, size=shape), tf.int32)
    embedding = tf1.get_variable("embedding", [legacy_graphs.VOCAB, UNITS])
    stack = tf1.nn.rnn_cell.MultiRNNCell([SharedGRUCell(UNITS)] * LAYERS)
    outputs, _ = tf1.nn.dynamic_rnn(stack, tf.nn.embedding_lookup(embedding, ids),
                                    dtype=tf.float32)
    softmax_w = tf1.get_variable("softmax_w", [UNITS, legacy_graphs.VOCAB])
    softmax_b = tf1.get_variable("softmax_b", [legacy_graphs.VOCAB],
                                 initializer=tf1.zeros_initializer())
    logits = tf.tensordot(outputs, softmax_w, axes=1) + softmax_b
    target = tf1.constant(rng.uniform(-1, 1, size=logits.shape.as_list()), tf.float32)
    loss = tf.reduce_mean(tf.square(logits - target))
    return slim.learning.create_train_op(loss, tf1.train.AdamOptimizer(0.05))


def test_slim_learning_train_warm_starts_a_shared_stack_from_a_tf0_checkpoint(legacy, tmp_path):
    wanted = _migrated_values(legacy)
    seen, steps = {}, []
    with tf1.Graph().as_default():
        train_op = _shared_model()
        variables = slim.get_variables_to_restore(exclude=SOFTMAX)
        init_fn = assign_from_legacy_checkpoint_fn(legacy.prefix, variables)

        every = tf1.global_variables()

        def train_step(session, train_op, global_step, kwargs):
            if not steps:  # the values training starts from, after init_fn
                seen.update(zip([v.op.name for v in every], session.run(every)))
            steps.append(session.run(global_step))
            return slim.learning.train_step(session, train_op, global_step, kwargs)

        # No summary writer and no timed saver: their Supervisor threads do not see this
        # test's graph (eager execution is on in the test process) and fail on global_step.
        loss = slim.learning.train(
            train_op, str(tmp_path), train_step_fn=train_step, number_of_steps=5,
            init_fn=init_fn, summary_writer=None, save_interval_secs=0)
    restored = {v.op.name for v in variables}
    assert {n for n in restored if "Adam" not in n and "power" not in n} == {
        "embedding", "global_step",
        *(f"rnn/multi_rnn_cell/cell_0/gru_cell/{p}" for p in (
            "gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"))}
    for name in restored:
        np.testing.assert_array_equal(seen[name], wanted[name], err_msg=name)
    for name in SOFTMAX:  # excluded: slim's initializer, not the legacy values
        assert not np.array_equal(seen[name], wanted[name])
    assert steps == [3, 4]  # global_step came from the legacy checkpoint: 2 steps to reach 5
    assert np.isfinite(loss)
    trained = tf1.train.load_checkpoint(str(tmp_path))
    assert trained.get_tensor("global_step") == 5


def test_init_fn_assigns_only_the_included_scopes(legacy):
    wanted = _migrated_values(legacy)
    with tf1.Graph().as_default() as graph:
        _shared_model()
        variables = slim.get_variables_to_restore(
            include=["rnn"], exclude=["rnn/multi_rnn_cell/cell_0/gru_cell/candidate"])
        init_fn = assign_from_legacy_checkpoint_fn(legacy.prefix, variables, strategy="layer:1")
        init = tf1.global_variables_initializer()
        graph.finalize()
        with tf1.Session() as session:
            session.run(init)
            fresh = dict(zip([v.op.name for v in tf1.global_variables()],
                             session.run(tf1.global_variables())))
            plan = init_fn(session)
            got = dict(zip([v.op.name for v in tf1.global_variables()],
                           session.run(tf1.global_variables())))
    assert str(plan.strategy) == "layer:1"
    layer_1 = {legacy.renamed[s].replace("/cell_1/", "/cell_0/"): v
               for s, v in legacy.values.items() if "/Cell1/" in s}
    changed = sorted(n for n in got if not np.array_equal(got[n], fresh[n]))
    assert changed == sorted(v.op.name for v in variables)
    assert all(n.startswith("rnn/multi_rnn_cell/cell_0/gru_cell/gates/") for n in changed)
    for name in changed:  # the kernels and their Adam slots, from layer 1
        np.testing.assert_array_equal(got[name], layer_1[name], err_msg=name)
        assert not np.array_equal(got[name], wanted[name])


def test_init_fn_warm_starts_a_per_layer_graph_with_share_false(legacy):
    """One GRUCell per layer, as today's code builds the legacy model: every layer its own."""
    with tf1.Graph().as_default():
        cells = [tf1.nn.rnn_cell.GRUCell(UNITS) for _ in range(LAYERS)]
        ids = tf1.zeros([legacy_graphs.BATCH, legacy_graphs.TIME], tf.int32)
        embedding = tf1.get_variable("embedding", [legacy_graphs.VOCAB, UNITS])
        tf1.nn.dynamic_rnn(tf1.nn.rnn_cell.MultiRNNCell(cells),
                           tf.nn.embedding_lookup(embedding, ids), dtype=tf.float32)
        variables = slim.get_variables_to_restore()
        init_fn = assign_from_legacy_checkpoint_fn(legacy.prefix, variables, share=False)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            init_fn(session)
            got = dict(zip([v.op.name for v in variables], session.run(variables)))
    expected = {legacy.renamed[s]: v for s, v in legacy.values.items()}
    assert any("/cell_1/" in name for name in got)
    for name, value in got.items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_missing_variables_are_named_before_training(legacy):
    with tf1.Graph().as_default():
        _shared_model()
        extra = tf1.get_variable("decoder/w", shape=(2,))
        with pytest.raises(errors.VerificationError) as caught:
            assign_from_legacy_checkpoint_fn(legacy.prefix, tf1.global_variables())
    message = str(caught.value)
    assert message.startswith(f"{legacy.prefix}: migrated, it would not provide 1 variable(s) "
                              f"of var_list: decoder/w; ")
    assert "ignore_missing_vars=True" in message and "exclude=" in message
    del extra


def test_ignore_missing_vars_skips_them_with_a_warning_as_slim_does(legacy, caplog):
    with tf1.Graph().as_default():
        _shared_model()
        extra = tf1.get_variable("decoder/w", shape=(2,), initializer=tf1.zeros_initializer())
        with caplog.at_level(logging.WARNING, logger="legacy_share"):
            init_fn = assign_from_legacy_checkpoint_fn(legacy.prefix, tf1.global_variables(),
                                                       ignore_missing_vars=True)
        assert "Variable decoder/w missing in legacy checkpoint" in caplog.text
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            init_fn(session)
            assert session.run(tf1.train.get_global_step()) == 3
            np.testing.assert_array_equal(session.run(extra), [0.0, 0.0])
        assert assign_from_legacy_checkpoint_fn(legacy.prefix, [extra],
                                                ignore_missing_vars=True) is None


@pytest.mark.parametrize("var_list, error, match", [
    ([], errors.ArgumentError, "var_list is empty"),
    (None, errors.ArgumentError, "var_list is empty"),
    ({"softmax_w": None}, errors.ArgumentError, r"var_list is a dict.*renames=\[\(old_regex, new\)\]"),
])
def test_var_list_errors_say_what_to_pass(legacy, var_list, error, match):
    with pytest.raises(error, match=match):
        assign_from_legacy_checkpoint_fn(legacy.prefix, var_list)


def test_init_fn_with_drop_optimizer_state_assigns_when_slim_calls_it(legacy):
    """The options reach the plan made before training and the assignment slim runs later."""
    wanted = _migrated_values(legacy)
    with tf1.Graph().as_default():
        _shared_model()
        variables = [v for v in tf1.global_variables()
                     if "Adam" not in v.op.name and "power" not in v.op.name
                     and v.op.name not in SOFTMAX]
        init_fn = assign_from_legacy_checkpoint_fn(legacy.prefix, variables,
                                                   drop_optimizer_state=True)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            plan = init_fn(session)
            got = dict(zip([v.op.name for v in variables], session.run(variables)))
    assert not any("Adam" in step.name for step in plan.steps)
    for name, value in got.items():
        np.testing.assert_array_equal(value, wanted[name], err_msg=name)


def test_init_fn_assigns_a_cudnn_checkpoint_as_migrate_writes_it(tmp_path):
    """A buffer-only CudnnLSTM checkpoint: init_fn assigns what `migrate` writes for it."""
    from legacy_share import cudnn, migrate  # pylint: disable=import-outside-toplevel
    from tests.cudnn_cases import save_cudnn_checkpoint  # pylint: disable=import-outside-toplevel
    layout = cudnn.Layout("lstm", layers=2, units=4, input_size=3)
    prefix, _ = save_cudnn_checkpoint(tmp_path / "in", layout)
    migrate(prefix, str(tmp_path / "out" / "model.ckpt"), share=False, cudnn=layout)
    written = tf1.train.load_checkpoint(str(tmp_path / "out" / "model.ckpt"))
    shapes = {n: s for n, s in tf1.train.list_variables(str(tmp_path / "out" / "model.ckpt"))
              if "lstm_cell" in n}
    assert len(shapes) == 4
    with tf1.Graph().as_default():
        variables = [tf1.get_variable(name, shape) for name, shape in sorted(shapes.items())]
        init_fn = assign_from_legacy_checkpoint_fn(prefix, variables, share=False, cudnn=layout)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            init_fn(session)
            got = dict(zip(sorted(shapes), session.run(variables)))
    for name, value in got.items():
        np.testing.assert_array_equal(value, written.get_tensor(name), err_msg=name)


def test_unknown_option_is_a_type_error_naming_it(legacy):
    with tf1.Graph().as_default():
        _shared_model()
        with pytest.raises(TypeError, match="stratgy"):
            assign_from_legacy_checkpoint_fn(legacy.prefix, tf1.global_variables(),
                                             stratgy="mean")
