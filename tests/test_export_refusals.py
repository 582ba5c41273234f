"""Every refusal of `legacy-share export`: one line naming the file, tensor and what to do,
exit 1 (2 for usage), nothing written, the input untouched.

These run in pytest's tf_keras process with `--keras 2` (refusals happen before any Keras
model exists); one test runs the default `--keras 3`, which the CLI moves to a fresh process.
"""

import json
import os

import numpy as np
import pytest

from legacy_share import cli, testing
from legacy_share.testing import tf, tf1  # first: pytest's process serves tf_keras
from tests import export_cases
from tests.file_guard import untouched

import legacy_share  # noqa: E402  pylint: disable=wrong-import-order
import legacy_share.keras  # noqa: E402,F401  pylint: disable=wrong-import-order


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("refusals")
    made = {}
    for name, options in {"per_layer": dict(cell="gru", depth=4),
                          "shared": dict(cell="gru", depth=6, shared=True),
                          "peepholes": dict(cell="lstm", cell_options=dict(use_peepholes=True)),
                          "lstm": dict(cell="lstm", cell_options=dict(cell_clip=0.05)),
                          "embedding": dict(cell="gru", embedding=True, dense=True)}.items():
        prefix = str(root / name / "model.ckpt")
        os.makedirs(os.path.dirname(prefix))
        export_cases.save_case(prefix, **options)
        made[name] = prefix
    made["two_stacks"] = _two_stacks(str(root / "two" / "model.ckpt"))
    made["no_rnn"] = _no_rnn(str(root / "none" / "model.ckpt"))
    return made


def _save(prefix, shapes):
    graph = tf1.Graph()
    with graph.as_default():
        for name, shape in shapes.items():
            tf1.get_variable(name, shape)
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            tf1.train.Saver().save(session, prefix, write_meta_graph=False)
    return prefix


def _two_stacks(prefix):
    shapes = {}
    for scope in ("encoder", "decoder"):
        shapes.update({f"{scope}/rnn/gru_cell/gates/kernel": [5, 4],
                       f"{scope}/rnn/gru_cell/gates/bias": [4],
                       f"{scope}/rnn/gru_cell/candidate/kernel": [5, 2],
                       f"{scope}/rnn/gru_cell/candidate/bias": [2]})
    return _save(prefix, shapes)


def _no_rnn(prefix):
    return _save(prefix, {"dense/kernel": [3, 2]})


def _export(capsys, *argv):
    code = cli.main(["export", *argv, "--keras", "2"])
    out, err = capsys.readouterr()
    return code, out, err


def _refused(capsys, ckpts, src, dst, *argv, match=()):
    with untouched(os.path.dirname(src)):
        code, out, err = _export(capsys, src, dst, *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1, err
    assert lines[0].startswith("legacy-share: error: ") and "Traceback" not in err
    for text in match:
        assert text in lines[0], lines[0]
    assert not os.path.exists(dst)
    assert not [f for f in os.listdir(os.path.dirname(dst)) if ".legacy-share-" in f]
    return lines[0]


def test_a_shared_stack_needs_layers(capsys, ckpts, tmp_path):
    _refused(capsys, ckpts, ckpts["shared"], str(tmp_path / "m.keras"),
             match=(ckpts["shared"], "shared stack", "K is stored nowhere", "--layers K"))


def test_layers_on_a_per_layer_stack_is_refused(capsys, ckpts, tmp_path):
    _refused(capsys, ckpts, ckpts["per_layer"], str(tmp_path / "m.keras"), "--layers", "3",
             match=("--layers 3 is for a shared stack", "stores its layers itself"))


def test_peepholes_are_refused_naming_the_tensor_and_custom_cells(capsys, ckpts, tmp_path):
    line = _refused(capsys, ckpts, ckpts["peepholes"], str(tmp_path / "m.keras"),
                    match=("rnn/multi_rnn_cell/cell_0/lstm_cell/w_", "peepholes",
                           "--custom-cells"))
    assert "has no Keras layer" in line


def test_clips_need_custom_cells_an_lstm_cell_and_for_proj_clip_a_projection(capsys, ckpts,
                                                                             tmp_path):
    dst = str(tmp_path / "m.keras")
    _refused(capsys, ckpts, ckpts["lstm"], dst, "--cell-clip", "0.05",
             match=("rnn/multi_rnn_cell/cell_*/lstm_cell", "no Keras layer clips",
                    "--custom-cells"))
    _refused(capsys, ckpts, ckpts["lstm"], dst, "--custom-cells", "--proj-clip", "1",
             match=("--proj-clip clips a projection", "this LSTMCell has none"))
    _refused(capsys, ckpts, ckpts["per_layer"], dst, "--custom-cells", "--cell-clip", "3",
             match=("--cell-clip / --proj-clip are LSTMCell settings", "GRUCell"))
    for bad in (-1.0, 0, float("nan"), "3"):  # the API checks what the CLI's parser checks
        with pytest.raises(legacy_share.ExportError, match="--cell-clip must be a number > 0"):
            legacy_share.keras.plan(ckpts["lstm"], custom_cells=True, cell_clip=bad)
    code, out, err = _export(capsys, ckpts["lstm"], dst, "--custom-cells", "--cell-clip",
                             "0.05", "--dry-run")
    assert code == 0, err
    assert "cell_clip 0.05" in out and "no proj_clip" in out and "custom" in out


def test_the_export_plan_carries_the_migrators_notes_on_a_block_cells_clip(capsys, tmp_path):
    """A TF 0.12 LSTMBlockCell clipped its state at 3, which its checkpoint cannot show."""
    prefix = _save(str(tmp_path / "block" / "model.ckpt"),
                   {"RNN/LSTMBlockCell/W": [7, 12], "RNN/LSTMBlockCell/b": [12]})
    code, out, err = _export(capsys, prefix, str(tmp_path / "m.keras"), "--dry-run", "--json")
    assert code == 0, err
    note, = [n for n in json.loads(out)["notes"] if "LSTMBlockCell" in n]
    assert any(n.startswith("RNN: TF 0.x named this scope RNN") for n in json.loads(out)["notes"])
    assert "RNN/LSTMBlockCell" in note and "--custom-cells --cell-clip 3" in note


def test_export_with_meta_notes_the_block_cell_ops_settings(capsys, tmp_path):
    meta = tf1.MetaGraphDef()
    meta.meta_info_def.tensorflow_version = "1.2.1"
    node = meta.graph_def.node.add(name="rnn/lstm_cell/LSTMBlockCell", op="LSTMBlockCell")
    node.attr["cell_clip"].f = 3.0
    node.attr["forget_bias"].f = 1.0
    path = str(tmp_path / "graph.meta")
    with open(path, "wb") as handle:
        handle.write(meta.SerializeToString())
    prefix = _save(str(tmp_path / "lstm" / "model.ckpt"),
                   {"rnn/lstm_cell/kernel": [7, 12], "rnn/lstm_cell/bias": [12]})
    code, out, err = _export(capsys, prefix, str(tmp_path / "m.keras"), "--dry-run",
                             "--meta", path)
    assert code == 0, err
    assert "note: " in out and "LSTMBlockCell op in rnn/lstm_cell runs with cell_clip=3.0" in out


def test_several_stacks_need_stack_and_stack_chooses(capsys, ckpts, tmp_path):
    _refused(capsys, ckpts, ckpts["two_stacks"], str(tmp_path / "m.keras"),
             match=("2 RNN stacks", "encoder/rnn/gru_cell", "decoder/rnn/gru_cell", "--stack"))
    _refused(capsys, ckpts, ckpts["two_stacks"], str(tmp_path / "m.keras"), "--stack", "nope",
             match=("no stack under --stack nope", "encoder/rnn/gru_cell"))
    code, out, err = _export(capsys, ckpts["two_stacks"], str(tmp_path / "m.keras"),
                             "--stack", "decoder")
    assert code == 0, err
    assert "not selected (--stack)" in out and "proof: max |diff|" in out
    assert os.path.isfile(tmp_path / "m.keras")


def test_a_checkpoint_without_rnn_cells_is_refused(capsys, ckpts, tmp_path):
    _refused(capsys, ckpts, ckpts["no_rnn"], str(tmp_path / "m.keras"),
             match=("holds no RNN cell variables", "--rename"))


def test_embedding_and_dense_of_the_wrong_shape_are_refused(capsys, ckpts, tmp_path):
    src = ckpts["embedding"]
    _refused(capsys, ckpts, src, str(tmp_path / "m.keras"), "--embedding", "softmax_w",
             match=("--embedding softmax_w has shape [6, 13]", "input depth 4"))
    _refused(capsys, ckpts, src, str(tmp_path / "m.keras"), "--dense", "embedding",
             match=("--dense kernel embedding has shape [13, 4]", "outputs depth 6"))
    _refused(capsys, ckpts, src, str(tmp_path / "m.keras"), "--dense", "nope",
             match=("no tensor named nope for --dense",))


@pytest.mark.skipif(not testing.supports_keras3(), reason="on TensorFlow < 2.16 tf.keras "
                    "writes no .keras zip that --force would recognise (known, see README)")
def test_an_existing_destination_needs_force(capsys, ckpts, tmp_path):
    dst = tmp_path / "m.keras"
    dst.write_bytes(b"keep me")
    code, _, err = _export(capsys, ckpts["per_layer"], str(dst))
    assert code == 1 and "exists; pass --force" in err and dst.read_bytes() == b"keep me"
    code, _, err = _export(capsys, ckpts["per_layer"], str(dst), "--force")  # not a .keras file
    assert code == 1 and "is not a .keras file" in err and dst.read_bytes() == b"keep me"
    dst.unlink()
    assert _export(capsys, ckpts["per_layer"], str(dst))[0] == 0
    first = dst.stat().st_ino
    code, _, err = _export(capsys, ckpts["per_layer"], str(dst), "--force")
    assert code == 0, err
    assert dst.stat().st_ino != first and sorted(os.listdir(tmp_path)) == ["m.keras"]


def test_an_unknown_format_is_refused(capsys, ckpts, tmp_path):
    _refused(capsys, ckpts, ckpts["per_layer"], str(tmp_path / "m.h5"),
             match=("unknown output format", "*.keras", "*.weights.h5"))


def test_a_failed_proof_writes_nothing(capsys, ckpts, tmp_path):
    line = _refused(capsys, ckpts, ckpts["per_layer"], str(tmp_path / "m.keras"),
                    "--tolerance", "0", match=("not written", "max |diff|", "--tolerance"))
    assert "relative" in line
    code, _, _ = _export(capsys, ckpts["per_layer"], str(tmp_path / "new" / "deeper" / "m.keras"),
                         "--tolerance", "0")
    assert code == 1 and os.listdir(tmp_path) == []  # not even the folders it made


def test_usage_errors_exit_2(ckpts, tmp_path):
    for bad in (["--keras", "4"], ["--layers", "0"], ["--tolerance", "-1"], ["--cell-clip", "0"],
                ["--proj-clip", "nan"], ["--cell-clip", "-3"]):
        with pytest.raises(SystemExit) as exited:
            cli.main(["export", ckpts["per_layer"], str(tmp_path / "m.keras"), *bad])
        assert exited.value.code == 2


def test_dry_run_prints_one_row_per_stack_and_writes_nothing(capsys, ckpts, tmp_path):
    code, out, err = _export(capsys, ckpts["embedding"], str(tmp_path / "m.keras"), "--dry-run",
                             "--embedding", "embedding", "--dense", "softmax_w,softmax_b")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:8] == ["stack", "cell", "layers", "units", "depth", "dirs",
                                    "shared", "keras"]
    assert lines[1].split()[:7] == ["rnn/multi_rnn_cell/cell_*/gru_cell", "GRUCell", "2", "6",
                                    "4", "1", "no"]
    assert "2 x GRU(reset_after=False)" in lines[1] and "exact" in lines[1]
    assert "embedding: embedding [13, 4]" in out and "global_step  (training state)" in out
    assert not os.listdir(tmp_path)


@pytest.mark.skipif(not testing.supports_keras3(), reason="TensorFlow < 2.16: see the next test")
def test_keras3_export_from_a_tf_keras_process_runs_in_a_fresh_process(capsys, ckpts, tmp_path):
    dst = tmp_path / "m.keras"
    code = cli.main(["export", ckpts["shared"], str(dst), "--layers", "3", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert '"keras": 3' in out and '"ok": true' in out
    assert dst.is_file()


@pytest.mark.skipif(testing.supports_keras3(), reason=f"TensorFlow {tf.__version__} has Keras 3")
def test_keras3_on_old_tensorflow_is_one_line(capsys, ckpts, tmp_path):
    code = cli.main(["export", ckpts["per_layer"], str(tmp_path / "m.keras")])
    _, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1 and "Keras 3 needs TensorFlow >= 2.16" in err


def test_layer_weights_maps_gates_as_keras_md_says():
    d, n = 2, 3
    g = np.arange((d + n) * 2 * n, dtype=np.float32).reshape(d + n, 2 * n)
    c = -np.arange((d + n) * n, dtype=np.float32).reshape(d + n, n)
    kernel, recurrent, bias = legacy_share.keras.layer_weights(
        "gru_cell", {"gates/kernel": g, "gates/bias": np.arange(2 * n, dtype=np.float32),
                     "candidate/kernel": c, "candidate/bias": np.full(n, 9, np.float32)})
    np.testing.assert_array_equal(kernel[:, :n], g[:d, n:])       # Keras z = TF1 u
    np.testing.assert_array_equal(recurrent[:, n:2 * n], g[d:, :n])  # Keras r = TF1 r
    np.testing.assert_array_equal(bias, [3, 4, 5, 0, 1, 2, 9, 9, 9])
    k = np.arange((d + n) * 4 * n, dtype=np.float32).reshape(d + n, 4 * n)
    _, _, lstm_bias = legacy_share.keras.layer_weights(
        "basic_lstm_cell", {"kernel": k, "bias": np.zeros(4 * n, np.float32)}, forget_bias=1.5)
    np.testing.assert_array_equal(lstm_bias, [0] * n + [1.5] * n + [0] * 2 * n)


GRU = {"gates/kernel": lambda d, n: [d + n, 2 * n], "gates/bias": lambda d, n: [2 * n],
       "candidate/kernel": lambda d, n: [d + n, n], "candidate/bias": lambda d, n: [n]}


def _gru_shapes(scope, depth, units, drop=()):
    return {f"{scope}/gru_cell/{v}": shape(depth, units) for v, shape in GRU.items()
            if v not in drop}


@pytest.mark.parametrize("shapes, reason", [
    (_gru_shapes("bidirectional_rnn/fw", 3, 2), "only the fw direction is stored"),
    (dict(_gru_shapes("rnn/multi_rnn_cell/cell_0", 3, 2),
          **_gru_shapes("rnn/multi_rnn_cell/cell_1", 5, 2)),
     "layer 1 takes input depth 5 but the layer below gives 2"),
    (dict(_gru_shapes("rnn/multi_rnn_cell/cell_0", 3, 2),
          **_gru_shapes("rnn/multi_rnn_cell/cell_1", 2, 4)),
     "its cells have different numbers of units"),
    (dict(_gru_shapes("bidirectional_rnn/fw/multi_rnn_cell/cell_0", 2, 2),
          **_gru_shapes("bidirectional_rnn/bw/multi_rnn_cell/cell_0", 2, 2)),
     "a shared stack inside one direction is not supported"),
    (_gru_shapes("rnn/multi_rnn_cell/cell_3", 2, 2), "only layer 3 is stored"),
])
def test_stacks_that_cannot_be_keras_layers_are_refused_with_the_reason(tmp_path, shapes,
                                                                         reason):
    prefix = _save(str(tmp_path / "model.ckpt"), shapes)
    plan = legacy_share.keras.plan(prefix, layers=2 if "cell_0" in str(shapes)
                                   and "cell_1" not in str(shapes) else None)
    assert plan.stack.status == "refused" and reason in plan.stack.reason, plan.stack
    with pytest.raises(legacy_share.ExportError, match="refused|" + reason.split()[0]):
        legacy_share.keras.export(prefix, str(tmp_path / "m.keras"), keras=2,
                                  layers=plan.stack.layers if plan.stack.shared else None)
    assert not os.path.exists(tmp_path / "m.keras")


def test_a_shared_layer_whose_input_depth_differs_runs_only_once(tmp_path):
    prefix = _save(str(tmp_path / "model.ckpt"),
                   _gru_shapes("rnn/multi_rnn_cell/cell_0", 3, 2))
    with pytest.raises(legacy_share.ExportError, match="cannot take its own output of depth 2"):
        legacy_share.keras.export(prefix, str(tmp_path / "m.keras"), keras=2, layers=2)
    report = legacy_share.keras.export(prefix, str(tmp_path / "m.keras"), keras=2, layers=1)
    assert report.proof.ok


@pytest.mark.parametrize("drop, shape, match", [
    (("candidate/bias",), None, r"rnn/gru_cell/candidate/bias is missing from the checkpoint"),
    ((), ("rnn/gru_cell/gates/bias", [3]),
     r"rnn/gru_cell/gates/bias has shape \[3\] but .*candidate/kernel \[5, 2\] implies \[4\]"),
])
def test_an_incomplete_or_misshapen_cell_names_the_tensor(tmp_path, drop, shape, match):
    shapes = _gru_shapes("rnn", 3, 2, drop)
    if shape:
        shapes[shape[0]] = shape[1]
    prefix = _save(str(tmp_path / "model.ckpt"), shapes)
    with pytest.raises(legacy_share.ExportError, match=match):
        legacy_share.keras.plan(prefix)


def test_a_sharded_tf0_lstm_kernel_is_concatenated_in_shard_order(tmp_path):
    prefix = _save(str(tmp_path / "model.ckpt"), {"RNN/LSTMCell/W_0": [3, 8],
                                                  "RNN/LSTMCell/W_1": [2, 8],
                                                  "RNN/LSTMCell/B": [8]})
    plan = legacy_share.keras.plan(prefix)
    assert (plan.stack.units, plan.stack.depths, plan.stack.status) == (2, (3,), "exact")
    assert plan.stack.cell_sources("", 0)["kernel"] == ("RNN/LSTMCell/W_0", "RNN/LSTMCell/W_1")
    report = legacy_share.keras.export(prefix, str(tmp_path / "m.keras"), keras=2)
    assert report.proof.ok
