"""The yardstick of a tf.keras checkpoint's export: tf_keras's own layers, restored by tf_keras
from the checkpoint (`model.load_weights(prefix)`), run on the probe inputs.

The export's process serves Keras 3, so tf_keras runs in ONE child process per export (JSON
in, .npy out, bounded time), as `legacy_share.graph_names` does for the TF1 graphs:

    python -m legacy_share.keras.tf2_reference < job.json      # the child
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from legacy_share import _process
from legacy_share.errors import ProofError, first_line

__all__ = ["reference_outputs", "CHILD_TIMEOUT"]

CHILD_TIMEOUT = 300  # seconds: a child importing TensorFlow on a busy machine takes ~10


def reference_outputs(plan, inputs):
    """What tf_keras's model of `plan`, restored from `plan.prefix`, outputs for `inputs`.

    Raises:
      ProofError: the child failed, timed out, or tf_keras could not restore every weight of
        the model from the checkpoint (its reading of the object graph differs from the plan's).
    """
    folder = tempfile.mkdtemp(prefix="legacy-share-reference-")
    try:
        np.save(os.path.join(folder, "inputs.npy"), inputs)
        job = dict(prefix=plan.prefix, model_path=plan.model_path, dtype=plan.dtype,
                   sequential=plan.sequential,
                   layers=[layer.to_dict() for layer in plan.layers], folder=folder)
        try:
            done = _process.run_with_legacy_keras(__name__, json.dumps(job), CHILD_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ProofError(f"{plan.prefix}: the tf_keras process that restores the "
                             f"checkpoint failed ({first_line(exc)})") from exc
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines or lines[-1] != "ok":
            why = (lines[-1] if lines and lines[-1].startswith("error: ") else
                   (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1])
            raise ProofError(f"{plan.prefix}: tf_keras cannot run the planned model restored "
                             f"from the checkpoint ({why.removeprefix('error: ')}); nothing "
                             f"written")
        return np.load(os.path.join(folder, "outputs.npy"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _restored_outputs(job):
    """In the child: tf_keras's model of the job's plan, restored by tf_keras, run."""
    # pylint: disable=import-outside-toplevel
    from legacy_share.keras import model as keras_model
    from legacy_share.keras import tf2_checkpoints, tf2_layers, tf2_model
    layers = tuple(tf2_layers.KerasLayer.from_dict(d) for d in job["layers"])
    plan = tf2_checkpoints.KerasCheckpointPlan(job["prefix"], "", layers, job["dtype"], (), (),
                                               sequential=job["sequential"])
    model = tf2_model.build(plan, keras_model.keras_module(2), functional=False)
    status = _restore(model, job["model_path"], job["prefix"], keras_model.keras_module(2))
    status.expect_partial()  # optimizer slots and counters are no weights of the model
    status.assert_existing_objects_matched()
    inputs = np.load(os.path.join(job["folder"], "inputs.npy"))
    return np.asarray(model(inputs, training=False))


def _restore(model, model_path, prefix, K):  # pylint: disable=invalid-name
    """tf_keras's restore of `model` from the checkpoint at `prefix`, where the model sits at
    object path `model_path` ("" for the root: `save_weights`; "decoder" in
    `tf.train.Checkpoint(decoder=model)`) -> the restore's status."""
    root = model
    for name in reversed(model_path.split("/") if model_path else ()):
        # A bare Model holding the one above under its name: matched by name, as the object
        # graph is (a tf.train.Checkpoint would add its own save_counter, unmatched).
        wrapper = K.Model()
        setattr(wrapper, name, root)
        root = wrapper
    return root.load_weights(prefix)


def _main():
    _process.quiet_tensorflow()
    job = json.load(sys.stdin)
    try:
        outputs = _restored_outputs(job)
    except Exception as exc:  # pylint: disable=broad-except  (restore asserts, OpErrors)
        sys.stdout.write(f"\nerror: {type(exc).__name__}: {first_line(exc)}\n")
        return
    np.save(os.path.join(job["folder"], "outputs.npy"), outputs)
    sys.stdout.write("\nok\n")


if __name__ == "__main__":
    _main()
