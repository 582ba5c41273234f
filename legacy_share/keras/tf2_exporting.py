"""`export` of a TF 2 tf.keras TF-format checkpoint (`model.save_weights(path)`): the I/O shell.

Reads the object graph, plans the chain of layers (`tf2_checkpoints`), builds it with the
checkpoint's arrays (`tf2_model`), writes it like any export (`exporting`'s writer, atomic),
and proves the reloaded file against tf_keras's own layers restored from the checkpoint in a
child process (`tf2_reference`) on random inputs.
"""

import dataclasses
import logging
import os

import numpy as np

from legacy_share import file_output
from legacy_share import generations
from legacy_share.errors import CheckpointError, ExportError, ProofError
from legacy_share.keras import proof as _proof
from legacy_share.keras.options import ExportOptions
from legacy_share.keras import tf2_checkpoints
from legacy_share.keras import tf2_layers
from legacy_share.keras import tf2_model
from legacy_share.keras import tf2_reference

__all__ = ["applies", "plan_checkpoint", "build_model", "export", "KerasProof",
           "inspect_lines"]

_LOG = logging.getLogger("legacy_share")
# TF1 options (exporting.plan's) and the values that mean "not given": ExportOptions' own
# defaults (`stack` names the model here too; `assumptions` are this kind's own).
_TF1_OPTIONS = {field.name: field.default for field in dataclasses.fields(ExportOptions)
                if field.name not in ("stack", "assumptions")}
_FLAGS = {"group_patterns": "group", "renames": "rename", "excludes": "exclude"}
_BATCH, _TIME = 4, 7


class KerasProof(_proof.Proof):
    """The proof of a tf.keras checkpoint's export: against tf_keras's restored model."""

    def describe(self):
        return (f"max |diff| {self.max_diff:.1e} (relative {self.relative:.1e}, tolerance "
                f"{self.tolerance:g}) against tf_keras's model restored from the checkpoint, "
                f"on {_BATCH} random sequences of T = {self.time_steps}")


def applies(ckpt):
    """True for a TF 2 object-based checkpoint (it may hold a tf.keras model)."""
    return any(s.name == generations.OBJECT_GRAPH_KEY for s in ckpt.specs)


def plan_checkpoint(ckpt, options):
    """The KerasCheckpointPlan of `ckpt`; `options` as exporting.plan's (`stack`: the model's
    object path, `assumptions`: a tf2_layers.Assumptions).

    Raises:
      ExportError: a TF1 option was given, or the graph holds no (or several) tf.keras models.
      CheckpointError: the object graph cannot be read.
    """
    given = [k for k, unset in _TF1_OPTIONS.items()
             if getattr(options, k) != unset and getattr(options, k) not in ((), [])]
    if given:
        flag = "--" + _FLAGS.get(given[0], given[0]).replace("_", "-")
        raise ExportError(f"{ckpt.prefix}: {flag} ({given[0]}) is for TF1 checkpoints; a "
                          f"tf.keras checkpoint's object graph says its layers: leave it out",
                          file=ckpt.prefix)
    value = ckpt.read(generations.OBJECT_GRAPH_KEY)
    data = value.item() if isinstance(value, np.ndarray) else value
    graph = tf2_checkpoints.parse_object_graph(data, ckpt.prefix)
    return tf2_checkpoints.plan_keras_checkpoint(
        ckpt.prefix, ckpt.specs, graph, options.assumptions, options.stack)


def inspect_lines(ckpt):
    """`inspect`'s lines on the tf.keras model of an object-based `ckpt`, layer by layer
    (none when its object graph holds no tf.keras model)."""
    try:
        # Layers without weights listed as such, not refused: the export refuses them.
        plan = plan_checkpoint(ckpt, ExportOptions(assumptions=tf2_layers.Assumptions(
            weightless="dropout")))
    except ExportError:
        return ()
    except CheckpointError as exc:  # e.g. a data file missing: inspect reads the index alone
        return (f"its tf.keras layers cannot be listed: {exc}",)
    return tf2_checkpoints.describe_layers(plan)


def build_model(ckpt, plan, K):  # pylint: disable=invalid-name
    """The Keras model of a plan that is not refused, with the checkpoint's weights."""
    if plan.refusal():
        raise ExportError(plan.refusal(), file=ckpt.prefix)
    return tf2_model.build(plan, K, ckpt.read)


def probe_inputs(plan, seed=0):
    """Random inputs of the model: ids below the vocabulary, or uniform [-1, 1] values."""
    rng = np.random.RandomState(seed)
    if plan.embedding is not None:
        vocabulary = plan.embedding.weights[0][1][0]
        return rng.randint(0, vocabulary, size=(_BATCH, _TIME)).astype(np.int32)
    depth = plan.layers[0].input_depth
    return rng.uniform(-1, 1, size=(_BATCH, _TIME, depth)).astype(plan.dtype)


def export(ckpt, dst, fmt, kind, keras, options, tolerance=1e-5, force=False, prove=True):
    """Writes the Keras model of tf.keras checkpoint `ckpt` to `dst` (of format `fmt`).

    As `exporting.export` (whose checks `dst`, `fmt` and `kind` come from); the proof runs
    the reloaded file against tf_keras's model restored from the checkpoint.
    Returns:
      An exporting.ExportReport (its `plan` a KerasCheckpointPlan, its `proof` a KerasProof).
    Raises:
      ExportError, CheckpointError, DestinationExistsError, ProofError, LegacyKerasError.
    """
    # pylint: disable-next=import-outside-toplevel
    from legacy_share.keras import exporting, model as keras_model
    plan = plan_checkpoint(ckpt, options)
    if plan.refusal():
        raise ExportError(plan.refusal(), file=ckpt.prefix)
    output = file_output.FileOutput(
        dst, kind, ckpt.files,
        companion=exporting.architecture_path(dst) if fmt == exporting.WEIGHTS else None)
    output.check(force)
    K = keras_model.keras_module(keras)  # pylint: disable=invalid-name
    inputs = probe_inputs(plan)
    expected = tf2_reference.reference_outputs(plan, inputs) if prove else None
    model = build_model(ckpt, plan, K)
    result = None
    with output:
        output.check(force)
        output.ensure_space(exporting._bytes_needed(model, fmt))  # pylint: disable=protected-access
        written = output.written[0]
        exporting._save(model, written, fmt, keras)  # pylint: disable=protected-access
        del model
        outputs = _run_saved(written, fmt, K, keras, inputs)
        if prove:
            compared = _proof.compare(outputs, expected, tolerance, _TIME)
            result = KerasProof(**dataclasses.asdict(compared))
            _LOG.info("proof: %s", result.describe())
            if not result.ok:
                raise ProofError(f"{dst}: not written: the exported model differs from tf_keras's "
                                 f"model restored from {ckpt.prefix}: {result.describe()}; "
                                 f"check the assumed settings, or raise --tolerance")
        output.commit()
    return exporting.ExportReport(dst, fmt, keras, plan, result)


def _run_saved(path, fmt, K, flavour, inputs):  # pylint: disable=invalid-name
    """Loads what was written, as a user would, and runs it on `inputs`."""
    # pylint: disable-next=import-outside-toplevel
    from legacy_share.keras import exporting
    if fmt == exporting.KERAS:
        loaded = K.saving.load_model(path) if flavour == 3 else K.models.load_model(path)
        return np.asarray(loaded(inputs))
    if fmt == exporting.WEIGHTS:
        with open(exporting.architecture_path(path), encoding="utf-8") as f:
            fresh = K.models.model_from_json(f.read())
        fresh.load_weights(path)
        return np.asarray(fresh(inputs))
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    serve = tf.saved_model.load(os.fspath(path)).signatures["serving_default"]
    return np.asarray(next(iter(serve(inputs=tf.constant(inputs)).values())))
