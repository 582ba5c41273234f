"""Executes a Plan: streams tensors into a new V2 checkpoint, verifies it, then moves it into place.

Nothing is written at the destination until the whole output has been written to a temporary
folder next to it and read back; the input checkpoint is only ever read.
"""

import concurrent.futures
import logging
import os
import re
import sys

import numpy as np

from legacy_share import errors
from legacy_share import file_systems
from legacy_share import state_file
from legacy_share._process import deferred_signals
from legacy_share.destination import (Output, destination_files, output_prefix,
                                      state_of)
from legacy_share.errors import first_line
from legacy_share.reading import open_checkpoint, run_ops
from legacy_share.remote_output import RemoteOutput
from legacy_share.values import fingerprint, step_value
from legacy_share._tf import tf

__all__ = ["execute", "destination_files"]

_LOG = logging.getLogger("legacy_share")
BATCH_BYTES = 64 << 20


def execute(plan, reader, dst, force=False, progress=False):
    """Writes the output of `plan`, read from the open Checkpoint `reader`, as V2 checkpoint `dst`.

    Args:
      dst: a prefix as Saver.save takes it: `out/model.ckpt` -> `out/model.ckpt.index`,
        `out/model.ckpt.data-*` and `out/checkpoint` (unless that state file names other
        checkpoints).
      force: replace an existing output at `dst`.
    Returns:
      `plan`.
    Raises:
      DestinationExistsError: `dst` exists and not `force`, or another run is writing it.
      LayersDifferError (strict), IncompatibleShapeError / IncompatibleDtypeError (the plan does
      not fit the checkpoint), VerificationError, CheckpointError (the input), OutputError
      (the output). After any failure before the index is in place, nothing new is left at
      the destination; KeyboardInterrupt (and errors.Interrupted) carry `written`: `dst` if
      the output was already complete.
    """
    dst = output_prefix(dst)
    _check_destination(dst, reader, force)
    if not plan.steps:
        raise errors.PlanError(f"{reader.prefix}: the plan writes no tensor, so there is nothing "
                               f"to save at {dst}; check --exclude / --drop-optimizer-state.")
    output = (RemoteOutput if file_systems.is_url(dst) else Output)(dst, reader.files)
    try:
        with output:
            _check_destination(dst, reader, force)  # again: another run may have finished meanwhile
            out = os.path.join(output.temp, "out")
            written = _write(plan, reader, output.temp, out, progress)
            _verify(plan, out, written)
            state = None
            if state_of(dst) in ("absent", "only"):
                state = output.write_state(state_file.state_text(os.path.basename(dst)))
            else:
                _LOG.info("%s names other checkpoints (of the input?): left as it is",
                          os.path.join(os.path.dirname(dst), "checkpoint"))
            output.commit(out, state)
    except KeyboardInterrupt as exc:
        exc.written = dst if output.committed else None
        raise
    except OSError as exc:
        if output.committed:
            raise
        raise errors.OutputError(
            f"{exc.filename or dst}: {exc.strerror}; check free space and permissions (nothing "
            f"was left at {dst}).") from exc
    return plan


def _check_destination(dst, reader, force):
    if file_systems.isdir(dst):
        raise errors.OutputError(
            f"{dst}: is a folder; give an output prefix such as {os.path.join(dst, 'model.ckpt')}.")
    real = file_systems.real
    inputs = {real(path) for path in reader.files}
    if real(dst) == real(reader.prefix) or any(
            real(path) in inputs for path in [dst, dst + ".index"]):
        raise errors.OutputError(
            f"{dst}: is the input checkpoint {reader.prefix}; the input is never overwritten, "
            f"give another output prefix.")
    existing = destination_files(dst)
    if existing and not force:
        raise errors.DestinationExistsError(
            f"{dst}: a checkpoint exists there ({os.path.basename(existing[0])}); give another "
            f"prefix or --force to replace it.")
    if existing and state_of(dst) == "shared":
        # Replacing dst would leave that file naming a missing prefix for a moment, and the
        # file is not ours to rewrite (it also lists other checkpoints, maybe the input's).
        state = os.path.join(os.path.dirname(dst), "checkpoint")
        raise errors.DestinationExistsError(
            f"{dst}: {state} lists it together with other checkpoints, and legacy-share does "
            f"not rewrite another run's state file; give another output prefix.")


def _progress(steps, progress):
    if not (progress and sys.stderr.isatty()):
        return steps
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel
    return tqdm(steps, desc="legacy-share", unit="tensor", file=sys.stderr)


def _write(plan, reader, tmp, out, progress):
    """Computes every step's value and saves them as `out` (see `save_batched`) -> {name: fingerprint}."""
    written = {}

    def values():
        for step in _progress(plan.steps, progress):
            value = step_value(step, reader, plan.strategy)
            written[step.name] = fingerprint(value)
            yield step.name, step.dtype, value

    save_batched(values(), tmp, out)
    return written


def save_batched(items, tmp, out, batch_bytes=None):
    """Saves (name, TF dtype name, numpy value) items as the V2 checkpoint `out`, names sorted.

    Items are taken one at a time and saved in shards of about `batch_bytes` (default
    BATCH_BYTES) under the folder `tmp` (which the caller removes), then merged into `out`. A worker thread saves one batch
    (SaveV2 runs without the GIL) while the next is gathered, so at most two batches and the
    item being made are held, whatever the checkpoint's size.
    Raises:
      OutputError: a shard or the merge cannot be written (e.g. the disk is full).
      ValueError: `items` is empty (a checkpoint holds at least one tensor).
    """
    limit = BATCH_BYTES if batch_bytes is None else batch_bytes
    shards = []
    batch = []
    batch_bytes = 0

    def save_batch(prefix, batch):
        names = [name for name, _, _ in batch]
        dtypes = [tf.as_dtype(dtype) for _, dtype, _ in batch]
        values = [value for _, _, value in batch]

        def save():
            tensors = [_tensor(value, dtype) for value, dtype in zip(values, dtypes)]
            return tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                                     shape_and_slices=[""] * len(names), tensors=tensors)

        _run_io(save, f"cannot write {tmp}")

    saver = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    pending = None
    try:
        def flush():
            nonlocal pending
            if pending is not None:
                pending.result()
            shards.append(os.path.join(tmp, f"part-{len(shards):05d}"))
            with deferred_signals():  # interrupted in submit, its thread would run unknown to us
                pending = saver.submit(save_batch, shards[-1], batch)

        for name, dtype, value in items:
            size = value.nbytes if value.dtype != object else sum(len(v) for v in value.flat)
            if batch and batch_bytes + size > limit:
                flush()
                batch, batch_bytes = [], 0
            batch.append((name, dtype, value))
            batch_bytes += size
        if batch:
            flush()
            batch = []
        if pending is not None:
            pending.result()
    finally:
        # An interrupt must not leave SaveV2 running: it would write (and make again) the temp
        # folder after the cleanup removed it.
        with deferred_signals():
            if pending is not None:
                concurrent.futures.wait([pending])
            saver.shutdown(wait=True)
    if not shards:
        raise errors.PlanError(f"save_batched: no tensor to save at {out}; a checkpoint needs one")

    def merge():
        return tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=shards, destination_prefix=out,
                                             delete_old_dirs=False)

    _run_io(merge, f"cannot merge the shards in {tmp}")


def _tensor(value, dtype):
    """`value` as a tensor of `dtype`; eagerly, numeric arrays are shared through DLPack, not copied.

    `tf.constant` copies a numpy array twice on its way to an eager tensor (3x its size at peak).
    """
    if (tf.executing_eagerly() and value.dtype != object and value.dtype.kind in "biuf"
            and value.dtype.name == dtype.name):
        try:
            tensor = tf.experimental.dlpack.from_dlpack(np.ascontiguousarray(value).__dlpack__())
        except (AttributeError, BufferError, TypeError, ValueError, tf.errors.OpError):
            tensor = None
        if tensor is not None and tensor.dtype == dtype and tuple(tensor.shape) == value.shape:
            return tensor
    return tf.constant(value, dtype=dtype)


def _run_io(build, what):
    try:
        run_ops(build)
    except tf.errors.OpError as exc:
        message = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", first_line(exc))
        raise errors.OutputError(f"{what}: {message}; check free space and permissions.") from exc


def _verify(plan, out, written):
    """Reads back every tensor of `out` and compares name, shape, dtype and checksum with the plan."""
    output = open_checkpoint(out)
    found = {spec.name: spec for spec in output.specs}
    expected = {step.name: step for step in plan.steps}
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        raise errors.VerificationError(
            f"{out}: the written checkpoint lacks {missing[:5]} and has extra {extra[:5]}; "
            f"nothing was moved into place.")
    for name, step in expected.items():
        spec = found[name]
        if tuple(spec.shape) != tuple(step.shape) or spec.dtype != step.dtype:
            raise errors.VerificationError(
                f"{out}: {name} was written as {spec.dtype}{list(spec.shape)} instead of "
                f"{step.dtype}{list(step.shape)}; nothing was moved into place.")
        if fingerprint(output.read(name)) != written[name]:
            raise errors.VerificationError(
                f"{out}: {name} reads back different bytes than were written; nothing was moved "
                f"into place (check the disk).")
