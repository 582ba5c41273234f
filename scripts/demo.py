"""The README's main job: a legacy per-layer checkpoint migrated, restored by a shared graph, checked.

    scripts/demo                 # the bundled TF 0.x checkpoint (V1, 2-layer GRU with Adam)
    scripts/demo PATH [--out P]  # your own checkpoint: inspect, plan, migrate, restore strictly

Steps: the inspect table, the migration plan, the migration, `verify` against the shared graph's
MetaGraphDef, a strict `Saver` restoring every variable of the shared graph, and (bundled
checkpoint) the shared graph's outputs against the legacy graph's with layer 0's weights in
every layer; last, the same checkpoint exported to a Keras 3 `.keras` model (in a fresh Keras 3
process), reloaded, and its outputs compared with the legacy graph's.
"""

import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLED = os.path.join(ROOT, "examples", "legacy_checkpoint")
BUNDLED_CONFIG = {"cell": "gru", "layers": 2, "num_units": 16}  # scripts/make_demo_checkpoint.py
GRU_KERNEL = "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel"

import legacy_share  # noqa: E402  (silences TensorFlow before it is imported)

tf = legacy_share.prepare_tensorflow(prog="demo")
tf1 = tf.compat.v1

import numpy as np  # noqa: E402

from legacy_share import testing  # noqa: E402
from legacy_share import migration, verifying  # noqa: E402
from legacy_share.testing import legacy_graphs  # noqa: E402


def _title(number, text):
    print(f"\n== {number}. {text}")


def _shared_graph(config, meta_path):
    """Builds MultiRNNCell([SharedGRUCell(n)] * k) with the bundled model's extras; saves its meta graph."""
    graph = tf1.Graph()
    with graph.as_default():
        model = legacy_graphs.build_stack(generation="shared", **config)
        tf1.train.export_meta_graph(meta_path)
    return graph, model


def _bare_shared_gru(units, layers, depth):
    """A bare shared GRU stack under `rnn/`, for a user's checkpoint of unknown surroundings."""
    graph = tf1.Graph()
    with graph.as_default():
        inputs = tf1.placeholder(tf.float32, [1, 3, depth])
        stack = tf1.nn.rnn_cell.MultiRNNCell([legacy_share.SharedGRUCell(units)] * layers)
        outputs, _ = tf1.nn.dynamic_rnn(stack, inputs, dtype=tf.float32)
    return graph, inputs, outputs


def _restore_strictly(graph, checkpoint, var_list=None):
    """Restores every variable of `graph` (or `var_list`) from `checkpoint`: Saver fails on any missing."""
    session = tf1.Session(graph=graph)
    with graph.as_default():
        variables = tf1.global_variables() if var_list is None else var_list
        tf1.train.Saver(var_list=variables).restore(session, checkpoint)
    return session, len(variables)


def _legacy_outputs(checkpoint, config, feed_seed, layer_0_everywhere):
    graph = tf1.Graph()
    with graph.as_default():
        model = legacy_graphs.build_stack(generation="tf0", **config)
        layer = re.compile(r"/Cell(\d+)/")
        by_name = {v.op.name: v for v in tf1.global_variables()}
        ties = [v.assign(by_name[layer.sub("/Cell0/", name)])
                for name, v in by_name.items() if "/Adam" not in name and layer.search(name)
                and layer.search(name).group(1) != "0"]
    session, _ = _restore_strictly(graph, checkpoint)
    with session, graph.as_default():
        if layer_0_everywhere:
            session.run(ties)
        return session.run(model.outputs, model.feed(feed_seed))


def run_bundled(out):
    checkpoint = tf.train.latest_checkpoint(BUNDLED)
    plan = run_tool_steps(BUNDLED, out)
    _title(4, "the shared graph: verify against its MetaGraphDef, restore with a strict Saver")
    meta_path = os.path.join(os.path.dirname(out) or ".", "shared_graph.meta")
    graph, model = _shared_graph(BUNDLED_CONFIG, meta_path)
    report = verifying.verify_checkpoint(out, meta_path)
    print(report.format())
    if not report.ok:
        raise legacy_share.VerificationError(f"{out} does not fit the shared graph {meta_path}")
    session, restored = _restore_strictly(graph, out)
    with graph.as_default():
        created = sorted(v.op.name for v in tf1.global_variables())
    written = sorted(step.name for step in plan.steps)
    if created != written:
        raise legacy_share.VerificationError(
            f"the shared graph's variables and {out}'s tensors differ: "
            f"{sorted(set(created) ^ set(written))}")
    print(f"restored all {restored} variables of MultiRNNCell([SharedGRUCell(16)] * 2) "
          f"(4 GRU variables + Adam slots + extras) from {out}; no tensor left over")
    _title(5, "outputs: shared graph vs legacy graph with layer 0's weights in both layers")
    with session, graph.as_default():
        shared = session.run(model.outputs, model.feed(7))
    legacy = _legacy_outputs(checkpoint, BUNDLED_CONFIG, 7, layer_0_everywhere=True)
    difference = float(np.max(np.abs(shared - legacy)))
    untied = _legacy_outputs(checkpoint, BUNDLED_CONFIG, 7, layer_0_everywhere=False)
    print(f"outputs {list(shared.shape)}: max |shared - legacy| = {difference:.2e} "
          f"(against the legacy graph with its own layer-1 weights: "
          f"{float(np.max(np.abs(shared - untied))):.2e}, so the check can tell them apart)")
    if difference > 1e-5:
        raise legacy_share.VerificationError(
            f"the shared graph's outputs differ from the legacy graph's by {difference:.3g}")
    print(f"\nPROVEN: {os.path.relpath(checkpoint, ROOT)} (TF 0.x names, V1, one GRU per layer) "
          f"became {out} (V2, one shared set); a shared graph restored it strictly and its outputs "
          f"equal the legacy graph's with layer 0's weights (max |diff| {difference:.1e}).")
    run_keras_export(checkpoint, os.path.join(os.path.dirname(out) or ".", "model.keras"), untied)


_KERAS3_CHILD = """
import sys, numpy as np
import legacy_share.keras
checkpoint, destination, ids_path = sys.argv[1:4]
report = legacy_share.keras.export(checkpoint, destination, embedding="embedding", force=True)
print(report.plan.format_table())
print("export proof:", report.proof.describe())
import keras
model = keras.saving.load_model(destination)
ids = np.load(ids_path)
np.save(ids_path, np.asarray(model([ids, np.full(len(ids), ids.shape[1], np.int32)])))
print(f"keras {keras.__version__}: reloaded {destination}")
"""


def run_keras_export(checkpoint, destination, legacy):
    """Step 6: the legacy checkpoint as a Keras 3 model (a fresh process: one Keras per process)."""
    _title(6, f"export to Keras 3 -> {destination}, reload it, compare with the legacy graph")
    if not testing.supports_keras3():
        _export_to_tf_keras(checkpoint, destination, legacy)
        return
    ids_path = os.path.join(os.path.dirname(os.path.abspath(destination)), "demo_ids.npy")
    np.save(ids_path, _legacy_ids(7))
    env = {k: v for k, v in os.environ.items() if k != legacy_share.LEGACY_KERAS_SWITCH}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    done = subprocess.run([sys.executable, "-c", _KERAS3_CHILD, checkpoint, destination,
                           ids_path], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise legacy_share.ExportError(f"the Keras 3 export failed: {done.stderr.strip()[-2000:]}")
    print(done.stdout.rstrip())
    keras_outputs = np.load(ids_path)
    os.remove(ids_path)
    _prove_export(checkpoint, destination, keras_outputs, legacy,
                  "a Keras 3 model (Embedding + 2 x GRU(reset_after=False)) that loads without "
                  "tf.compat.v1")


def _export_to_tf_keras(checkpoint, destination, legacy):
    """TensorFlow < 2.16 has no Keras 3: the same step with its tf.keras, in this process."""
    import legacy_share.keras  # pylint: disable=import-outside-toplevel,redefined-outer-name
    report = legacy_share.keras.export(checkpoint, destination, keras=2, embedding="embedding",
                                       force=True)
    print(f"TensorFlow {tf.__version__} has no Keras 3: exported for its tf.keras instead")
    print("export proof:", report.proof.describe())
    ids = _legacy_ids(7)
    model = tf.keras.models.load_model(destination)
    outputs = np.asarray(model([ids, np.full(len(ids), ids.shape[1], np.int32)]))
    _prove_export(checkpoint, destination, outputs, legacy,
                  "a tf.keras model (Embedding + 2 x GRU(reset_after=False))")


def _prove_export(checkpoint, destination, outputs, legacy, what):
    """The demo's last line: the reloaded model's `outputs` equal the legacy graph's."""
    difference = float(np.max(np.abs(outputs - legacy)))
    if difference > 1e-5:
        raise legacy_share.VerificationError(
            f"the exported model's outputs differ from the legacy graph's by {difference:.3g}")
    print(f"\nPROVEN: {os.path.relpath(checkpoint, ROOT)} (TF 0.x, V1) became {destination}, "
          f"{what}; its outputs equal the legacy graph's (max |diff| {difference:.1e}).")


def _legacy_ids(feed_seed):
    graph = tf1.Graph()
    with graph.as_default():
        model = legacy_graphs.build_stack(generation="tf0", **BUNDLED_CONFIG)
        return model.feed(feed_seed)[model.inputs]


def run_tool_steps(source, out):
    _title(1, f"inspect {source}")
    print(migration.inspect_checkpoint(source).format_table())
    _title(2, "migration plan (dry run, strategy first)")
    plan = migration.plan_checkpoint(source)
    print(plan.format_table())
    _title(3, f"migrate -> {out}")
    migration.migrate(source, out, force=True)
    print(f"wrote {out} and verified it by reading back every tensor; {source} was only read")
    print(migration.inspect_checkpoint(out).format_table().splitlines()[-1])
    return plan


def run_user(source, out):
    plan = run_tool_steps(source, out)
    steps = {step.name: step for step in plan.steps}
    if GRU_KERNEL not in steps:
        print(f"\nPROVEN: {source} migrated to {out} and read back tensor by tensor "
              f"({len(plan.steps)} tensors). No `rnn/multi_rnn_cell` GRU stack found, so no "
              f"shared graph was built: restore it with your own graph (legacy-share verify "
              f"{out} --meta YOUR.meta).")
        return
    kernel, bias = steps[GRU_KERNEL], steps[GRU_KERNEL.replace("kernel", "bias")]
    units = bias.shape[0] // 2
    layers = max(len(kernel.layers), 1)
    _title(4, f"restore into MultiRNNCell([SharedGRUCell({units})] * {layers}) with a strict Saver")
    graph, inputs, outputs = _bare_shared_gru(units, layers, kernel.shape[0] - units)
    session, restored = _restore_strictly(graph, out)
    with session, graph.as_default():
        value = session.run(outputs, {inputs: np.ones(inputs.shape.as_list(), np.float32)})
    print(f"restored {restored} GRU variables; outputs {list(value.shape)} finite: "
          f"{bool(np.all(np.isfinite(value)))}")
    print(f"\nPROVEN: {source} migrated to {out}; a {layers}-layer shared GRU graph restored it "
          f"with a strict Saver and runs.")


def main(argv=None):
    parser = argparse.ArgumentParser(description="legacy_share demonstration")
    parser.add_argument("checkpoint", nargs="?", help="your checkpoint (default: the bundled one)")
    parser.add_argument("--out", default=os.path.relpath(os.path.join(ROOT, "demo-output",
                                                                     "shared.ckpt")),
                        help="output prefix, replaced on every run (default: %(default)s, "
                             "in the repository)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    try:
        if args.checkpoint:
            run_user(args.checkpoint, args.out)
        else:
            run_bundled(args.out)
    except legacy_share.Error as exc:
        if args.debug:
            raise
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
