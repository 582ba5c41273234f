"""cuDNN checkpoints: found, unpacked, checked against their canonical tensors, migrated to
TF1 cells that a strict Saver restores and that compute the cuDNN equations."""

import dataclasses
import json
import os

import numpy as np
import pytest

from legacy_share import cli, cudnn, cudnn_models, planning, writing
from legacy_share.errors import CheckpointError, PlanError
from legacy_share.reading import open_checkpoint
from legacy_share.testing import tf, tf1
from tests.cudnn_cases import SCOPE, save_cudnn_checkpoint
from tests.file_guard import error_line, run_main, untouched


def _find(prefix, **options):
    ckpt = open_checkpoint(prefix)
    return ckpt, cudnn_models.find_models(ckpt.specs, prefix=prefix, **options)


@pytest.mark.parametrize("layout", [cudnn.Layout("lstm", 2, 4, 6),
                                    cudnn.Layout("lstm", 1, 3, 3, directions=2),
                                    cudnn.Layout("gru", 3, 4, 5, directions=2)], ids=str)
def test_the_layout_is_read_from_the_canonical_tensors(tmp_path, layout):
    prefix, _ = save_cudnn_checkpoint(str(tmp_path), layout, canonical=True)
    _, models = _find(prefix)
    assert [(m.buffer, m.scope, m.layout, m.source) for m in models] == [
        (f"{SCOPE}/opaque_kernel", SCOPE, layout, "canonical tensors")]


def test_the_layout_is_read_from_the_graph_never_running_it(tmp_path):
    layout = cudnn.Layout("rnn_relu", 2, 5, 3)
    prefix, _ = save_cudnn_checkpoint(str(tmp_path), layout, meta=True)
    meta = tf1.MetaGraphDef()
    with open(prefix + ".meta", "rb") as handle:
        meta.ParseFromString(handle.read())
    found = cudnn_models.layouts_from_meta(meta)
    assert found == [dict(kind="rnn_relu", layers=2, units=5, input_size=3, directions=1)]
    _, models = _find(prefix, meta_layouts=found)
    assert models[0].layout == layout and models[0].source == "--meta"


def test_a_buffer_without_layout_is_refused_naming_every_way_to_give_it(tmp_path):
    prefix, _ = save_cudnn_checkpoint(str(tmp_path), cudnn.Layout("lstm", 1, 2, 2))
    with pytest.raises(PlanError) as info:
        _find(prefix)
    message = str(info.value)
    assert f"{SCOPE}/opaque_kernel" in message and "--meta" in message and "--cudnn" in message


def test_flags_that_do_not_fit_the_length_say_what_would(tmp_path):
    layout = cudnn.Layout("lstm", 2, 4, 6)
    prefix, _ = save_cudnn_checkpoint(str(tmp_path), layout)
    with pytest.raises(PlanError, match=r"would fit input size 6"):
        _find(prefix, given=cudnn.Layout("lstm", 2, 4, 7))
    _, models = _find(prefix, given=layout)
    assert models[0].source == "flags"


def test_flags_find_a_buffer_of_any_name_by_its_length(tmp_path):
    layout = cudnn.Layout("gru", 1, 3, 2)
    prefix, _ = save_cudnn_checkpoint(str(tmp_path), layout, buffer_name="encoder/params_var")
    _, models = _find(prefix, given=layout)
    assert models[0].buffer == "encoder/params_var" and models[0].scope == "encoder"
    with pytest.raises(PlanError, match="no tensor of"):
        _find(prefix, given=cudnn.Layout("gru", 2, 3, 2))


def test_canonical_tensors_that_disagree_with_the_buffer_are_an_error(tmp_path):
    layout = cudnn.Layout("lstm", 2, 3, 4)
    wrong = f"{SCOPE}/rnn/multi_rnn_cell/cell_1/cudnn_compatible_lstm_cell/bias"
    prefix, _ = save_cudnn_checkpoint(str(tmp_path), layout, canonical=True,
                                      extra={wrong: np.full(12, 0.5, np.float32)})
    ckpt, models = _find(prefix)
    with pytest.raises(CheckpointError) as info:
        cudnn_models.check_canonical(ckpt, models)
    assert wrong in str(info.value) and f"{SCOPE}/opaque_kernel" in str(info.value)
    assert "max |diff|" in str(info.value)


# Two layouts of one buffer length: its size alone cannot tell them apart.
LSTM_96, GRU_96 = cudnn.Layout("lstm", 1, 3, 3), cudnn.Layout("gru", 1, 4, 2)


@pytest.mark.parametrize("first, second", [("canonical tensors", "flags"),
                                           ("--meta", "flags"),
                                           ("canonical tensors", "--meta")])
def test_canonical_tensors_meta_and_flags_that_disagree_are_an_error(tmp_path, first, second):
    """The README's promise: sources of a buffer's layout that disagree stop the run, naming
    both layouts, even where the other one fits the buffer's length as well."""
    assert LSTM_96.size == GRU_96.size
    sources = (first, second)
    prefix, _ = save_cudnn_checkpoint(str(tmp_path), LSTM_96,
                                      canonical="canonical tensors" in sources,
                                      meta=first == "--meta")
    if first == "--meta":
        meta = tf1.MetaGraphDef()
        with open(prefix + ".meta", "rb") as handle:
            meta.ParseFromString(handle.read())
        meta_layouts = cudnn_models.layouts_from_meta(meta)
    else:
        meta_layouts = [dataclasses.asdict(GRU_96)] if second == "--meta" else []
    with pytest.raises(PlanError) as info:
        _find(prefix, meta_layouts=meta_layouts, given=GRU_96 if second == "flags" else None)
    assert str(info.value) == (
        f"{prefix}: {SCOPE}/opaque_kernel: the {first} say {LSTM_96.describe()}, the "
        f"{second} say {GRU_96.describe()}; fix the flags")
    assert info.value.tensor == f"{SCOPE}/opaque_kernel" and info.value.file == prefix


def test_cli_migrate_refuses_flags_that_disagree_with_the_canonical_tensors(capsys, tmp_path):
    prefix, _ = save_cudnn_checkpoint(str(tmp_path / "src"), LSTM_96, canonical=True)
    dst = tmp_path / "out" / "model.ckpt"
    with untouched(str(tmp_path / "src")):
        code, out, err = run_main(capsys, "migrate", prefix, dst, "--cudnn", "gru", "--layers",
                                  "1", "--units", "4", "--input-size", "2")
    line = error_line(err)
    assert code == 1 and out == ""
    assert f"the canonical tensors say {LSTM_96.describe()}, the flags say" in line
    assert not os.path.exists(dst.parent)


def test_a_cudnn_gru_is_refused_for_migrate_with_the_reason():
    model = cudnn_models.Model("gru/opaque_kernel", "gru", cudnn.Layout("gru", 1, 2, 2), "flags")
    with pytest.raises(PlanError, match=r"reset_after=True"):
        cudnn_models.output_tensors(model)


def test_skip_input_and_projections_in_the_graph_are_refused():
    meta = tf1.MetaGraphDef()
    node = meta.graph_def.node.add(name="CudnnRNN", op="CudnnRNNV3")
    node.attr["input_mode"].s = b"skip_input"
    with pytest.raises(PlanError, match="skip_input"):
        cudnn_models.layouts_from_meta(meta)
    node.attr["input_mode"].s = b"linear_input"
    node.attr["num_proj"].i = 4
    with pytest.raises(PlanError, match="num_proj"):
        cudnn_models.layouts_from_meta(meta)


# ------------------------------------------------------------------ migrated, restored, run


def _tf1_stack_outputs(prefix, layout, inputs, lengths, forget_bias=1.0, scope=SCOPE,
                       optimizer_scope=None):
    """Builds today's tf.compat.v1 cells under the migrated names in `scope`, restores `prefix`
    strictly and runs them -> outputs [batch, time, units * directions].

    `optimizer_scope`: also an Adam minimizing the outputs, built in that variable scope, whose
    slots are restored too (its beta powers are not in a migrated checkpoint).
    """
    with tf1.Graph().as_default():
        outputs = _tf1_stack(inputs, lengths, layout, forget_bias, scope)
        if optimizer_scope is not None:
            with tf1.variable_scope(optimizer_scope):
                tf1.train.AdamOptimizer().minimize(tf.reduce_sum(outputs))
        variables = [v for v in tf1.global_variables() if "_power" not in v.op.name]
        saver = tf1.train.Saver(variables)  # every one of them must be in the checkpoint
        with tf1.Session() as session:
            saver.restore(session, prefix)
            return session.run(outputs), {v.op.name: session.run(v) for v in variables}


def _tf1_stack(inputs, lengths, layout, forget_bias, scope):
    """Today's tf.compat.v1 cells of `layout` in `scope` ('': the root) on `inputs`."""
    x = tf1.constant(inputs, tf.float32)
    seq = tf1.constant(lengths, tf.int32)

    def cell():
        if layout.kind == "lstm":
            return tf1.nn.rnn_cell.LSTMCell(layout.units, forget_bias=forget_bias)
        activation = tf.nn.relu if layout.kind == "rnn_relu" else None
        return tf1.nn.rnn_cell.BasicRNNCell(layout.units, activation=activation)

    with tf1.variable_scope(scope or tf1.get_variable_scope()):
        if layout.directions == 1:
            stack = tf1.nn.rnn_cell.MultiRNNCell([cell() for _ in range(layout.layers)])
            outputs, _ = tf1.nn.dynamic_rnn(stack, x, sequence_length=seq, dtype=tf.float32)
        else:
            outputs = x
            for layer in range(layout.layers):
                with tf1.variable_scope(f"stack_bidirectional_rnn/cell_{layer}"):
                    (fw, bw), _ = tf1.nn.bidirectional_dynamic_rnn(
                        cell(), cell(), outputs, sequence_length=seq, dtype=tf.float32)
                outputs = tf.concat([fw, bw], axis=2)
    return outputs


@pytest.mark.parametrize("layout,canonical,slots", [
    (cudnn.Layout("lstm", 2, 4, 6), True, True),
    (cudnn.Layout("lstm", 1, 3, 5, directions=2), False, False),
    (cudnn.Layout("lstm", 2, 3, 2, directions=2), True, False),
    (cudnn.Layout("rnn_tanh", 3, 3, 4), False, True),
    (cudnn.Layout("rnn_relu", 1, 4, 2, directions=2), False, False),
], ids=str)
def test_migrated_buffer_restores_into_tf1_cells_that_compute_the_cudnn_equations(
        tmp_path, layout, canonical, slots):
    src = tmp_path / "src"
    src.mkdir()
    prefix, canonicals = save_cudnn_checkpoint(str(src), layout, canonical=canonical, slots=slots)
    ckpt, models = _find(prefix, given=None if canonical else layout)
    view = cudnn_models.CudnnCheckpoint(ckpt, models)
    cudnn_models.check_canonical(ckpt, models)
    plan = planning.plan_migration(view.specs, excludes=[f"^{SCOPE}/"])  # every layer kept
    dst = str(tmp_path / "out" / "model.ckpt")
    with untouched(str(src)):
        writing.execute(plan, view, dst)
    out = open_checkpoint(dst)
    names = {spec.name for spec in out.specs}
    expected = set(cudnn_models.output_tensors(models[0])) | {"global_step"}
    if slots:
        expected |= {f"{n}/{s}" for n in cudnn_models.output_tensors(models[0])
                     for s in ("Adam", "Adam_1")}
    assert names == expected
    inputs = np.random.RandomState(5).randn(3, 7, layout.input_size).astype(np.float32)
    lengths = np.array([7, 3, 0], np.int32)
    got, _ = _tf1_stack_outputs(dst, layout, inputs, lengths)
    np.testing.assert_allclose(got, cudnn.run(canonicals, layout, inputs, lengths),
                               rtol=1e-5, atol=1e-5)


def test_kernel_slots_follow_the_kernel_and_bias_slots_take_the_input_bias(tmp_path):
    layout = cudnn.Layout("lstm", 1, 2, 3)
    prefix, _ = save_cudnn_checkpoint(str(tmp_path), layout, slots=True)
    ckpt, models = _find(prefix, given=layout)
    view = cudnn_models.CudnnCheckpoint(ckpt, models)
    slot = cudnn.unpack(ckpt.read(f"{SCOPE}/opaque_kernel/Adam"), layout)[(0, 0)]
    base = f"{SCOPE}/rnn/multi_rnn_cell/cell_0/lstm_cell"
    np.testing.assert_array_equal(view.read(f"{base}/kernel/Adam"),
                                  cudnn.lstm_cell_weights(slot, forget_bias=0.0)[0])
    np.testing.assert_array_equal(view.read(f"{base}/bias/Adam"),
                                  np.concatenate([slot.bW[g] for g in (0, 2, 1, 3)]))
    assert any("slot" in note for note in view.notes)
    assert "forget_bias=1" in view.notes[0]


# ------------------------------------------------------------------ the command line


@pytest.fixture(scope="module")
def lstm_checkpoint(tmp_path_factory):
    """A 2-layer cuDNN LSTM (input size 6 != 4 units) with Adam slots, buffer only."""
    folder = str(tmp_path_factory.mktemp("cudnn_cli"))
    layout = cudnn.Layout("lstm", 2, 4, 6)
    prefix, canonicals = save_cudnn_checkpoint(folder, layout, slots=True, meta=True)
    return prefix, layout, canonicals


FLAGS = ["--cudnn", "lstm", "--layers", "2", "--units", "4", "--input-size", "6"]


def test_cli_inspect_lists_the_model_or_says_how_to_tell_its_layout(capsys, lstm_checkpoint):
    prefix, layout, _ = lstm_checkpoint
    code, out, _ = run_main(capsys, "inspect", prefix)
    assert code == 0 and "note: " in out and "--cudnn lstm|gru|rnn_tanh|rnn_relu" in out
    code, out, _ = run_main(capsys, "inspect", prefix, "--meta", prefix + ".meta")
    lines = out.splitlines()
    row = lines[next(i for i, line in enumerate(lines) if line.startswith("CUDNN BUFFER")) + 1]
    assert row.startswith(f"{SCOPE}/opaque_kernel ")
    assert row.split()[1:6] == ["lstm", "2", "4", "6", "1"] and "--meta" in row
    assert "--no-share" in row
    code, out, _ = run_main(capsys, "inspect", prefix, "--json", *FLAGS)
    (model,) = json.loads(out)["cudnn"]
    assert model["layout_from"] == "flags" and model["input_size"] == 6
    assert model["slots"] == [f"{SCOPE}/opaque_kernel/Adam", f"{SCOPE}/opaque_kernel/Adam_1"]


def test_cli_migrate_unpacks_and_a_tf1_graph_computes_the_cudnn_lstm(capsys, tmp_path,
                                                                     lstm_checkpoint):
    prefix, layout, canonicals = lstm_checkpoint
    dst = tmp_path / "out" / "model.ckpt"
    with untouched(prefix):
        code, out, err = run_main(capsys, "migrate", prefix, dst, "--no-share", *FLAGS)
    assert code == 0, err
    assert any(line.startswith(f"note: {SCOPE}/opaque_kernel: cuDNN lstm") for line in
               out.splitlines())
    inputs = np.random.RandomState(1).randn(2, 5, 6).astype(np.float32)
    lengths = np.array([5, 2], np.int32)
    np.testing.assert_allclose(_tf1_stack_outputs(str(dst), layout, inputs, lengths)[0],
                               cudnn.run(canonicals, layout, inputs, lengths), atol=1e-5)
    dropped = tmp_path / "dropped" / "model.ckpt"
    code, _, err = run_main(capsys, "migrate", prefix, dropped, "--no-share", "--meta",
                            prefix + ".meta", "--drop-optimizer-state")
    assert code == 0, err
    assert not [s.name for s in open_checkpoint(str(dropped)).specs if "Adam" in s.name]


def test_cli_refusals_are_one_line_or_usage(capsys, tmp_path, lstm_checkpoint):
    prefix, _, _ = lstm_checkpoint
    dst = tmp_path / "never" / "model.ckpt"
    code, _, err = run_main(capsys, "migrate", prefix, dst, "--no-share")
    assert code == 1 and "--meta GRAPH.meta" in error_line(err)
    wrong = list(FLAGS)
    wrong[-1] = "7"
    code, _, err = run_main(capsys, "migrate", prefix, dst, "--no-share", *wrong)
    assert code == 1 and "would fit input size 6" in error_line(err)
    with pytest.raises(SystemExit) as info:
        cli.main(["migrate", str(prefix), str(dst), "--units", "4"])
    assert info.value.code == 2 and "give --cudnn MODE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["migrate", str(prefix), str(dst), "--cudnn", "lstm", "--units", "4"])
    assert info.value.code == 2 and "--layers, --input-size" in capsys.readouterr().err
    gru = tmp_path / "gru"
    gru.mkdir()
    gru_prefix, _ = save_cudnn_checkpoint(str(gru), cudnn.Layout("gru", 1, 3, 3), canonical=True)
    code, _, err = run_main(capsys, "migrate", gru_prefix, dst)
    assert code == 1 and "GRU(reset_after=True)" in error_line(err)
    assert not os.path.exists(dst.parent)


def test_cli_migrate_refuses_canonical_tensors_that_disagree_with_the_buffer(capsys, tmp_path):
    wrong = f"{SCOPE}/rnn/multi_rnn_cell/cell_1/cudnn_compatible_lstm_cell/bias"
    src = tmp_path / "src"
    prefix, _ = save_cudnn_checkpoint(str(src), cudnn.Layout("lstm", 2, 3, 4), canonical=True,
                                      extra={wrong: np.full(12, 0.5, np.float32)})
    dst = tmp_path / "out" / "model.ckpt"
    with untouched(str(src)):
        code, _, err = run_main(capsys, "migrate", prefix, dst, "--no-share")
    line = error_line(err)
    assert code == 1 and wrong in line and "hold different weights" in line
    assert not os.path.exists(dst.parent)


# ------------------------------------------------- issue 17: where TF 1.4-1.15 put the tensors

# TF r1.15 contrib/cudnn_rnn: `_create_saveable` passes the variable scope current at build()
# (the layer's own when the layer is called, the one outside it when build() is called by
# hand) and the saveable names each tensor "<scope>/rnn/multi_rnn_cell/cell_%d/<cell>/...".
def _run_inputs(layout, seed=5):
    inputs = np.random.RandomState(seed).randn(3, 6, layout.input_size).astype(np.float32)
    return inputs, np.array([6, 2, 0], np.int32)


def _migrate(capsys, prefix, dst, *flags):
    code, out, err = run_main(capsys, "migrate", prefix, dst, "--no-share", *flags)
    assert code == 0, err
    return out


@pytest.mark.parametrize("user_scope", ["", "model"])
def test_canonical_tensors_of_a_layer_built_by_hand_live_in_the_scope_outside_it(
        capsys, tmp_path, user_scope):
    layout = cudnn.Layout("lstm", 2, 3, 5)
    head = f"{user_scope}/" if user_scope else ""
    prefix, canonicals = save_cudnn_checkpoint(
        str(tmp_path / "src"), layout, canonical=True, slots=True,
        buffer_name=f"{head}{SCOPE}/opaque_kernel", canonical_scope=user_scope)
    ckpt, models = _find(prefix)
    assert [(m.buffer, m.scope, m.layout, m.source, len(m.canonical)) for m in models] == [
        (f"{head}{SCOPE}/opaque_kernel", user_scope, layout, "canonical tensors", 4)]
    cudnn_models.check_canonical(ckpt, models)
    dst = tmp_path / "out" / "model.ckpt"
    with untouched(str(tmp_path / "src")):
        _migrate(capsys, prefix, dst)
    names = {spec.name for spec in open_checkpoint(str(dst)).specs}
    assert f"{head}rnn/multi_rnn_cell/cell_1/lstm_cell/kernel" in names
    assert not [n for n in names if "cudnn" in n]
    inputs, lengths = _run_inputs(layout)
    got, _ = _tf1_stack_outputs(str(dst), layout, inputs, lengths, scope=user_scope,
                                optimizer_scope="")
    np.testing.assert_allclose(got, cudnn.run(canonicals, layout, inputs, lengths), atol=1e-5)


def test_canonical_tensors_two_buffers_could_own_are_refused(tmp_path):
    layout = cudnn.Layout("lstm", 1, 2, 3)
    other = cudnn.pack(cudnn.unpack(np.ones(layout.size, np.float32), layout), layout)
    prefix, _ = save_cudnn_checkpoint(str(tmp_path), layout, canonical=True, canonical_scope="",
                                      extra={"cudnn_lstm_1/opaque_kernel": other})
    with pytest.raises(PlanError, match=r"may belong to cudnn_lstm/opaque_kernel or "
                                        r"cudnn_lstm_1/opaque_kernel"):
        _find(prefix)


@pytest.mark.parametrize("layout", [cudnn.Layout("lstm", 2, 4, 3),
                                    cudnn.Layout("lstm", 2, 2, 3, directions=2)], ids=str)
def test_canonical_tensors_alone_migrate_to_lstm_cell_with_the_forget_bias_folded(
        capsys, tmp_path, layout):
    prefix, canonicals = save_cudnn_checkpoint(str(tmp_path / "src"), layout, canonical=True,
                                               buffer_name=None, slots=True)
    dst = tmp_path / "out" / "model.ckpt"
    with untouched(str(tmp_path / "src")):
        out = _migrate(capsys, prefix, dst)
    assert "cudnn_lstm canonical tensors: cuDNN lstm" in out and "lstm_cell per layer" in out
    written = {spec.name for spec in open_checkpoint(str(dst)).specs}
    model = _find(prefix)[1][0]
    cells = set(cudnn_models.output_tensors(model))
    assert written == cells | {f"{n}/{s}" for n in cells for s in ("Adam", "Adam_1")} | {
        "global_step"}
    inputs, lengths = _run_inputs(layout)
    got, restored = _tf1_stack_outputs(str(dst), layout, inputs, lengths, optimizer_scope="")
    np.testing.assert_allclose(got, cudnn.run(canonicals, layout, inputs, lengths), atol=1e-5)
    source = open_checkpoint(prefix)
    for name in cells:  # slots renamed, values kept
        old = name.replace("/lstm_cell/", "/cudnn_compatible_lstm_cell/")
        np.testing.assert_array_equal(restored[name + "/Adam"], source.read(old + "/Adam"))


def test_canonical_gru_tensors_alone_are_refused_as_the_buffer_is(capsys, tmp_path):
    prefix, _ = save_cudnn_checkpoint(str(tmp_path / "src"), cudnn.Layout("gru", 1, 3, 2),
                                      canonical=True, buffer_name=None)
    dst = tmp_path / "out" / "model.ckpt"
    code, _, err = run_main(capsys, "migrate", prefix, dst)
    line = error_line(err)
    assert code == 1 and "cudnn_lstm canonical tensors: a cuDNN GRU" in line
    assert "GRU(reset_after=True)" in line and not os.path.exists(dst.parent)


def test_every_slot_of_the_buffer_is_unpacked_even_with_the_scope_twice(capsys, tmp_path):
    # An optimizer built in variable scope `model` names the slots of `model/cudnn_lstm/...`
    # `model/model/cudnn_lstm/.../Adam` (checked below against the graph TF builds today).
    layout = cudnn.Layout("lstm", 1, 3, 4)
    prefix, canonicals = save_cudnn_checkpoint(
        str(tmp_path / "src"), layout, slots=True, buffer_name=f"model/{SCOPE}/opaque_kernel",
        slot_head="model/")
    ckpt, models = _find(prefix, given=layout)
    assert models[0].slots == (f"model/model/{SCOPE}/opaque_kernel/Adam",
                               f"model/model/{SCOPE}/opaque_kernel/Adam_1")
    dst = tmp_path / "out" / "model.ckpt"
    _migrate(capsys, prefix, dst, "--cudnn", "lstm", "--layers", "1", "--units", "3",
             "--input-size", "4")
    inputs, lengths = _run_inputs(layout)
    got, restored = _tf1_stack_outputs(str(dst), layout, inputs, lengths,
                                       scope=f"model/{SCOPE}", optimizer_scope="model")
    np.testing.assert_allclose(got, cudnn.run(canonicals, layout, inputs, lengths), atol=1e-5)
    slot = cudnn.unpack(ckpt.read(f"model/model/{SCOPE}/opaque_kernel/Adam"), layout)[(0, 0)]
    kernel = f"model/model/{SCOPE}/rnn/multi_rnn_cell/cell_0/lstm_cell/kernel/Adam"
    np.testing.assert_array_equal(restored[kernel],
                                  cudnn.lstm_cell_weights(slot, forget_bias=0.0)[0])
    assert not [s.name for s in open_checkpoint(str(dst)).specs if "opaque" in s.name]


def test_cli_inspect_refuses_flags_that_do_not_fit_the_buffer(capsys, lstm_checkpoint):
    prefix, _, _ = lstm_checkpoint
    wrong = list(FLAGS)
    wrong[-1] = "7"
    code, _, err = run_main(capsys, "inspect", prefix, *wrong)
    assert code == 1 and "would fit input size 6" in error_line(err)
