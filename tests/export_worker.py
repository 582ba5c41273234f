"""Runs many exports, or loads many exported files, in ONE fresh process of one Keras.

    python tests/export_worker.py export JOBS.json RESULTS.json   # legacy_share.keras.export
    python tests/export_worker.py load JOBS.json OUTPUTS.npz       # reload from the files, run

The Keras is the environment's: TF_USE_LEGACY_KERAS=1 -> tf_keras, unset -> Keras 3
(KERAS_BACKEND=jax: Keras 3 on JAX, where TensorFlow is never imported).
"""

import json
import os
import sys
import traceback

import numpy as np

import legacy_share.keras  # first: registers LegacyLSTMCell, and Keras 3 unless told otherwise
from legacy_share import cudnn, testing


def _export(jobs):
    results = {"#probe": _probe(jobs[0]["src"], os.path.dirname(jobs[0]["dst"]))}
    for job in jobs:
        try:
            options = dict(job["options"])
            if isinstance(options.get("cudnn"), dict):  # a cudnn.Layout, sent as its fields
                options["cudnn"] = cudnn.Layout(**options["cudnn"])
            report = legacy_share.keras.export(job["src"], job["dst"], **options)
            results[job["id"]] = dict(ok=True, max_diff=report.proof.max_diff,
                                      relative=report.proof.relative, path=report.path,
                                      table=report.plan.format_table())
        except legacy_share.Error as exc:
            results[job["id"]] = dict(ok=False, type=type(exc).__name__, message=str(exc),
                                      exists=os.path.exists(job["dst"]))
        except Exception:  # pylint: disable=broad-except
            results[job["id"]] = dict(ok=False, type="crash", message=traceback.format_exc())
    return results


def _probe(src, directory):
    """In this Keras 3 process: the migrator works; the shared cells say why they cannot."""
    # --no-share: layer:0 would merge layers of different input depths into one shared cell,
    # which no graph can build (the name check refuses it).
    migrated = bool(legacy_share.migrate(src, os.path.join(directory, "probe", "m.ckpt"),
                                         share=False).steps)
    try:
        legacy_share.SharedGRUCell  # pylint: disable=pointless-statement
        cells = "served"
    except legacy_share.LegacyKerasError as exc:
        cells = f"LegacyKerasError: {exc}"
    return dict(migrated=migrated, keras=testing.keras_in_use(), cells=cells)


def _load(jobs):
    flavour = testing.keras_in_use()
    outputs = {"backend": np.array(os.environ.get("KERAS_BACKEND", "tensorflow"))}
    for job in jobs:
        data = np.load(job["inputs"])
        inputs = data["inputs"]
        # A tf.keras checkpoint's model takes `inputs` alone (no `lengths` in its feed).
        lengths = data["lengths"] if "lengths" in data else None
        feed = dict(inputs=inputs) if lengths is None else dict(inputs=inputs, lengths=lengths)
        path = job["path"]
        if path.endswith(".keras"):
            if flavour == 3:
                import keras  # pylint: disable=import-outside-toplevel
                model = keras.saving.load_model(path)
            else:
                from legacy_share.keras import model as m  # pylint: disable=import-outside-toplevel
                model = m.keras_module(2).models.load_model(
                    path, custom_objects=legacy_share.keras.custom_objects(2))
            outputs[job["id"] + "/weight_dtypes"] = _weight_dtypes(model)
            by_dict = model(feed)
            by_list = model(inputs if lengths is None else [inputs, lengths])
            outputs[job["id"] + "/dict"] = np.asarray(by_dict)
            outputs[job["id"]] = np.asarray(by_list)
        elif path.endswith(".weights.h5"):
            # pylint: disable-next=import-outside-toplevel
            from legacy_share.keras import exporting, model as m
            with open(exporting.architecture_path(path), encoding="utf-8") as f:
                model = m.keras_module(flavour).models.model_from_json(f.read())
            model.load_weights(path)
            outputs[job["id"] + "/weight_dtypes"] = _weight_dtypes(model)
            outputs[job["id"]] = np.asarray(model(inputs if lengths is None else [inputs, lengths]))
        else:
            import tensorflow as tf  # pylint: disable=import-outside-toplevel
            serve = tf.saved_model.load(path).signatures["serving_default"]
            result = serve(**{k: tf.constant(v) for k, v in feed.items()})
            outputs[job["id"]] = np.asarray(next(iter(result.values())))
    outputs["tensorflow_imported"] = np.array("tensorflow" in sys.modules)
    return outputs


def _weight_dtypes(model):
    """The dtypes of the reloaded model's weights, as names."""
    return np.array([str(getattr(w.dtype, "name", w.dtype)) for w in model.weights])


def main():
    mode, jobs_path, out_path = sys.argv[1:4]
    with open(jobs_path, encoding="utf-8") as f:
        jobs = json.load(f)
    if mode == "export":
        with open(out_path, "w", encoding="utf-8") as f:
            json.dump(_export(jobs), f)
    else:
        np.savez(out_path, **_load(jobs))


if __name__ == "__main__":
    main()
