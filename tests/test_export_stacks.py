"""What a stack is (issue 17, items 4-6): one-layer MultiRNNCells, cells TensorFlow numbered in
one scope, stacks missing a layer, stacks inside an AttentionWrapper; and `export --dry-run`
deciding as `export` does.

Checkpoints are written by TF's own Saver: from real graphs where TensorFlow 2 still builds
them (MultiRNNCell, cells called by hand in one scope, TF 0.x stacks of legacy_graphs), else by
name with the names and shapes TF r1.15's sources create (contrib/seq2seq attention_wrapper.py
and tensorflow/nmt's attention_model.py). Runs in pytest's tf_keras process, `--keras 2`.
"""

import json
import os

import numpy as np
import pytest

import legacy_share
from legacy_share.testing import rnn_cell, tf, tf1  # first: pytest's process serves tf_keras
from legacy_share.testing import legacy_graphs
from tests import export_cases
from tests.cudnn_cases import save_cudnn_checkpoint
from tests.file_guard import error_line, run_main, save_variables, untouched

import legacy_share.keras  # noqa: E402  pylint: disable=wrong-import-order

UNITS, DEPTH, BATCH, TIME = 6, 4, 3, 5


def _gru(scope, depth, units, rng):
    shapes = {"gates/kernel": [depth + units, 2 * units], "gates/bias": [2 * units],
              "candidate/kernel": [depth + units, units], "candidate/bias": [units]}
    return {f"{scope}/{v}": rng.normal(0, 0.5, s).astype(np.float32) for v, s in shapes.items()}


def _lstm(scope, depth, units, rng):
    return {f"{scope}/kernel": rng.normal(0, 0.5, [depth + units, 4 * units]).astype(np.float32),
            f"{scope}/bias": rng.normal(0, 0.5, [4 * units]).astype(np.float32)}


def _nmt(attention, rng, embed=5, units=UNITS, vocab=11):
    """tensorflow/nmt's AttentionModel, 2 layers: encoder stack, and the decoder's stack inside
    AttentionWrapper(name="attention") called by dynamic_decode in scope `decoder`."""
    top = "dynamic_seq2seq"
    out = {"embeddings/encoder/embedding_encoder": rng.normal(size=[vocab, embed]),
           "embeddings/decoder/embedding_decoder": rng.normal(size=[vocab, embed]),
           f"{top}/decoder/memory_layer/kernel": rng.normal(size=[units, units]),
           f"{top}/decoder/attention/attention_layer/kernel": rng.normal(size=[2 * units, units]),
           f"{top}/decoder/output_projection/kernel": rng.normal(size=[units, vocab])}
    for layer in range(2):
        out.update(_lstm(f"{top}/encoder/rnn/multi_rnn_cell/cell_{layer}/basic_lstm_cell",
                         embed if layer == 0 else units, units, rng))
        # AttentionWrapper feeds its cell [inputs; attention]: layer 0 takes embed + units.
        out.update(_lstm(f"{top}/decoder/attention/multi_rnn_cell/cell_{layer}/basic_lstm_cell",
                         embed + units if layer == 0 else units, units, rng))
    scope = f"{top}/decoder/attention/{attention}_attention"
    if attention == "luong":  # LuongAttention(scale=True)
        out[f"{scope}/attention_g"] = np.float32(1.0)
    else:  # BahdanauAttention: its query layer is called inside the score scope
        out[f"{scope}/query_layer/kernel"] = rng.normal(size=[units, units])
        out[f"{scope}/attention_v"] = rng.normal(size=[units])
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def _numbered_graph(prefix, depths, seed=0, reverse_second=False):
    """GRUCells called by hand, step by step, in one variable scope `enc`: TensorFlow names
    them `gru_cell`, `gru_cell_1`, ... in the order of their first call. Cell k reads cell
    k-1's output (or, with `reverse_second`, cell 1 reads the reversed input: a hand-made
    forward / backward pair). Saves `prefix` -> (inputs, outputs of the last cell)."""
    rng = np.random.RandomState(seed)
    graph = tf1.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf.float32, [BATCH, TIME, depths[0]])
        cells = [rnn_cell.GRUCell(UNITS) for _ in depths]
        states = [c.zero_state(BATCH, tf.float32) for c in cells]
        steps = tf.unstack(x, axis=1)
        outputs = []
        with tf1.variable_scope("enc"):
            for t in range(TIME):
                h = steps[t]
                for k, cell in enumerate(cells):
                    feed = steps[TIME - 1 - t] if reverse_second and k == 1 else h
                    h, states[k] = cell(feed, states[k])
                outputs.append(h)
        top = tf.stack(outputs, axis=1)
        with tf1.Session(graph=graph) as session:
            for variable in tf1.global_variables():
                variable.load(rng.normal(0, 0.5, variable.shape.as_list()), session)
            data = rng.uniform(-1, 1, (BATCH, TIME, depths[0])).astype(np.float32)
            result = session.run(top, {x: data})
            names = sorted(v.op.name for v in tf1.global_variables())
            tf1.train.Saver().save(session, prefix, write_meta_graph=False)
    return data, result, names


def _tf0_outputs(stack):
    """The TF 0.x graph of legacy_graphs restored from its own checkpoint, run on its ids."""
    with tf1.Graph().as_default() as graph:
        model = legacy_graphs.build_stack(stack.cell, stack.layers, stack.num_units,
                                          stack.input_depth, stack.generation,
                                          extra_tensors=True, optimizer=False)
        with tf1.Session(graph=graph) as session:
            tf1.train.Saver().restore(session, stack.prefix)
            ids = stack.feed["inputs"]
            return ids, session.run(model.outputs, {model.inputs: ids})


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """name -> (prefix, export argv, what the graph computed or None)."""
    root = tmp_path_factory.mktemp("stacks")
    rng = np.random.RandomState(3)
    made = {}

    def by_name(name, variables, *argv):
        made[name] = (save_variables(str(root / name), variables, write_meta_graph=False),
                      list(argv), None)

    prefix = str(root / "one-layer-depth" / "model.ckpt")
    os.makedirs(os.path.dirname(prefix))
    made["one-layer-depth"] = (prefix, [], export_cases.save_case(
        prefix, cell="gru", layers=1, units=UNITS, depth=DEPTH, multi_rnn_cell=True))
    stack = legacy_graphs.save_legacy_stack(str(root / "tf0-one-layer"), cell="gru", layers=1,
                                            num_units=UNITS, input_depth=UNITS,
                                            generation="tf0")
    made["tf0-one-layer"] = (stack.prefix, ["--embedding", "embedding"], _tf0_outputs(stack))
    by_name("may-be-shared", _gru("rnn/multi_rnn_cell/cell_0/gru_cell", UNITS, UNITS, rng))
    by_name("missing-layer", dict(_gru("rnn/multi_rnn_cell/cell_0/gru_cell", DEPTH, UNITS, rng),
                                  **_gru("rnn/multi_rnn_cell/cell_2/gru_cell", UNITS, UNITS,
                                         rng)))
    for name, depths, reverse in (("numbered", (DEPTH, UNITS, UNITS), False),
                                  ("numbered-side-by-side", (UNITS, UNITS), True)):
        prefix = str(root / name / "model.ckpt")
        os.makedirs(os.path.dirname(prefix))
        data, result, names = _numbered_graph(prefix, depths, reverse_second=reverse)
        made[name] = (prefix, [], (data, result, names))
    by_name("numbered-missing", dict(_gru("enc/gru_cell", DEPTH, UNITS, rng),
                                     **_gru("enc/gru_cell_2", UNITS, UNITS, rng)))
    by_name("numbered-not-chained", dict(_gru("enc/gru_cell", DEPTH, UNITS, rng),
                                         **_gru("enc/gru_cell_1", DEPTH, UNITS, rng)))
    for attention in ("luong", "bahdanau"):
        variables = _nmt(attention, rng)
        by_name(f"nmt-{attention}-decoder", variables, "--stack", "dynamic_seq2seq/decoder")
        by_name(f"nmt-{attention}-encoder", variables, "--stack", "dynamic_seq2seq/encoder")
    by_name("custom-attention-cell", dict(
        _gru("rnn/attention_cell/multi_rnn_cell/cell_0/gru_cell", DEPTH, UNITS, rng),
        **_gru("rnn/attention_cell/multi_rnn_cell/cell_1/gru_cell", UNITS, UNITS, rng),
        **{"rnn/attention_cell/attn_w": rng.normal(size=[UNITS, UNITS]).astype(np.float32)}))
    by_name("variable-in-the-rnn-scope", dict(
        _gru("rnn/gru_cell", DEPTH, UNITS, rng),
        **{"rnn/attn_v": rng.normal(size=[UNITS]).astype(np.float32)}))
    return made


def _plan(layouts, name, **options):
    prefix, argv, _ = layouts[name]
    stack = dict(zip(argv[::2], argv[1::2])).get("--stack")
    return legacy_share.keras.plan(prefix, stack=stack, **options)


def _refused(capsys, layouts, name, tmp_path, *argv):
    """The one-line refusal of `export`, which `export --dry-run` gives too (after its plan)."""
    prefix, base, _ = layouts[name]
    lines = []
    for dry in (["--dry-run"], []):
        with untouched(os.path.dirname(prefix)):
            code, _, err = run_main(capsys, "export", prefix, tmp_path / "m.keras", "--keras",
                                    "2", *base, *argv, *dry)
        assert code == 1 and not os.path.exists(tmp_path / "m.keras")
        lines.append(error_line(err))
    assert lines[0] == lines[1]
    return lines[1]


def test_a_one_layer_multi_rnn_cell_of_another_depth_is_one_layer_not_a_shared_stack(layouts):
    prefix, _, (inputs, lengths, outputs) = layouts["one-layer-depth"]
    plan = legacy_share.keras.plan(prefix)
    stack = plan.stack
    assert stack.scope == "rnn/multi_rnn_cell/cell_*/gru_cell"
    assert (stack.layers, stack.shared, stack.status, plan.refusal()) == (1, False, "exact", None)
    model = legacy_share.keras.build_model(prefix, keras=2)
    np.testing.assert_allclose(np.asarray(model([inputs, lengths])), outputs, atol=2e-5)


def test_a_tf0_one_layer_stack_is_one_layer_and_refuses_layers(capsys, layouts, tmp_path):
    prefix, argv, (ids, outputs) = layouts["tf0-one-layer"]
    assert any("RNN/MultiRNNCell/Cell0/GRUCell" in name for name in legacy_graphs._read_all(
        prefix))  # pylint: disable=protected-access
    plan = legacy_share.keras.plan(prefix, embedding="embedding")
    assert (plan.stack.layers, plan.stack.shared, plan.stack.status) == (1, False, "exact")
    model = legacy_share.keras.build_model(prefix, keras=2, embedding="embedding")
    full = np.full(len(ids), ids.shape[1], np.int32)
    np.testing.assert_allclose(np.asarray(model([ids, full])), outputs, atol=2e-5)
    line = _refused(capsys, layouts, "tf0-one-layer", tmp_path, *argv, "--layers", "3")
    assert "--layers 3" in line and "TF <= 1.1 names" in line


def test_a_lone_cell_0_that_may_be_shared_still_asks_for_layers(capsys, layouts, tmp_path):
    plan = _plan(layouts, "may-be-shared")
    assert plan.stack.shared and plan.stack.status == "refused" and "--layers K" in plan.refusal()
    line = _refused(capsys, layouts, "may-be-shared", tmp_path)
    assert "--layers K" in line
    code, out, _ = run_main(capsys, "export", layouts["may-be-shared"][0], tmp_path / "m.keras",
                            "--keras", "2", "--dry-run", "--json")
    assert code == 1 and line.endswith(json.loads(out)["refusal"])
    assert _plan(layouts, "may-be-shared", layers=2).refusal() is None


def test_a_stack_missing_a_layer_is_refused_naming_it_by_export_and_migrate(capsys, layouts,
                                                                          tmp_path):
    line = _refused(capsys, layouts, "missing-layer", tmp_path)
    assert "layer 1 (rnn/multi_rnn_cell/cell_1/gru_cell) is missing" in line
    assert "stores layers 0, 2" in line
    prefix = layouts["missing-layer"][0]
    for argv in (["--no-share"], ["--share-from", "1"]):
        with untouched(os.path.dirname(prefix)):
            code, _, err = run_main(capsys, "migrate", prefix, tmp_path / "out" / "m.ckpt",
                                    *argv)
        assert code == 1 and not os.path.exists(tmp_path / "out")
        line = error_line(err)
        assert "rnn/multi_rnn_cell/cell_1/gru_cell/" in line and "is missing" in line, line


def test_cells_tensorflow_numbered_in_one_scope_are_one_stack_in_their_order(layouts):
    prefix, _, (inputs, outputs, names) = layouts["numbered"]
    golden = [f"enc/{cell}/{v}" for cell in ("gru_cell", "gru_cell_1", "gru_cell_2")
              for v in ("candidate/bias", "candidate/kernel", "gates/bias", "gates/kernel")]
    assert names == golden  # what TensorFlow names cells called by hand in one scope
    plan = legacy_share.keras.plan(prefix)
    stack = plan.stack
    assert (stack.scope, stack.layers, stack.depths, stack.status) == (
        "enc/gru_cell{,_1,...}", 3, (DEPTH, UNITS, UNITS),
        "names by rule; no graph to check against")
    assert not plan.not_exported
    model = legacy_share.keras.build_model(prefix, keras=2)
    full = np.full(BATCH, TIME, np.int32)
    np.testing.assert_allclose(np.asarray(model([inputs, full])), outputs, atol=2e-5)


@pytest.mark.parametrize("name, words", [
    ("numbered-side-by-side", ("every cell takes input depth 6", "cannot tell a stack")),
    ("numbered-missing", ("layer 1 (enc/gru_cell_1) is missing",)),
    ("numbered-not-chained", ("cell 1 takes input depth 4, not the 6",)),
])
def test_numbered_cells_whose_order_or_shapes_are_not_certain_are_refused(capsys, layouts,
                                                                         tmp_path, name, words):
    line = _refused(capsys, layouts, name, tmp_path)
    assert "enc/gru_cell{,_1,...}" in line
    for text in words:
        assert text in line, line


@pytest.mark.parametrize("attention", ["luong", "bahdanau"])
def test_the_inner_stack_of_an_attention_wrapper_is_refused_naming_it(capsys, layouts, tmp_path,
                                                                      attention):
    plan = _plan(layouts, f"nmt-{attention}-decoder")
    assert plan.stack.status == "refused" and "AttentionWrapper" in plan.stack.reason
    line = _refused(capsys, layouts, f"nmt-{attention}-decoder", tmp_path)
    assert "dynamic_seq2seq/decoder/attention/multi_rnn_cell/cell_*/basic_lstm_cell" in line
    assert "AttentionWrapper" in line and "attention" in line
    encoder = _plan(layouts, f"nmt-{attention}-encoder")  # beside it, the encoder is whole
    assert encoder.stack.status == "exact" and encoder.stack.layers == 2


@pytest.mark.parametrize("name, tensor", [("custom-attention-cell", "rnn/attention_cell/attn_w"),
                                          ("variable-in-the-rnn-scope", "rnn/attn_v")])
def test_a_variable_in_the_scope_the_cells_ran_in_makes_the_stack_not_exact(capsys, layouts,
                                                                            tmp_path, name,
                                                                            tensor):
    line = _refused(capsys, layouts, name, tmp_path)
    assert f"{tensor} sits in the scope its cells were called in" in line


def _agreement_cases(root):
    """(case, prefix, argv): every export case of tests/test_export.py,
    tests/test_export_refusals.py and tests/test_cudnn_export.py, saved here."""
    from tests import test_export  # pylint: disable=import-outside-toplevel
    cases = []
    for case, (save, options) in test_export.CASES.items():
        prefix = str(root / case / "model.ckpt")
        os.makedirs(os.path.dirname(prefix))
        export_cases.save_case(prefix, **save)
        argv = []
        for key, value in options.items():
            flag = "--" + key.replace("_", "-")
            argv += [flag] if value is True else [flag, str(value)]
        cases.append((case, prefix, argv))
    for case, options in test_export.GENERATIONS.items():
        stack = legacy_graphs.save_legacy_stack(str(root / case), **options)
        cases.append((case, stack.prefix, ["--embedding", "embedding"]))
    cases += _cudnn_cases(root)
    saved = {case: prefix for case, prefix, _ in cases}
    per_layer = saved["gru-2-layers-depth-4"]
    cases += [("shared-without-layers", saved["gru-shared-3"], []),
              ("per-layer-with-layers", per_layer, ["--layers", "3"]),
              ("peepholes-without-custom-cells", saved["lstm-peepholes-projection"], []),
              ("clip-without-custom-cells", saved["lstm-2-layers"], ["--cell-clip", "0.05"]),
              ("embedding-of-the-wrong-shape", per_layer, ["--embedding", "softmax_w"])]
    return cases


def _cudnn_cases(root):
    """The cases of tests/test_cudnn_export.py, and the buffer without its layout (refused)."""
    from tests import test_cudnn_export  # pylint: disable=import-outside-toplevel
    cases = []
    for case, (layout, save, source) in test_cudnn_export.CASES.items():
        prefix, _ = save_cudnn_checkpoint(str(root / case), layout, **save)
        argv = {"meta": ["--meta", prefix + ".meta"], "ckpt": [],
                "flags": ["--cudnn", layout.kind, "--layers", str(layout.layers), "--units",
                          str(layout.units), "--input-size", str(layout.input_size)]
                + (["--bidirectional"] if layout.directions == 2 else [])}[source]
        cases.append((case, prefix, argv))
        if source == "flags":
            cases.append((case + "-without-layout", prefix, []))
    return cases


def test_the_dry_run_decides_as_the_real_run_on_every_export_case(capsys, layouts,
                                                                  tmp_path_factory):
    root = tmp_path_factory.mktemp("agree")
    cases = _agreement_cases(root) + [(name, p, argv) for name, (p, argv, _) in layouts.items()]
    outcomes = {"exact": 0, "refused": 0}
    for case, prefix, argv in cases:
        dst = root / "out" / f"{case}.keras"
        dry = run_main(capsys, "export", prefix, dst, "--keras", "2", "--dry-run", *argv)
        real = run_main(capsys, "export", prefix, dst, "--keras", "2", *argv)
        assert dry[0] == real[0], (case, dry, real)
        if real[0]:
            assert error_line(dry[2]) == error_line(real[2]), case
            outcomes["refused"] += 1
        else:
            assert os.path.isfile(dst), case
            outcomes["exact"] += 1
    assert outcomes["exact"] >= 20 and outcomes["refused"] >= 12, outcomes


def _char_rnn(prefix, vocab=13, units=UNITS):
    """sherjilozair/char-rnn-tensorflow's graph: softmax_w/b made in scope `rnnlm`, an
    embedding at the root, and legacy_seq2seq.rnn_decoder(scope='rnnlm') calling a 2-layer
    MultiRNNCell step by step in that scope (written out here: TF 2 has no legacy_seq2seq)."""
    graph = tf1.Graph()
    with graph.as_default():
        ids = tf1.placeholder(tf.int32, [BATCH, TIME])
        cell = rnn_cell.MultiRNNCell([rnn_cell.LSTMCell(units) for _ in range(2)])
        with tf1.variable_scope("rnnlm"):
            softmax_w = tf1.get_variable("softmax_w", [units, vocab])
            softmax_b = tf1.get_variable("softmax_b", [vocab])
        embedding = tf1.get_variable("embedding", [vocab, units])
        steps = tf.unstack(tf1.nn.embedding_lookup(embedding, ids), axis=1)
        state, logits = cell.zero_state(BATCH, tf.float32), []
        with tf1.variable_scope("rnnlm"):
            for step in steps:
                output, state = cell(step, state)
                logits.append(tf.matmul(output, softmax_w) + softmax_b)
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            tf1.train.Saver().save(session, prefix, write_meta_graph=False)
    return prefix


def test_a_char_rnn_refusal_names_the_embedding_and_dense_flags_that_make_it_exact(capsys,
                                                                                   tmp_path):
    prefix = _char_rnn(str(tmp_path / "charrnn" / "model.ckpt"))
    flags = ["--embedding", "embedding", "--dense", "rnnlm/softmax_w,rnnlm/softmax_b"]
    with untouched(os.path.dirname(prefix)):
        code, _, err = run_main(capsys, "export", prefix, tmp_path / "m.keras", "--keras", "2",
                                "--dry-run")
    line = error_line(err)
    assert code == 1 and "sits in the scope its cells were called in" in line
    assert line.endswith("the output projection after them, pass " + " ".join(flags))
    plan = legacy_share.keras.plan(prefix, embedding="embedding",
                                   dense=("rnnlm/softmax_w", "rnnlm/softmax_b"))
    assert plan.stack.status == "exact" and plan.stack.layers == 2


def test_directions_sharing_their_cells_are_refused_naming_that_graph(capsys, tmp_path):
    graph = tf1.Graph()
    with graph.as_default():
        inputs = tf1.placeholder(tf.float32, [BATCH, TIME, UNITS])
        cells = rnn_cell.MultiRNNCell([rnn_cell.LSTMCell(UNITS) for _ in range(2)])
        with tf1.variable_scope("bi_rnn"):  # the same cells as both directions: only fw stored
            tf1.nn.bidirectional_dynamic_rnn(cells, cells, inputs, dtype=tf.float32)
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            prefix = tf1.train.Saver().save(session, str(tmp_path / "in" / "model.ckpt"),
                                            write_meta_graph=False)
    with untouched(os.path.dirname(prefix)):
        code, _, err = run_main(capsys, "export", prefix, tmp_path / "m.keras", "--keras", "2",
                                "--dry-run")
    line = error_line(err)
    assert code == 1 and not os.path.exists(tmp_path / "m.keras")
    assert "only the fw direction is stored" in line
    assert "bidirectional_dynamic_rnn(cells, the same cells)" in line
