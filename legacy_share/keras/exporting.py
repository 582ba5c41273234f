"""`export`: a legacy checkpoint -> a Keras file, written atomically and proven by default."""

import contextlib
import dataclasses
import gc
import logging
import os
import re
import shutil
import sys
import tempfile

import numpy as np

from legacy_share import _process
from legacy_share import errors
from legacy_share import file_output
from legacy_share import file_systems
from legacy_share import opening
from legacy_share import planning
from legacy_share import tf_paths
from legacy_share.errors import ExportError, ProofError
from legacy_share.keras import checks
from legacy_share.keras import cudnn_stacks
from legacy_share.keras import model as _model
from legacy_share.keras import name_check
from legacy_share.keras.options import ExportOptions, check_tolerance
from legacy_share.keras import proof as _proof
from legacy_share.keras import structure
from legacy_share.keras import tf2_exporting
from legacy_share.reports import JsonReport

__all__ = ["ExportReport", "plan", "check_plan", "build_model", "export", "destination_format",
           "architecture_path"]

_LOG = logging.getLogger("legacy_share")
KERAS, WEIGHTS, SAVED_MODEL = "keras", "weights.h5", "saved_model"


@dataclasses.dataclass(frozen=True)
class ExportReport(JsonReport):
    """What `export` wrote: `path`, its `format`, the Keras `flavour`, the plan and the proof."""

    path: str
    format: str
    flavour: int
    plan: structure.ExportPlan
    proof: object

    def to_dict(self):
        out = dict(destination=self.path, format=self.format, keras=self.flavour,
                   plan=self.plan.to_dict())
        if self.proof is not None:
            out["proof"] = dict(max_abs_diff=self.proof.max_diff, relative=self.proof.relative,
                                tolerance=self.proof.tolerance, ok=self.proof.ok)
        return out


def plan(src, stack=None, layers=None, custom_cells=False, forget_bias=1.0, embedding=None,
         dense=None, group_patterns=(), renames=(), excludes=(), meta=None, cudnn=None,
         cudnn_buffer=None, cell_clip=None, proj_clip=None, assumptions=None):
    """The ExportPlan of checkpoint `src` (the dry run: reads the index only).

    Args:
      src, and the options: as `export`.
    Returns:
      For a tf.keras checkpoint, a tf2_checkpoints.KerasCheckpointPlan (its layers).
      The ExportPlan: every stack found (cell, layers, units, directions, the Keras layer,
      exact / custom / refused and why), the one exported, and the tensors left out; its
      `refusal()` is the line `export` would refuse it with (None: it would be written).
    Raises:
      CheckpointError, PlanError, ExportError: as `export`.
    """
    options = ExportOptions.of_arguments(locals())
    return _plan(_open(src, options), options)


def _open(src, options):
    """`src` opened for planning, with the old graph and cuDNN flags of `options`."""
    return opening.open_for_planning(src, options.meta, options.cudnn, options.cudnn_buffer)


def _plan(opened, options):
    """The checked plan of the opened checkpoint for `options` (ExportOptions)."""
    ckpt = opened.checkpoint
    if tf2_exporting.applies(ckpt):  # a TF 2 tf.keras checkpoint: its object graph says it all
        return tf2_exporting.plan_checkpoint(ckpt, options)
    if options.assumptions is not None:
        raise ExportError(f"{ckpt.prefix}: --activation, --return-sequences and the other "
                          f"assumed settings are for tf.keras checkpoints; leave them out",
                          file=ckpt.prefix)
    checks.check_forget_bias(ckpt.prefix, options.forget_bias)
    notes = opened.graph_notes
    cudnn_plan = _cudnn_plan(opened, options)
    if cudnn_plan is not None:
        if options.cell_clip is not None or options.proj_clip is not None:
            raise ExportError(f"{ckpt.prefix}: --cell-clip / --proj-clip are LSTMCell settings, "
                              f"and a cuDNN model does not clip; leave them out.")
        checks.check_plan(cudnn_plan, ckpt.specs)
        return _with_dtype(cudnn_plan, ckpt.specs)
    naming = options.naming()
    specs = ckpt.specs
    with opening.naming_errors(ckpt.prefix):
        groups = planning.find_layer_groups(specs, **naming)
        # `layer:K` takes every layer's sources into a group whatever their shapes (layer 0 of
        # a stack often has another input depth); K must be a layer all groups have.
        common = set.intersection(*[{layer for layer, _ in g.members} for g in groups]) \
            if groups else {0}
        strategy = f"layer:{min(common)}" if common else "layer:0"
        migration_plan = planning.plan_migration(specs, strategy=strategy, notes=notes, **naming)
    dense = checks.dense_names(ckpt.prefix, options.dense)
    export_plan = structure.plan_export(
        ckpt.prefix, specs, migration_plan, stack=options.stack, layers=options.layers,
        custom_cells=options.custom_cells, forget_bias=options.forget_bias,
        embedding=options.embedding, dense=dense, renames=naming["renames"],
        cell_clip=options.cell_clip, proj_clip=options.proj_clip)
    checks.check_plan(export_plan, specs)
    return _check_names(ckpt, _with_dtype(export_plan, specs), naming)


def _with_dtype(export_plan, specs):
    """`export_plan` with the dtype its model computes in (float64 checkpoints stay float64)."""
    dtype, stored = checks.model_dtype(export_plan, specs)
    return dataclasses.replace(export_plan, dtype=dtype, stored_dtype=stored)


def _check_names(ckpt, export_plan, naming):
    """The stacks' names checked against the graphs TensorFlow builds (keras.name_check)."""
    rules = planning.Rules(naming["group_patterns"], naming["renames"], naming["excludes"])
    with opening.naming_errors(ckpt.prefix):
        return name_check.check_export_names(export_plan, ckpt.specs, rules)


def _cudnn_plan(opened, options):
    """The plan of the checkpoint's cuDNN models (cudnn_stacks), or None when it has none."""
    return cudnn_stacks.plan_cudnn(
        opened, stack=options.stack, layers=options.layers, embedding=options.embedding,
        dense=options.dense)


def _ready(export_plan):
    """Raises the plan's refusal (ExportError): the dry run and the real run both call this."""
    refusal = export_plan.refusal()
    if refusal:
        raise ExportError(refusal)


def check_plan(export_plan):
    """Raises ExportError when `export` would refuse this plan (after the dry run printed it)."""
    _ready(export_plan)


def _reader(ckpt):
    cache = {}

    def value_of(sources):
        key = tuple(sources)
        if key not in cache:
            parts = [ckpt.read(name) for name in key]
            cache[key] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        return cache[key]
    return value_of


def build_model(src, keras=3, stack=None, layers=None, custom_cells=False, forget_bias=1.0,
                embedding=None, dense=None, group_patterns=(), renames=(), excludes=(),
                meta=None, cudnn=None, cudnn_buffer=None, cell_clip=None, proj_clip=None,
                assumptions=None):
    """The Keras model of checkpoint `src` with its weights, in this process's Keras.

    Args:
      src: a checkpoint (prefix, folder, V1 file, .index) in any naming generation.
      keras: 3 (Keras 3) or 2 (tf_keras; tf.keras on TensorFlow < 2.16).
      stack, layers, custom_cells, forget_bias, embedding, dense, group_patterns, renames,
        excludes, meta, cudnn, cudnn_buffer, cell_clip, proj_clip: as `export` (a keyword
        not among them is a TypeError naming it).
    Returns:
      A functional model: inputs `inputs` [batch, time, depth] in the plan's dtype (float64
      for a float64 checkpoint, else float32; int32 ids [batch, time]
      with `embedding`) and `lengths` [batch] int32; output [batch, time, units * directions]
      (or the Dense's units), zero past each length.
    Raises:
      LegacyKerasError: this process serves the other Keras; ExportError, CheckpointError,
      PlanError: what cannot be exported, and why.
    """
    options = ExportOptions.of_arguments(locals())
    _process.use_keras(keras)
    opened = _open(src, options)
    ckpt = opened.checkpoint
    export_plan = _plan(opened, options)
    if tf2_exporting.applies(ckpt):
        return tf2_exporting.build_model(ckpt, export_plan, _model.keras_module(keras))
    _ready(export_plan)
    return _model.assemble(export_plan, _reader(ckpt), _model.keras_module(keras))


def destination_format(dst):
    """`keras`, `weights.h5` or `saved_model` by the destination's name; OutputError otherwise."""
    text = tf_paths.given_path(dst, "output")
    url = file_systems.is_url(text)
    tf_paths.check_literal(text if url else os.path.abspath(text), "output")
    if text.endswith(".keras"):
        return KERAS
    if text.endswith(".weights.h5"):
        return WEIGHTS
    if text.endswith(os.sep) or file_systems.isdir(text) or not os.path.splitext(text)[1]:
        return SAVED_MODEL
    raise errors.OutputError(f"{text}: unknown output format; name it *.keras (a whole "
                             f"model), *.weights.h5 (weights) or a folder (SavedModel)")


def export(src, dst, keras=3, stack=None, layers=None, custom_cells=False, forget_bias=1.0,
           embedding=None, dense=None, tolerance=1e-5, force=False, group_patterns=(),
           renames=(), excludes=(), prove=True, meta=None, cudnn=None, cudnn_buffer=None,
           cell_clip=None, proj_clip=None, assumptions=None):
    """Writes the Keras model of checkpoint `src` to `dst`, after proving its outputs.

    The file is written into a temporary folder next to `dst`, reloaded from there, run on
    random inputs with lengths {T, T/2, 1, 0} against the float64 TF1 equations, and moved
    into place only if it agrees within `tolerance` (relative). The input is only read.

    Args:
      src: a checkpoint in any form and naming generation the migrator reads.
      dst: `*.keras`, `*.weights.h5` (with the architecture beside it, `*.model.json`, for
        `keras.models.model_from_json`), or a folder (SavedModel).
      keras: 3 or 2 (tf_keras): the process must serve it (the CLI arranges that).
      stack: the scope of the stack to export when the checkpoint holds several.
      layers: K for a shared stack (K is not stored in a shared checkpoint).
      custom_cells: LSTMCells with peepholes or a projection become LegacyLSTMCell.
      forget_bias: the LSTM forget bias the graph ran with (TF1 default 1.0).
      cell_clip, proj_clip: the LSTMCell(cell_clip=, proj_clip=) the graph ran with (default
        none); a checkpoint does not store them. They need `custom_cells`.
      embedding: name of an embedding table [vocabulary, depth] put before the stack.
      dense: "KERNEL[,BIAS]" or (kernel, bias) names of a Dense put after it.
      tolerance: the largest relative difference the proof accepts.
      force: replace an existing `dst`.
      group_patterns, renames, excludes: as for `legacy_share.migrate`.
      prove: False skips the proof (the file is still reloaded).
      meta, cudnn, cudnn_buffer: the layout of a cuDNN buffer when the checkpoint cannot tell
        it: the old graph's .meta path, a `cudnn.Layout`, the buffer's name (as for
        `legacy_share.migrate`). A cuDNN model is proven against the cuDNN equations.
      assumptions: for a TF 2 tf.keras checkpoint (`model.save_weights(path)`), a
        `tf2_layers.Assumptions`: what its object graph does not store (activations,
        return_sequences, ...); such a checkpoint is proven against tf_keras's own model
        restored from it, and takes none of the TF1 options above but `stack`.
    Returns:
      An ExportReport.
    Raises:
      DestinationExistsError: `dst` exists and not `force`. ProofError: the outputs differ
      (nothing written). OutputError: `dst` cannot be written. ExportError, CheckpointError,
      PlanError, LegacyKerasError: as `build_model`.
    """
    check_tolerance(tolerance)
    fmt = destination_format(dst)
    kind = {KERAS: file_output.FILE, WEIGHTS: file_output.PAIR}.get(fmt, file_output.FOLDER)
    dst = file_output.output_path(dst, kind)
    _process.use_keras(keras)
    options = ExportOptions.of_arguments(locals())
    opened = _open(src, options)
    ckpt = opened.checkpoint
    if tf2_exporting.applies(ckpt):  # proven against tf_keras's model restored from `src`
        return tf2_exporting.export(ckpt, dst, fmt, kind, keras, options, tolerance, force,
                                    prove)
    export_plan = _plan(opened, options)
    _ready(export_plan)
    output = _output_class(dst)(dst, kind, ckpt.files + ([os.fspath(meta)] if meta else []),
                                companion=architecture_path(dst) if fmt == WEIGHTS else None)
    output.check(force)
    K = _model.keras_module(keras)  # pylint: disable=invalid-name
    value_of = _reader(ckpt)
    inputs, lengths = _proof.probe_inputs(export_plan)
    # The reference first: the checkpoint's arrays can then go before the file is reloaded.
    expected = _proof.reference_outputs(export_plan, value_of, inputs, lengths) if prove else None
    model = _model.assemble(export_plan, value_of, K)
    del value_of
    result = None
    with output:  # an interrupt says whether `dst` was complete (see Output.__exit__)
        output.check(force)  # again, with the claim held: another run may have written it
        output.ensure_space(_bytes_needed(model, fmt))
        written = output.written[0]
        _save(model, written, fmt, keras)
        del model
        if prove:
            outputs = _run_saved(written, fmt, K, keras, inputs, lengths)
            result = _proof.compare(outputs, expected, tolerance, inputs.shape[1])
            _LOG.info("proof: %s", result.describe())
            if not result.ok:
                which, check = ("TF1", "--forget-bias and the cell settings")
                if cudnn_stacks.is_cudnn(export_plan.stack):
                    which, check = ("cuDNN", "the layout (--cudnn, --meta)")
                raise ProofError(f"{dst}: not written: the exported model differs from the "
                                 f"{which} equations of {ckpt.prefix}: {result.describe()}; "
                                 f"check {check}, or raise --tolerance")
        output.commit()
    return ExportReport(dst, fmt, keras, export_plan, result)


def _output_class(dst):
    """FileOutput, or for a URL remote_output.RemoteFileOutput (no claim, no free-space look)."""
    if not file_systems.is_url(dst):
        return file_output.FileOutput
    from legacy_share import remote_output  # pylint: disable=import-outside-toplevel
    return remote_output.RemoteFileOutput


def _bytes_needed(model, fmt):
    """What writing `model` as `fmt` takes on disk, about: its weights, a quarter more for the
    containers' own bytes, and 1 MiB (4 MiB for a SavedModel's graph)."""
    weights = sum(int(np.prod(w.shape)) * np.dtype(getattr(w.dtype, "name", w.dtype)).itemsize
                  for w in model.weights)
    return weights + weights // 4 + ((4 << 20) if fmt == SAVED_MODEL else (1 << 20))


def architecture_path(weights_path):
    """`m.weights.h5` -> `m.model.json`: the architecture written beside a weights file."""
    return weights_path[:-len(".weights.h5")] + ".model.json"


def _save(model, path, fmt, flavour):
    """Writes `model` as `fmt` at `path`; OutputError (one line) on the first write error."""
    try:
        # Keras's and TensorFlow's savers are not interrupt-safe: a KeyboardInterrupt unwinding
        # through their graph contexts became "AssertionError: Nesting violated". A signal
        # waits until the write into the temp folder is done, then stops the run as usual.
        with _process.deferred_signals():
            _write(model, path, fmt, flavour)
    except Exception as exc:  # pylint: disable=broad-except
        reason = _write_error(exc)
        if reason is None:
            raise
        exc = None  # its traceback holds the HDF5 file open; closed now, its complaints muted
        _collect_quietly()
        raise errors.OutputError(
            f"{path}: cannot write the export: {reason}; check free space and permissions "
            f"(nothing was left at the destination).") from None


def _write(model, path, fmt, flavour):
    if fmt == KERAS:
        model.save(path)
    elif fmt == WEIGHTS:
        if file_systems.is_url(path):
            with _local_copy() as local:
                model.save_weights(local)
                file_systems.copy(local, path)
            file_systems.write_text(architecture_path(path), model.to_json())
            return
        model.save_weights(path)
        with open(architecture_path(path), "x", encoding="utf-8") as f:
            f.write(model.to_json())
    elif flavour == 3:
        model.export(path, format="tf_saved_model", verbose=False)
    else:
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        tf.saved_model.save(model, path)


@contextlib.contextmanager
def _local_copy():
    """A local path for a .weights.h5 on its way to or from a URL: h5py opens local files only
    (Keras 3 hands it a URL on some TensorFlow versions: TF 2.16 failed, 2.21 did not)."""
    folder = tempfile.mkdtemp(prefix="legacy-share-weights-")
    try:
        yield os.path.join(folder, "m.weights.h5")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write_error(exc):
    """The reason of a failed write (`No space left on device`), or None if `exc` is none."""
    if isinstance(exc, OSError):
        return os.strerror(exc.errno) if exc.errno else errors.first_line(exc)
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(exc, tf.errors.OpError):
        message = re.sub(r"\s*\[Op:\w+\]$", "", errors.first_line(exc))
        return message.rsplit("; ", 1)[-1]
    return None


def _collect_quietly():
    """Runs the garbage collector with unraisable errors muted (h5py's failed closes)."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda _: None
    try:
        gc.collect()
    finally:
        sys.unraisablehook = hook


def _run_saved(path, fmt, K, flavour, inputs, lengths):  # pylint: disable=invalid-name
    """Loads what was written, as a user would, and runs it on (inputs, lengths)."""
    if fmt == KERAS:
        loaded = (K.saving.load_model(path) if flavour == 3 else K.models.load_model(path))
        return np.asarray(loaded([inputs, lengths]))
    if fmt == WEIGHTS:
        if file_systems.is_url(path):
            text = file_systems.read_bytes(architecture_path(path), 64 << 20, "architecture")
            fresh = K.models.model_from_json(text.decode("utf-8"))
            with _local_copy() as local:  # the bytes at the URL, read back
                file_systems.copy(path, local)
                fresh.load_weights(local)
        else:
            with open(architecture_path(path), encoding="utf-8") as f:
                fresh = K.models.model_from_json(f.read())
            fresh.load_weights(path)
        return np.asarray(fresh([inputs, lengths]))
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    loaded = tf.saved_model.load(path)
    serve = loaded.signatures["serving_default"]
    outputs = serve(inputs=tf.constant(inputs), lengths=tf.constant(lengths))
    return np.asarray(next(iter(outputs.values())))
