"""Executes a Plan: streams tensors into a new V2 checkpoint, verifies it, then moves it into place.

Nothing is written at the destination until the whole output has been written to a temporary
folder next to it and read back; the input checkpoint is only ever read.
"""

import concurrent.futures
import hashlib
import logging
import os
import re
import shutil
import sys
import tempfile
import zlib

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, concurrent runs are not detected
    fcntl = None

from legacy_share import errors
from legacy_share.planning import FLOAT_DTYPES
from legacy_share.reading import STATE_FILE, data_files, first_line, open_checkpoint, run_ops
from legacy_share._tf import tf

__all__ = ["execute", "step_value", "checksum", "destination_files"]

_LOG = logging.getLogger("legacy_share")
BATCH_BYTES = 64 << 20
_CHUNK = 1 << 20  # elements per slice when averaging or comparing layers in float64
_TEMP_PREFIX = ".legacy-share-"
_TEMP_RE = re.compile(r"\.legacy-share-(\d+)-")


def execute(plan, reader, dst, force=False, progress=False):
    """Writes the output of `plan` (read from the open Checkpoint `reader`) as V2 checkpoint `dst`.

    `dst` is a prefix as Saver.save takes it: `out/model.ckpt` -> `out/model.ckpt.index`,
    `out/model.ckpt.data-*` and `out/checkpoint`. Raises DestinationExistsError when `dst`
    exists and not `force`, LayersDifferError (strict), VerificationError; after any failure
    nothing new is left at the destination.
    """
    given = os.path.expanduser(os.fspath(dst))
    if given.endswith(("/", os.sep)):
        raise errors.CheckpointError(
            f"{given}: names a folder; give an output prefix such as "
            f"{os.path.join(given, 'model.ckpt')}.")
    dst = os.path.abspath(given)
    _check_destination(dst, reader, force)
    if not plan.steps:
        raise errors.PlanError(f"{reader.prefix}: the plan writes no tensor, so there is nothing "
                               f"to save at {dst}; check --exclude / --drop-optimizer-state.")
    folder = os.path.dirname(dst)
    created = _make_folders(folder)
    lock = tmp = None
    try:
        lock = _lock(dst)
        _check_destination(dst, reader, force)  # again: another run may have finished meanwhile
        _remove_stale_temps(folder)
        tmp = tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{os.getpid()}-", dir=folder)
        out = os.path.join(tmp, "out")
        written = _write(plan, reader, tmp, out, progress)
        _verify(plan, out, written)
        _move_into_place(out, dst)
        _write_state(dst)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp = None
        _unlock(lock)
        lock = None
        _remove_folders(created)
        raise
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        _unlock(lock)
    return plan


def destination_files(dst):
    """The files of an existing output at prefix `dst` (index and data files)."""
    found = data_files(dst)
    if os.path.exists(dst + ".index"):
        found.append(dst + ".index")
    return sorted(found)


def step_value(step, reader, strategy):
    """The value of output `step` (numpy) computed from `reader` by `strategy`.

    COPY, RENAME and DUPLICATE carry the source bit for bit; MERGE picks or averages layers.
    """
    if step.action != "merge":
        return _layer_value(step, reader, 0)
    positions = len(step.layers)
    if positions == 0:
        raise errors.PlanError(f"{step.name}: merge step without layers; this is a planner bug.")
    kind = strategy.kind
    if kind == "first":
        return _layer_value(step, reader, 0)
    if kind == "layer":
        if strategy.layer not in step.layers:
            raise errors.PlanError(
                f"{step.name}: layer {strategy.layer} does not exist (layers "
                f"{', '.join(map(str, step.layers))}); choose one of them for --strategy layer:K.")
        return _layer_value(step, reader, step.layers.index(strategy.layer))
    if kind == "mean":
        return _mean(step, reader, positions)
    if kind == "strict":
        return _strict(step, reader, positions, strategy.tolerance)
    raise errors.PlanError(f"unknown strategy {kind!r}: use first, layer:K, mean or strict.")


def checksum(value):
    """sha256 hex digest of a numpy value, its shape and dtype (strings: length-prefixed bytes)."""
    value = np.asarray(value)
    digest = hashlib.sha256(repr(value.shape).encode())
    if value.dtype == object or value.dtype.kind in "SU":
        digest.update(b"string")
        for item in value.reshape(-1):
            item = item if isinstance(item, bytes) else str(item).encode()
            digest.update(len(item).to_bytes(8, "little"))
            digest.update(item)
    else:
        digest.update(value.dtype.name.encode())
        digest.update(np.ascontiguousarray(value).reshape(-1).view(np.uint8))  # no copy
    return digest.hexdigest()


def _layer_value(step, reader, position):
    layers = step.layer_sources()
    names = layers[position] if position < len(layers) else ()
    if len(names) != step.shards:
        raise errors.PlanError(f"{step.name}: the plan lists {len(step.sources)} sources for "
                               f"{step.shards} shard(s) per layer; this is a planner bug.")
    parts = [reader.read(name) for name in names]
    if len(parts) == 1:
        return _checked(step, parts[0], names)
    try:
        return _checked(step, np.concatenate(parts, axis=0), names)
    except ValueError as exc:
        shapes = ", ".join(f"{n} {list(p.shape)}" for n, p in zip(names, parts))
        raise errors.IncompatibleShapeError(
            f"{step.name}: shards cannot be concatenated on axis 0 ({shapes}).") from exc


def _checked(step, value, names):
    want_dtype = step.dtype
    # A string tensor reads back as numpy bytes: an object array, or `S` for a scalar.
    got_dtype = "string" if value.dtype.kind in "OS" else value.dtype.name
    if tuple(value.shape) != tuple(step.shape):
        raise errors.IncompatibleShapeError(
            f"{step.name}: the plan expects shape {list(step.shape)} but {' + '.join(names)} "
            f"gives {list(value.shape)}; re-plan from this checkpoint.")
    if got_dtype != want_dtype:
        raise errors.VerificationError(
            f"{step.name}: the plan expects dtype {want_dtype} but {' + '.join(names)} "
            f"holds {got_dtype}; re-plan from this checkpoint.")
    return value


def _require_float(step, strategy_name):
    if step.dtype not in FLOAT_DTYPES:
        raise errors.PlanError(
            f"{step.name}: cannot {strategy_name} layers of dtype {step.dtype}; use --strategy "
            f"first or layer:K, or --exclude this tensor.")


def _mean(step, reader, positions):
    _require_float(step, "average")
    total = None
    for position in range(positions):
        layer = _layer_value(step, reader, position)
        if total is None:
            total = layer.astype(np.float64)
        else:
            flat_total, flat_layer = total.reshape(-1), layer.reshape(-1)
            for start in range(0, flat_total.size, _CHUNK):
                flat_total[start:start + _CHUNK] += flat_layer[start:start + _CHUNK].astype(np.float64)
    total /= positions
    return total.astype(layer.dtype)


def _strict(step, reader, positions, tolerance):
    first = _layer_value(step, reader, 0)
    for position in range(1, positions):
        other = _layer_value(step, reader, position)
        difference = _max_abs_difference(first, other, step.dtype)
        if difference > tolerance:
            shown = ("values differ" if step.dtype not in FLOAT_DTYPES and np.isinf(difference)
                     else f"max abs difference {difference:.6g}")
            sources = step.layer_sources()
            raise errors.LayersDifferError(
                f"{reader.prefix}: {step.name}: layer {step.layers[0]} ({sources[0][0]}) and "
                f"layer {step.layers[position]} ({sources[position][0]}) differ ({shown} > "
                f"tolerance {tolerance:g}); use --strategy first or mean, or raise --tolerance.")
    return first


def _max_abs_difference(a, b, dtype):
    """Largest |a - b| in float64 for TF dtype name `dtype` (NaN against a number: inf).

    Integers that differ count at least the smallest float, so tolerance 0 catches them; other
    dtypes (string, bool) differ by 0 or inf.
    """
    numeric = dtype in FLOAT_DTYPES or dtype.startswith(("int", "uint"))
    if not numeric:
        return 0.0 if np.array_equal(a, b) else float("inf")
    if a.size == 0:
        return 0.0
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    largest = 0.0
    for start in range(0, flat_a.size, _CHUNK):
        a64 = flat_a[start:start + _CHUNK].astype(np.float64)
        b64 = flat_b[start:start + _CHUNK].astype(np.float64)
        difference = np.abs(a64 - b64)
        difference[np.isnan(a64) & np.isnan(b64)] = 0.0
        difference[np.isnan(difference)] = np.inf
        largest = max(largest, float(np.max(difference)))
    if largest == 0.0 and dtype not in FLOAT_DTYPES and not np.array_equal(a, b):
        largest = float(np.finfo(np.float64).tiny)
    return largest


def _check_destination(dst, reader, force):
    if os.path.isdir(dst):
        raise errors.CheckpointError(
            f"{dst}: is a folder; give an output prefix such as {os.path.join(dst, 'model.ckpt')}.")
    inputs = {os.path.realpath(path) for path in reader.files}
    if os.path.realpath(dst) == os.path.realpath(reader.prefix) or any(
            os.path.realpath(path) in inputs for path in [dst, dst + ".index"]):
        raise errors.CheckpointError(
            f"{dst}: is the input checkpoint {reader.prefix}; the input is never overwritten, "
            f"give another output prefix.")
    existing = destination_files(dst)
    if existing and not force:
        raise errors.DestinationExistsError(
            f"{dst}: a checkpoint exists there ({os.path.basename(existing[0])}); give another "
            f"prefix or --force to replace it.")
    state = os.path.join(os.path.dirname(dst), STATE_FILE)
    if existing and os.path.isfile(state) and _state_names(state, dst) and not _state_names(
            state, dst, only=True):
        # Replacing dst would leave that file naming a missing prefix for a moment, and the
        # file is not ours to rewrite (it also lists other checkpoints, maybe the input's).
        raise errors.DestinationExistsError(
            f"{dst}: {state} lists it together with other checkpoints, and legacy-share does "
            f"not rewrite another run's state file; give another output prefix.")


def _make_folders(folder):
    """Creates `folder` and missing parents; returns those created, deepest first."""
    created = []
    current = folder
    while current and not os.path.exists(current):
        created.append(current)
        current = os.path.dirname(current)
    os.makedirs(folder, exist_ok=True)
    return created


def _lock_path(dst):
    folder, base = os.path.split(dst)
    return os.path.join(folder, f".{base}.legacy-share-lock")


def _lock(dst):
    """Claims `dst` for this process (flock on a lock file next to it) -> (path, fd); None without fcntl.

    The kernel releases the claim when the process dies, even by SIGKILL, so a lock file left
    behind is never stale: the next run takes it over and removes it when done.
    """
    if fcntl is None:
        return None
    path = _lock_path(dst)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise errors.DestinationExistsError(  # pylint: disable=raise-missing-from
                f"{dst}: another legacy-share run (pid {holder}) is writing there; wait for it "
                f"to finish, then choose another prefix or --force.")
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:  # else the holder removed the file between our open and flock: retry
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            return path, fd
        os.close(fd)


def _unlock(lock):
    if lock is None:
        return
    path, fd = lock
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


def _remove_stale_temps(folder):
    """Removes temp folders and files of legacy-share runs in `folder` whose process is gone."""
    for name in os.listdir(folder):
        if name.endswith(".legacy-share-lock"):
            continue  # a lock file (maybe of a prefix named like a temp), held or free: kept
        match = _TEMP_RE.match(name)
        if match and not _alive(int(match.group(1))):
            path = os.path.join(folder, name)
            _LOG.info("removing %s, left by an interrupted run", path)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.remove(path)
                except OSError:
                    pass


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _remove_folders(created):
    for folder in created:
        try:
            os.rmdir(folder)
        except OSError:
            return


def _progress(steps, progress):
    if not (progress and sys.stderr.isatty()):
        return steps
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel
    return tqdm(steps, desc="legacy-share", unit="tensor", file=sys.stderr)


def _write(plan, reader, tmp, out, progress):
    """Saves every step in ~BATCH_BYTES shards under `tmp`, merges them into `out` -> {name: fingerprint}.

    A worker thread saves one batch (SaveV2 runs without the GIL) while the next one is read
    and fingerprinted, so at most two batches and the tensor being read are held.
    """
    written = {}
    shards = []
    batch = []
    batch_bytes = 0

    def save_batch(prefix, batch):
        names = [step.name for step, _ in batch]
        values = [value for _, value in batch]
        dtypes = [tf.as_dtype(step.dtype) for step, _ in batch]

        def save():
            tensors = [_tensor(value, dtype) for value, dtype in zip(values, dtypes)]
            return tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                                     shape_and_slices=[""] * len(names), tensors=tensors)

        _run_io(save, f"cannot write {tmp}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as saver:
        pending = None

        def flush():
            nonlocal pending
            if pending is not None:
                pending.result()
            shards.append(os.path.join(tmp, f"part-{len(shards):05d}"))
            pending = saver.submit(save_batch, shards[-1], batch)

        for step in _progress(plan.steps, progress):
            value = step_value(step, reader, plan.strategy)
            written[step.name] = _fingerprint(value)
            size = value.nbytes if value.dtype != object else sum(len(v) for v in value.flat)
            if batch and batch_bytes + size > BATCH_BYTES:
                flush()
                batch, batch_bytes = [], 0
            batch.append((step, value))
            batch_bytes += size
        if batch:
            flush()
            batch = []
        pending.result()

    def merge():
        return tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=shards, destination_prefix=out,
                                             delete_old_dirs=False)

    _run_io(merge, f"cannot merge the shards in {tmp}")
    return written


def _fingerprint(value):
    """What a read-back must match: shape, dtype and CRC-32 of the bytes (strings: `checksum`).

    CRC-32 runs at memory speed (about 3x sha256) and catches any corruption a disk or a mixed-up
    tensor would cause; `checksum` stays the public, collision-resistant digest.
    """
    value = np.asarray(value)
    if value.dtype == object or value.dtype.kind in "SU":
        return checksum(value)
    flat = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
    return (tuple(value.shape), value.dtype.name, zlib.crc32(flat))


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
        raise errors.CheckpointError(f"{what}: {message}; check free space and permissions.") from exc


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
        if _fingerprint(output.read(name)) != written[name]:
            raise errors.VerificationError(
                f"{out}: {name} reads back different bytes than were written; nothing was moved "
                f"into place (check the disk).")


def _move_into_place(out, dst):
    """Replaces any old output at `dst` by the files of `out`; the index moves last."""
    old = destination_files(dst)
    if old:
        # A crash from here on must not leave a `checkpoint` file naming a half-replaced
        # output, nor the old index over new data files: both go first.
        state = os.path.join(os.path.dirname(dst), STATE_FILE)
        if os.path.isfile(state) and _state_names(state, dst, only=True):
            os.remove(state)
        if os.path.exists(dst + ".index"):
            os.remove(dst + ".index")
    new_data = data_files(out)
    targets = []
    for path in new_data:
        target = dst + path[len(out):]
        os.replace(path, target)
        targets.append(target)
    os.replace(out + ".index", dst + ".index")
    for path in old:
        if path not in targets and path != dst + ".index" and os.path.exists(path):
            os.remove(path)
    _LOG.info("wrote %s (%d data file(s))", dst, len(targets))


def _state_names(state, dst, only=False):
    """Whether the `checkpoint` file `state` names prefix `dst` (`only`: and no other checkpoint)."""
    try:
        with open(state, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return not only
    base = os.path.basename(dst)
    hits = [value in (base, dst) for value in re.findall(r'"((?:[^"\\]|\\.)*)"', text)]
    return bool(hits) and all(hits) if only else any(hits)


def _write_state(dst):
    """Points `checkpoint` in the folder of `dst` at it (relative path), atomically."""
    folder, base = os.path.split(dst)
    state = os.path.join(folder, STATE_FILE)
    if os.path.exists(state) and not _state_names(state, dst, only=True):
        _LOG.info("%s names other checkpoints (of the input?): left as it is", state)
        return
    escaped = base.replace("\\", "\\\\").replace('"', '\\"')
    text = f'model_checkpoint_path: "{escaped}"\nall_model_checkpoint_paths: "{escaped}"\n'
    fd, tmp = tempfile.mkstemp(prefix=f"{_TEMP_PREFIX}{os.getpid()}-checkpoint-", dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as Saver leaves it, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, state)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
