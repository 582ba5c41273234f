"""Opens a TF checkpoint (V1 file, V2 prefix, folder, `.index` or `.data-*` path) for reading.

Metadata (names, full shapes, dtypes) comes from the index alone, so planning works when
the data files are missing; `Checkpoint.read` then fails naming the missing file.
"""

import glob
import logging
import os
import re

import numpy as np

from legacy_share import errors
from legacy_share._tf import tf, tf1
from legacy_share.planning import TensorSpec

__all__ = ["Checkpoint", "open_checkpoint"]

_LOG = logging.getLogger("legacy_share")
_INDEX_SUFFIX = ".index"
_DATA_RE = re.compile(r"\.data-\d{5}-of-(\d{5})$")
_DATA_NAMED_RE = re.compile(r"[^\s;:'\"]+\.data-\d{5}-of-\d{5}")
_META_SUFFIX = ".meta"
_STATE_FILE = "checkpoint"


class Checkpoint:
    """A checkpoint opened for reading: `prefix`, `version` (1 or 2), `specs`, `files`, `read(name)`."""

    def __init__(self, prefix, version, reader):
        self.prefix = prefix
        self.version = version
        self._reader = reader
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
        self._dtypes = dtypes
        self.specs = [TensorSpec(name, tuple(int(d) for d in shapes[name]), dtypes[name].name)
                      for name in sorted(shapes)]

    @property
    def files(self):
        """The files this checkpoint is made of that exist (index first for V2)."""
        if self.version == 1:
            return sorted(glob.glob(glob.escape(self.prefix) + "-?????-of-?????")) or [self.prefix]
        return [self.prefix + _INDEX_SUFFIX] + _data_files(self.prefix)

    def missing_files(self):
        """V2 data files the index needs that are not on disk (by the `-of-N` count of those present)."""
        if self.version == 1:
            return []
        present = _data_files(self.prefix)
        if not present:
            return [self.prefix + ".data-00000-of-?????"]
        count = int(_DATA_RE.search(present[0]).group(1))
        expected = [f"{self.prefix}.data-{k:05d}-of-{count:05d}" for k in range(count)]
        return [path for path in expected if path not in present]

    def read(self, name):
        """The full value of tensor `name` as a numpy array (strings: object array of bytes)."""
        if name not in self._dtypes:
            raise errors.CheckpointError(f"{self.prefix}: no tensor named {name!r} in this checkpoint.")
        try:
            value = self._reader.get_tensor(name)
        except tf.errors.UnimplementedError:
            # The V1 reader of CheckpointReader cannot read float16 nor sliced (partitioned)
            # tensors; RestoreV2 falls back to a V1 reader that can.
            value = self._restore(name)
        except IndexError as exc:  # CheckpointReader's OutOfRange: a data file ends too soon
            raise errors.CheckpointError(
                f"{self.prefix}: cannot read {name!r}: {', '.join(self.files[1:]) or self.prefix} "
                f"is truncated ({_first_line(exc)}); copy the complete data files again.") from exc
        except (tf.errors.OpError, ValueError) as exc:
            named = _DATA_NAMED_RE.search(str(exc))
            missing = [named.group(0)] if named and not os.path.isfile(named.group(0)) else []
            missing = missing or self.missing_files()
            if missing:
                raise errors.CheckpointError(
                    f"{self.prefix}: cannot read {name!r}: data file {missing[0]} is missing; copy the "
                    f"data files next to {self.prefix + _INDEX_SUFFIX} (dry runs work without them)."
                ) from exc
            raise errors.CheckpointError(
                f"{self.prefix}: cannot read {name!r}: {_first_line(exc)}") from exc
        return np.asarray(value)

    def _restore(self, name):
        dtype = self._dtypes[name]

        def restore():
            return tf.raw_ops.RestoreV2(prefix=self.prefix, tensor_names=[name],
                                        shape_and_slices=[""], dtypes=[dtype])[0]

        try:
            return run_ops(restore)
        except tf.errors.OpError as exc:
            raise errors.CheckpointError(
                f"{self.prefix}: cannot read {name!r}: {_first_line(exc)}") from exc


def run_ops(build):
    """Runs `build()` eagerly when possible, else in a fresh graph and session; numpy results."""
    with tf.init_scope():
        if tf.executing_eagerly():
            result = build()
            return _to_numpy(result)
    with tf1.Graph().as_default() as graph:
        result = build()
        with tf1.Session(graph=graph) as session:
            return session.run(result)


def _to_numpy(result):
    if result is None:
        return None
    if isinstance(result, (list, tuple)):
        return [_to_numpy(r) for r in result]
    return result.numpy() if hasattr(result, "numpy") else result


def open_checkpoint(path):
    """Opens the checkpoint at `path` for reading -> Checkpoint; CheckpointError if it cannot.

    `path` may be a prefix (`out/model.ckpt-100`), a folder with a `checkpoint` state file
    (its latest checkpoint), a V1 file, a V2 `.index` / `.data-*` file, or a `.meta` file
    next to its checkpoint.
    """
    path = os.path.expanduser(os.fspath(path))
    prefix, version = _resolve(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as exc:
        kind = "V2 index" if version == 2 else "V1 checkpoint file"
        raise errors.CheckpointError(
            f"{path}: not a readable {kind} ({_first_line(exc)}); give the prefix of a checkpoint "
            f"written by tf.train.Saver.") from exc
    ckpt = Checkpoint(prefix, version, reader)
    if version == 1 and not ckpt.specs:
        raise errors.CheckpointError(f"{path}: holds no tensor; give the prefix of a checkpoint "
                                     f"written by tf.train.Saver.")
    return ckpt


def _resolve(path):
    """(prefix, version) for `path`, following the forms `open_checkpoint` accepts."""
    if os.path.isdir(path):
        return _resolve(_latest_in(path))
    if os.path.basename(path) == _STATE_FILE and os.path.isfile(path):
        return _resolve(_latest_in(os.path.dirname(path) or "."))
    if path.endswith(_INDEX_SUFFIX) and os.path.isfile(path):
        return _hint(path, path[:-len(_INDEX_SUFFIX)]), 2
    data = _DATA_RE.search(path)
    if data:
        return _hint(path, path[:data.start()]), 2
    if path.endswith(_META_SUFFIX) and os.path.isfile(path):
        prefix = path[:-len(_META_SUFFIX)]
        if _exists(prefix):
            return _hint(path, prefix), _version(prefix)
        raise errors.CheckpointError(
            f"{path}: is a MetaGraphDef, not a checkpoint, and no checkpoint {prefix} sits next "
            f"to it; give the checkpoint prefix.")
    if _exists(path):
        return path, _version(path)
    raise errors.CheckpointError(
        f"{path}: no checkpoint there (neither {path}{_INDEX_SUFFIX} for V2 nor a V1 file); "
        f"give a checkpoint prefix such as model.ckpt-1000, or its folder.")


def _exists(prefix):
    return (os.path.isfile(prefix + _INDEX_SUFFIX) or os.path.isfile(prefix)
            or bool(glob.glob(glob.escape(prefix) + "-?????-of-?????")))


def _version(prefix):
    return 2 if os.path.isfile(prefix + _INDEX_SUFFIX) else 1


def _hint(given, prefix):
    _LOG.info("%s is part of the checkpoint %s: reading the whole checkpoint", given, prefix)
    return prefix


def _latest_in(folder):
    """The checkpoint the `checkpoint` state file of `folder` names (relative to `folder` if moved)."""
    state_path = os.path.join(folder, _STATE_FILE)
    try:
        state = tf1.train.get_checkpoint_state(folder)
    except (tf.errors.OpError, ValueError) as exc:
        raise errors.CheckpointError(
            f"{state_path}: unreadable state file ({_first_line(exc)}); give the checkpoint "
            f"prefix instead of the folder.") from exc
    if state is None or not state.model_checkpoint_path:
        found = sorted(glob.glob(os.path.join(glob.escape(folder), "*" + _INDEX_SUFFIX)))
        choices = ", ".join(p[:-len(_INDEX_SUFFIX)] for p in found[:3]) or "none found"
        raise errors.CheckpointError(
            f"{folder}: no `checkpoint` state file names a checkpoint here; give a checkpoint "
            f"prefix (candidates: {choices}).")
    latest = state.model_checkpoint_path
    if not os.path.isabs(latest):
        latest = os.path.join(folder, latest)
    if not _exists(latest):
        moved = os.path.join(folder, os.path.basename(latest))
        if _exists(moved):
            return moved
        raise errors.CheckpointError(
            f"{state_path}: names {state.model_checkpoint_path}, which does not exist; give the "
            f"checkpoint prefix instead of the folder.")
    return latest


def _data_files(prefix):
    return sorted(glob.glob(glob.escape(prefix) + ".data-?????-of-?????"))


def _first_line(exc):
    message = getattr(exc, "message", None) or str(exc)
    return message.strip().splitlines()[0] if message.strip() else type(exc).__name__
