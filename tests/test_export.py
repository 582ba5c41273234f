"""legacy_share.keras end to end: real TF1 graphs saved by TF's Saver, exported, reloaded from the
FILE in a fresh process of the right Keras, and compared with the TF1 graph's own outputs.

Subprocesses, each doing every case in one go: one Keras 3 process exports, a fresh Keras 3
process loads, a fresh tf_keras process loads the tf_keras exports (written here, in pytest's
tf_keras process), and a fresh Keras 3 process on JAX loads the `.keras` files.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import legacy_share
from legacy_share import testing
from legacy_share.testing import legacy_graphs
from legacy_share.testing import tf, tf1  # first: pytest's process serves tf_keras (the TF1 cells)
from tests import export_cases
import legacy_share.keras  # pylint: disable=wrong-import-order  (after TensorFlow: keeps tf_keras)

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "export_worker.py")
HAS_KERAS3 = testing.supports_keras3()
NO_KERAS3 = f"TensorFlow {tf.__version__} has no Keras 3 (it came with TensorFlow 2.16)"
HAS_JAX = importlib.util.find_spec("jax") is not None
NO_JAX = NO_KERAS3 if not HAS_KERAS3 else "jax is not installed (pip install 'jax[cpu]')"

# id -> (export_cases.save_case options, export options)
CASES = {
    "gru-2-layers-depth-4": (dict(cell="gru", embedding=True, dense=True),
                             dict(embedding="embedding", dense="softmax_w,softmax_b")),
    "basic-lstm-3-layers": (dict(cell="basic_lstm", layers=3, depth=5), {}),
    "lstm-2-layers": (dict(cell="lstm"), {}),
    "basic-rnn-2-layers-v1": (dict(cell="basic_rnn", write_version="V1"), {}),
    "gru-one-bare-cell": (dict(cell="gru", layers=1), {}),
    "gru-shared-3": (dict(cell="gru", layers=3, depth=6, shared=True), dict(layers=3)),
    "basic-lstm-shared-2": (dict(cell="basic_lstm", depth=6, shared=True), dict(layers=2)),
    "basic-lstm-forget-bias-0": (dict(cell="basic_lstm", forget_bias=0.0),
                                 dict(forget_bias=0.0)),
    "gru-bidirectional-1": (dict(cell="gru", topology="bidirectional", layers=1), {}),
    "lstm-bidirectional-stacks-2": (dict(cell="basic_lstm", topology="bidirectional"), {}),
    "gru-stack-bidirectional-2": (dict(cell="gru", topology="stacked"), {}),
    "lstm-peepholes-projection": (
        dict(cell="lstm", cell_options=dict(use_peepholes=True, num_proj=3)),
        dict(custom_cells=True)),
    # Clips small enough to bind on most steps: an export without them differs (see below).
    "lstm-cell-clip": (dict(cell="lstm", cell_options=dict(cell_clip=0.05)),
                       dict(custom_cells=True, cell_clip=0.05)),
    "lstm-clips-projection": (
        dict(cell="lstm", cell_options=dict(cell_clip=0.05, num_proj=3, proj_clip=0.02)),
        dict(custom_cells=True, cell_clip=0.05, proj_clip=0.02)),
    "lstm-bidirectional-stacks-clipped": (
        dict(cell="lstm", topology="bidirectional", cell_options=dict(cell_clip=0.05)),
        dict(custom_cells=True, cell_clip=0.05)),
}
FORMATS = {"gru-2-layers-depth-4": ".weights.h5", "basic-lstm-3-layers": ""}  # "" -> SavedModel
KERAS2_CASES = ("gru-2-layers-depth-4", "basic-lstm-3-layers", "lstm-bidirectional-stacks-2",
                "gru-shared-3", "lstm-peepholes-projection", "lstm-clips-projection",
                "lstm-bidirectional-stacks-clipped")
GENERATIONS = {"tf0-gru-embedding-v1": dict(cell="gru", generation="tf0", input_depth=5),
               "tf1.0-basic-lstm-bidirectional": dict(cell="basic_lstm", generation="tf1.0",
                                                      bidirectional=True, write_version="V2"),
               "tf0-lstm-w0-embedding": dict(cell="lstm", generation="tf0", input_depth=5)}


def _env(keras, **extra):
    env = {k: v for k, v in os.environ.items()
           if k not in (legacy_share.LEGACY_KERAS_SWITCH, "LEGACY_SHARE_SET_TF_USE_LEGACY_KERAS")}
    if keras == 2:
        env[legacy_share.LEGACY_KERAS_SWITCH] = "1"
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.path.dirname(os.path.dirname(WORKER)),
               **extra)
    return env


def _worker(mode, jobs, directory, keras, **env):
    jobs_path = os.path.join(directory, f"{mode}-{keras}-{len(os.listdir(directory))}.json")
    out = jobs_path[:-5] + (".json" if mode == "export" else ".npz")
    with open(jobs_path, "w", encoding="utf-8") as f:
        json.dump(jobs, f)
    done = subprocess.run([sys.executable, WORKER, mode, jobs_path, out], env=_env(keras, **env),
                          capture_output=True, text=True, check=False, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    if mode == "export":
        with open(out, encoding="utf-8") as f:
            return json.load(f)
    return dict(np.load(out))


def _generation_outputs(stack):
    """Runs the old-named graph of `legacy_graphs` restored from its own checkpoint."""
    graph = tf1.Graph()
    with graph.as_default():
        model = legacy_graphs.build_stack(
            stack.cell, stack.layers, stack.num_units, stack.input_depth, stack.generation,
            stack.bidirectional, extra_tensors=True, optimizer=False)
        saver = tf1.train.Saver()
        with tf1.Session(graph=graph) as session:
            saver.restore(session, stack.prefix)
            ids = stack.feed["inputs"]
            return ids, session.run(model.outputs, {model.inputs: ids})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every case saved, exported (Keras 3 and tf_keras), reloaded in fresh processes."""
    root = tmp_path_factory.mktemp("export")
    expected, jobs = {}, []
    for case, (save, options) in CASES.items():
        prefix = str(root / case / "model.ckpt")
        os.makedirs(os.path.dirname(prefix))
        inputs, lengths, outputs = export_cases.save_case(prefix, **save)
        expected[case] = outputs
        jobs.append(export_job(root, case, prefix, options, inputs, lengths,
                               FORMATS.get(case, ".keras")))
    for case, options in GENERATIONS.items():
        directory = root / case
        os.makedirs(directory)
        stack = legacy_graphs.save_legacy_stack(str(directory), **options)
        ids, outputs = _generation_outputs(stack)
        expected[case] = outputs
        jobs.append(export_job(root, case, stack.prefix, dict(embedding="embedding"), ids,
                               np.full(len(ids), ids.shape[1], np.int32)))
    return dict(expected=expected, **export_and_reload(
        jobs, root, KERAS2_CASES, suffix=lambda case: FORMATS.get(case, ".keras"),
        jax=True))


def export_job(root, case, src, options, inputs, lengths, suffix=".keras"):
    """One job of tests/export_worker.py: export `src` to root/k3/<case><suffix>, then run it on
    `inputs` and `lengths` (saved as root/<case>.npz)."""
    feed = str(root / f"{case}.npz")
    np.savez(feed, inputs=inputs, lengths=lengths)
    return dict(id=case, src=src, options=options, dst=str(root / "k3" / (case + suffix)),
                inputs=feed)


def export_and_reload(jobs, root, keras2_cases, suffix=lambda case: ".keras", jax=False):
    """Exports `jobs` in one Keras 3 child, reloads the files in a fresh one (and on JAX when
    `jax`); exports `keras2_cases` for tf_keras here and reloads them in a tf_keras child.
    The children's job files go to root/jobs.

    -> {"jobs", "k3_export", "k3", "jax", "k2_export", "k2"} (the Keras 3 keys when it exists).
    """
    work = str(root / "jobs")
    os.makedirs(work)
    result = dict(jobs={j["id"]: j for j in jobs})
    if HAS_KERAS3:
        result["k3_export"] = _worker("export", [dict(j, options=dict(j["options"], keras=3))
                                                 for j in jobs], work, 3)
        loadable = [dict(j, path=j["dst"]) for j in jobs if result["k3_export"][j["id"]]["ok"]]
        result["k3"] = _worker("load", loadable, work, 3)
        if jax and HAS_JAX:
            result["jax"] = _worker("load", [j for j in loadable if j["path"].endswith(".keras")],
                                    work, 3, KERAS_BACKEND="jax")
    k2_jobs, result["k2_export"] = [], {}
    for case in keras2_cases:
        job = result["jobs"][case]
        path = str(root / "k2" / (case + suffix(case)))
        try:  # pytest's process serves tf_keras: the tf_keras exports run here
            report = legacy_share.keras.export(job["src"], path, keras=2, **job["options"])
            result["k2_export"][case] = dict(ok=True, relative=report.proof.relative)
            k2_jobs.append(dict(job, path=path))
        except legacy_share.Error as exc:
            result["k2_export"][case] = dict(ok=False, message=str(exc))
    result["k2"] = _worker("load", k2_jobs, work, 2)
    return result


needs_keras3 = pytest.mark.skipif(not HAS_KERAS3, reason=NO_KERAS3)


@needs_keras3
@pytest.mark.parametrize("case", list(CASES) + list(GENERATIONS))
def test_keras3_file_reloaded_in_a_fresh_process_equals_the_tf1_graph(exported, case):
    report = exported["k3_export"][case]
    assert report["ok"], report
    assert report["relative"] <= 1e-5
    outputs, expected = exported["k3"][case], exported["expected"][case]
    assert outputs.shape == expected.shape
    np.testing.assert_allclose(outputs, expected, rtol=0,
                               atol=2e-5 * max(1, np.abs(expected).max()))
    if case + "/dict" in exported["k3"]:
        np.testing.assert_array_equal(exported["k3"][case + "/dict"], outputs)
    lengths = np.load(exported["jobs"][case]["inputs"])["lengths"]
    for row, length in enumerate(lengths):
        assert not np.any(outputs[row, length:]) or "dense" in str(exported["jobs"][case])


@pytest.mark.parametrize("case", KERAS2_CASES)
def test_tf_keras_file_reloaded_in_a_fresh_process_equals_the_tf1_graph(exported, case):
    assert exported["k2_export"][case]["ok"], exported["k2_export"][case]
    outputs, expected = exported["k2"][case], exported["expected"][case]
    np.testing.assert_allclose(outputs, expected, rtol=0,
                               atol=2e-5 * max(1, np.abs(expected).max()))


@pytest.mark.parametrize("case", ["lstm-cell-clip", "lstm-clips-projection",
                                  "lstm-bidirectional-stacks-clipped"])
def test_the_clips_bind_so_an_export_without_them_computes_something_else(exported, case):
    """In this tf_keras process: the same cells without --cell-clip / --proj-clip miss the TF1
    graph's outputs by far, so the clipped cases above test the clips."""
    job, expected = exported["jobs"][case], exported["expected"][case]
    feed = np.load(job["inputs"])
    unclipped = legacy_share.keras.build_model(job["src"], keras=2, custom_cells=True)
    outputs = np.asarray(unclipped([feed["inputs"], feed["lengths"]]))
    assert np.abs(outputs - expected).max() > 1e-2


@pytest.mark.skipif(not (HAS_KERAS3 and HAS_JAX), reason=NO_JAX)
def test_keras3_files_run_on_jax_with_the_same_outputs(exported):
    on_jax = exported["jax"]
    assert str(on_jax["backend"]) == "jax"
    cases = [c for c in exported["k3"] if "/" not in c and c in exported["expected"]
             and exported["jobs"][c]["dst"].endswith(".keras")]
    assert len(cases) >= 10 and "lstm-peepholes-projection" in cases
    for case in cases:
        expected = exported["expected"][case]
        np.testing.assert_allclose(on_jax[case], expected, rtol=0,
                                   atol=2e-5 * max(1, np.abs(expected).max()), err_msg=case)


@needs_keras3
def test_the_migrator_works_and_the_shared_cells_refuse_in_a_keras3_process(exported):
    probe = exported["k3_export"]["#probe"]
    assert probe["migrated"] and probe["keras"] == 3
    assert probe["cells"].startswith("LegacyKerasError: ") and "Keras 3" in probe["cells"]
