"""Whole models of several stacks (issue 19, point 1): fw/bw halves under any scope paired into
one Bidirectional, stacks chained in the order the data flows (`--stack A --stack B`, or the one
order the shapes allow), with the embedding first and the Dense last.

The checkpoints are real TF1 graphs saved by TF's own Saver (tests/chain_cases.py); each export
is reloaded from its file in a fresh process (Keras 3 on TensorFlow and JAX, tf_keras) and
compared with the graph's own outputs and with a float64 NumPy run of the whole chain on the
checkpoint's arrays, read here by name. The refusals run in pytest's tf_keras process.
"""

import os

import numpy as np
import pytest

import legacy_share
from legacy_share.testing import tf  # first: pytest's process serves tf_keras (the TF1 cells)
from tests import chain_cases
from tests import numpy_rnn
from tests.file_guard import error_line, run_main, save_variables
from tests.test_export import HAS_JAX, HAS_KERAS3, NO_JAX, NO_KERAS3, export_and_reload, \
    export_job
import legacy_share.keras  # noqa: E402  pylint: disable=wrong-import-order

DENSE = dict(dense="softmax_w,softmax_b")
BI0 = "bi-lstm0/{fw,bw}/multi_rnn_cell/cell_*/basic_lstm_cell"
BI1 = "bi-lstm1/{fw,bw}/multi_rnn_cell/cell_*/basic_lstm_cell"
NMT_BI = "encoder/bidirectional_rnn/{fw,bw}/basic_lstm_cell"
NMT_UNI = "encoder/rnn/multi_rnn_cell/cell_*/basic_lstm_cell"
# id -> (builder, export options, the chain as ("bi" | "uni", [cell scope per layer]) for the
# NumPy reference, and the dense or None)
CASES = {
    "bi-lstm0-bi-lstm1-found": (
        chain_cases.save_bidirectional_blocks, DENSE,
        [("bi", [f"bi-lstm{b}/{{}}/multi_rnn_cell/cell_{k}/basic_lstm_cell" for k in range(2)])
         for b in range(2)], True),
    "char-enc-dec-by-stack": (
        chain_cases.save_char_enc_dec,
        dict(DENSE, embedding="embedding",
             stack=["lstm_char_enc_dec_0", "lstm_char_enc_dec_1"]),
        [("uni", [f"lstm_char_enc_dec_{k}/lstm_cell"]) for k in range(2)], True),
    "nmt-encoder-found": (
        chain_cases.save_nmt_encoder, dict(embedding="embeddings/encoder/embedding_encoder"),
        [("bi", ["encoder/bidirectional_rnn/{}/basic_lstm_cell"]),
         ("uni", [f"encoder/rnn/multi_rnn_cell/cell_{k}/basic_lstm_cell" for k in range(2)])],
        False),
}


def _reference(prefix, chain, dense, inputs, lengths):
    """The whole chain in float64 NumPy on the checkpoint's arrays (TF1's LSTM equations)."""
    reader = tf.train.load_checkpoint(prefix)

    def value(name):
        return reader.get_tensor(name).astype(np.float64)

    names = reader.get_variable_to_shape_map()
    table = next((n for n in names if n.endswith("embedding") or n.endswith("_encoder")), None)
    x = value(table)[inputs] if inputs.dtype.kind == "i" else inputs.astype(np.float64)

    def run(scopes):
        steps = [numpy_rnn.basic_lstm_cell([value(f"{s}/kernel"), value(f"{s}/bias")])
                 for s in scopes]
        units = [value(f"{s}/bias").shape[0] // 4 for s in scopes]
        return lambda values, lens: numpy_rnn.run_stack(
            steps, [(np.zeros([len(lens), u]),) * 2 for u in units], values, lens)[0]

    for kind, scopes in chain:
        if kind == "uni":
            x = run(scopes)(x, lengths)
        else:
            x = numpy_rnn.run_bidirectional(run([s.format("fw") for s in scopes]),
                                            run([s.format("bw") for s in scopes]), x, lengths)
    return x @ value("softmax_w") + value("softmax_b") if dense else x


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every case saved, exported (Keras 3 and tf_keras), reloaded in fresh processes."""
    root = tmp_path_factory.mktemp("chains")
    expected, reference, jobs = {}, {}, []
    for case, (save, options, chain, dense) in CASES.items():
        prefix = str(root / case / "model.ckpt")
        os.makedirs(os.path.dirname(prefix))
        inputs, lengths, outputs = save(prefix)
        expected[case] = outputs
        reference[case] = _reference(prefix, chain, dense, inputs, lengths)
        jobs.append(export_job(root, case, prefix, options, inputs, lengths))
    return dict(expected=expected, reference=reference,
                **export_and_reload(jobs, root, list(CASES), jax=True))


def _close(outputs, expected, tolerance):
    np.testing.assert_allclose(outputs, expected, rtol=0,
                               atol=tolerance * max(1, np.abs(expected).max()))


@pytest.mark.skipif(not HAS_KERAS3, reason=NO_KERAS3)
@pytest.mark.parametrize("case", list(CASES))
def test_a_chained_keras3_file_reloaded_in_a_fresh_process_computes_the_whole_model(exported,
                                                                                     case):
    report = exported["k3_export"][case]
    assert report["ok"], report
    assert report["relative"] <= 1e-5
    assert "chain: " in report["table"] and "not selected" not in report["table"]
    outputs = exported["k3"][case]
    _close(outputs, exported["reference"][case], 1e-5)
    _close(outputs, exported["expected"][case], 2e-5)  # the TF1 graph's own float32 outputs


@pytest.mark.skipif(not (HAS_KERAS3 and HAS_JAX), reason=NO_JAX)
@pytest.mark.parametrize("case", list(CASES))
def test_a_chained_keras3_file_runs_on_jax(exported, case):
    assert str(exported["jax"]["backend"]) == "jax"
    _close(exported["jax"][case], exported["reference"][case], 1e-5)


@pytest.mark.parametrize("case", list(CASES))
def test_a_chained_tf_keras_file_reloaded_in_a_fresh_process_computes_the_whole_model(
        exported, case):
    assert exported["k2_export"][case]["ok"], exported["k2_export"][case]
    assert exported["k2_export"][case]["relative"] <= 1e-5
    _close(exported["k2"][case], exported["reference"][case], 1e-5)


def test_the_numpy_reference_is_the_tf1_graph(exported):
    """The test's own reference agrees with what TensorFlow computed (so it can judge)."""
    for case in CASES:
        _close(exported["reference"][case], exported["expected"][case], 2e-5)


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("blocks") / "model.ckpt")
    chain_cases.save_bidirectional_blocks(prefix)
    return prefix


def test_fw_and_bw_under_a_user_scope_are_one_bidirectional_stack_checked_by_name(blocks):
    plan = legacy_share.keras.plan(blocks, **DENSE)
    assert [s.scope for s in plan.stacks] == [BI0, BI1]
    assert [s.scope for s in plan.chain] == [BI0, BI1]
    assert all(s.directions == 2 and s.layers == 2 and s.status == "exact" for s in plan.stacks)
    assert plan.order.startswith("found from the shapes")
    assert plan.to_dict()["chain"] == [BI0, BI1]


def test_one_direction_of_a_pair_is_not_offered_as_a_model(blocks, capsys):
    code, _, err = run_main(capsys, "export", blocks, os.path.dirname(blocks) + "/x.keras",
                            "--dry-run", "--keras", "2", "--stack", "bi-lstm0/fw")
    assert code == 1
    assert error_line(err).endswith(f"no stack under --stack bi-lstm0/fw; the stacks are: "
                                    f"{BI0}, {BI1}")


def test_one_block_of_the_chain_is_exported_alone_with_one_stack_flag(blocks):
    plan = legacy_share.keras.plan(blocks, stack="bi-lstm1")
    assert [s.scope for s in plan.chain] == [BI1] and plan.order == ""
    assert "not selected (--stack)" in plan.format_table()


def test_stacks_given_against_the_data_flow_are_refused_in_one_line(blocks, capsys):
    code, _, err = run_main(capsys, "export", blocks, os.path.dirname(blocks) + "/x.keras",
                            "--dry-run", "--keras", "2", "--stack", "bi-lstm1",
                            "--stack", "bi-lstm0")
    assert code == 1
    line = error_line(err)
    assert f"{BI1} (12 -> 2 x 4) outputs width 8 but the next --stack {BI0} (5 -> 2 x 6) " \
           f"takes input depth 5" in line
    assert "pass them with --stack in the order the data flows" in line


def test_a_dense_that_does_not_fit_the_last_stack_of_the_chain_is_refused(blocks):
    with pytest.raises(legacy_share.Error, match=r"--dense kernel bi-lstm0/fw/multi_rnn_cell/"
                       r"cell_0/basic_lstm_cell/kernel has shape \[11, 24\] but "
                       + BI1.replace("{", r"\{").replace("}", r"\}").replace("*", r"\*")
                       + " outputs depth 8"):
        legacy_share.keras.plan(blocks, dense="bi-lstm0/fw/multi_rnn_cell/cell_0/"
                                              "basic_lstm_cell/kernel")


def _lstm(scope, depth, units, rng):
    return {f"{scope}/kernel": rng.normal(size=[depth + units, 4 * units]).astype(np.float32),
            f"{scope}/bias": rng.normal(size=[4 * units]).astype(np.float32)}


@pytest.mark.parametrize("sizes, why", [
    (((4, 4), (4, 4)), "both a/rnn/basic_lstm_cell -> b/rnn/basic_lstm_cell and "
                       "b/rnn/basic_lstm_cell -> a/rnn/basic_lstm_cell connect, so the shapes "
                       "cannot tell the order"),
    (((4, 6), (5, 3)), "no order of them connects"),
])
def test_stacks_whose_order_the_shapes_cannot_tell_are_refused_naming_the_flags(
        tmp_path, capsys, sizes, why):
    rng = np.random.RandomState(0)
    variables = {}
    for scope, (depth, units) in zip("ab", sizes):
        variables.update(_lstm(f"{scope}/rnn/basic_lstm_cell", depth, units, rng))
    prefix = save_variables(str(tmp_path / "ckpt"), variables)
    code, _, err = run_main(capsys, "export", prefix, str(tmp_path / "x.keras"), "--dry-run",
                            "--keras", "2")
    assert code == 1
    line = error_line(err)
    assert why in line
    assert line.endswith("choose one with --stack SCOPE, or chain them with --stack A --stack "
                         "B ... in the order the data flows")


def _tf0_gru(scope, depth, units, rng):
    """TF 0.12's GRUCell variables (rnn_cell.py: `GRUCell/Gates/Linear/Matrix`, ...)."""
    shapes = {"Gates/Linear/Matrix": [depth + units, 2 * units], "Gates/Linear/Bias": [2 * units],
              "Candidate/Linear/Matrix": [depth + units, units],
              "Candidate/Linear/Bias": [units]}
    return {f"{scope}/GRUCell/{v}": rng.normal(size=s).astype(np.float32)
            for v, s in shapes.items()}


def test_tf0_fw_and_bw_under_a_user_scope_are_one_bidirectional_stack(tmp_path):
    """TF 0.12's bidirectional_dynamic_rnn(scope="bi") wrote `bi/FW`, `bi/BW` (its default
    scope was BiRNN): paired, and checked against today's bidirectional_dynamic_rnn(scope=bi)."""
    rng = np.random.RandomState(0)
    prefix = save_variables(str(tmp_path / "ckpt"), {**_tf0_gru("bi/FW", 3, 5, rng),
                                                     **_tf0_gru("bi/BW", 3, 5, rng)})
    plan = legacy_share.keras.plan(prefix)
    stack, = plan.stacks
    assert (stack.scope, stack.directions, stack.units, stack.depths) == (
        "bi/{fw,bw}/gru_cell", 2, 5, (3,))
    assert stack.status == "exact", stack.reason
    assert plan.refusal() is None
