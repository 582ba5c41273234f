"""Opens a TF checkpoint (V1 file, V2 prefix, folder, `.index` or `.data-*` path) for reading.

Metadata (names, full shapes, dtypes) comes from the index alone, so planning works when
the data files are missing; `Checkpoint.read` then fails naming the missing file.
"""

import glob
import logging
import os
import re
import stat

import numpy as np

from legacy_share import bundle
from legacy_share import errors
from legacy_share import file_systems
from legacy_share import state_file
from legacy_share import tf_paths
from legacy_share.errors import first_line
from legacy_share._tf import tf, tf1
from legacy_share.planning import TensorSpec

__all__ = ["Checkpoint", "open_checkpoint", "open_input", "read_input",
           "regular_file_size", "LFS_POINTER_START", "lfs_pointer_problem"]

_LOG = logging.getLogger("legacy_share")
_INDEX_SUFFIX = ".index"
_DATA_RE = re.compile(r"\.data-\d{5}-of-(\d{5})$")
_DATA_NAMED_RE = re.compile(r"\.data-\d{5}-of-\d{5}")
_META_SUFFIX = ".meta"
# A Git LFS pointer: the text a clone holds in place of a file kept in LFS until `git lfs pull`
# fetches it (git-lfs docs/spec.md: it starts with this line and has less than 1024 bytes).
LFS_POINTER_START = b"version https://git-lfs.github.com/spec/v1"
LFS_POINTER_LIMIT = 1024


class Checkpoint:
    """A checkpoint opened for reading: `prefix`, `version` (1 or 2), `specs`, `files`, `read(name)`."""

    def __init__(self, prefix, version, reader, lfs_pointers=()):
        self.prefix = prefix
        self.version = version
        self._reader = reader
        self.lfs_pointers = tuple(lfs_pointers)  # data files that are Git LFS pointers
        try:
            shapes = reader.get_variable_to_shape_map()
            dtypes = reader.get_variable_to_dtype_map()
        except (TypeError, ValueError) as exc:  # e.g. names not UTF-8, unknown dtype enums
            raise errors.CheckpointError(
                f"{prefix}: corrupt tensor metadata ({first_line(exc)}); use an intact copy of "
                f"the checkpoint.") from exc
        self._dtypes = dtypes
        self.specs = [TensorSpec(name, tuple(int(d) for d in shapes[name]), dtypes[name].name)
                      for name in sorted(shapes)]

    @property
    def files(self):
        """The files this checkpoint is made of that exist (index first for V2)."""
        return _checkpoint_files(self.prefix, self.version)

    def missing_files(self):
        """V2 data files the index needs that are not on disk (by the `-of-N` count of those
        present), then those that are Git LFS pointers in place of the file."""
        if self.version == 1:
            return []
        present = data_files(self.prefix)
        if not present:
            return [self.prefix + ".data-00000-of-?????"]
        count = int(_DATA_RE.search(present[0]).group(1))
        expected = [f"{self.prefix}.data-{k:05d}-of-{count:05d}" for k in range(count)]
        return [path for path in expected if path not in present] + list(self.lfs_pointers)

    def read(self, name):
        """The full value of tensor `name` as a numpy array (strings: object array of bytes)."""
        if name not in self._dtypes:
            raise errors.CheckpointError(f"{self.prefix}: no tensor named {name!r} in this checkpoint.")
        if self.lfs_pointers:
            raise errors.CheckpointError(
                f"cannot read {name!r}: " + lfs_pointer_problem(self.lfs_pointers[0], "data file")
                + "; inspect and dry runs work without it.")
        try:
            value = self._reader.get_tensor(name)
        except tf.errors.UnimplementedError:
            # The V1 reader of CheckpointReader cannot read float16 nor sliced (partitioned)
            # tensors; RestoreV2 falls back to a V1 reader that can.
            value = self._restore(name)
        except IndexError as exc:  # CheckpointReader's OutOfRange: a data file ends too soon
            raise errors.CheckpointError(
                f"{self.prefix}: cannot read {name!r}: {', '.join(self.files[1:]) or self.prefix} "
                f"is truncated ({first_line(exc)}); copy the complete data files again.") from exc
        except (tf.errors.OpError, ValueError) as exc:
            named = _DATA_NAMED_RE.search(str(exc))  # the path in it may hold spaces: rebuild it
            named = self.prefix + named.group(0) if named else None
            missing = [named] if named and not file_systems.isfile(named) else []
            missing = missing or self.missing_files()
            if missing:
                raise errors.CheckpointError(
                    f"{self.prefix}: cannot read {name!r}: data file {missing[0]} is missing; copy the "
                    f"data files next to {self.prefix + _INDEX_SUFFIX} (dry runs work without them)."
                ) from exc
            raise errors.CheckpointError(
                f"{self.prefix}: cannot read {name!r}: {first_line(exc)}") from exc
        if isinstance(value, bytes):  # a scalar string; numpy's `S` would drop trailing NULs
            return np.array(value, dtype=object)
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
                f"{self.prefix}: cannot read {name!r}: {first_line(exc)}") from exc


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
    next to its checkpoint. Every file of it must be a regular file (a FIFO would block the
    reader); a V2 index is checked entry by entry before TensorFlow reads it.
    """
    path = tf_paths.given_path(path, "checkpoint")
    file_systems.check_served(path)
    prefix, version = _resolve(path)
    tf_paths.check_literal(prefix, "input checkpoint")
    sizes = {name: regular_file_size(name) for name in _checkpoint_files(prefix, version)}
    pointers = [name for name, size in sizes.items() if _is_lfs_pointer(name, size)]
    if version == 1 and pointers:
        raise errors.CheckpointError(lfs_pointer_problem(pointers[0], "V1 checkpoint file") + ".")
    if version == 2:
        def data_file(shard, count):
            path = f"{prefix}.data-{shard:05d}-of-{count:05d}"
            return (path, sizes[path]) if path in sizes and path not in pointers else None

        index = prefix + _INDEX_SUFFIX
        if index in pointers:
            raise errors.CheckpointError(lfs_pointer_problem(index, "V2 index") + ".")
        _check_index(index, data_file)
    try:
        # load_checkpoint asks whether the prefix is a folder, which ram:// says of any prefix.
        reader = (tf1.train.NewCheckpointReader(prefix) if file_systems.is_url(prefix)
                  else tf.train.load_checkpoint(prefix))
    except (tf.errors.OpError, ValueError) as exc:
        kind = "V2 index" if version == 2 else "V1 checkpoint file"
        raise errors.CheckpointError(
            f"{path}: not a readable {kind} ({first_line(exc)}); give the prefix of a checkpoint "
            f"written by tf.compat.v1.train.Saver.") from exc
    ckpt = Checkpoint(prefix, version, reader, pointers)
    if pointers:
        _LOG.warning("%s", lfs_pointer_problem(pointers[0], "data file")
                     + "; reading the index only")
    if version == 1 and not ckpt.specs:
        raise errors.CheckpointError(f"{path}: holds no tensor; give the prefix of a checkpoint "
                                     f"written by tf.compat.v1.train.Saver.")
    return ckpt


def _check_index(index, data_file):
    """bundle.check_index on the V2 index at `index`, a local file or a URL."""
    if file_systems.is_url(index):
        source = file_systems.GFileSource(index, "V2 index")
        try:
            bundle.check_index(index, source, data_file)
        finally:
            source.close()
        return
    fd = open_input(index, "V2 index")
    try:
        bundle.check_index(index, fd, data_file)
    finally:
        os.close(fd)


def _is_lfs_pointer(path, size):
    if not len(LFS_POINTER_START) <= size < LFS_POINTER_LIMIT:
        return False
    return read_head(path, len(LFS_POINTER_START), "checkpoint file") == LFS_POINTER_START


def read_head(path, count, what):
    """The first `count` bytes of input file `path` (a regular file, or a URL) -> bytes."""
    path = tf_paths.given_path(path, what)
    if file_systems.is_url(path):
        return file_systems.read_head(path, count, what)
    fd = open_input(path, what)
    try:
        return os.pread(fd, count, 0)
    except OSError as exc:
        raise errors.CheckpointError(f"{path}: cannot read the {what} ({exc.strerror}).") from exc
    finally:
        os.close(fd)


def lfs_pointer_problem(path, what):
    """The message for a Git LFS pointer found where the `what` file `path` should be."""
    return (f"{path}: is a Git LFS pointer (a small text naming the real file), not the {what}; "
            f"fetch the real files with `git lfs pull` in the repository's clone (or download "
            f"the file itself)")


def _checkpoint_files(prefix, version):
    if version == 2:
        return [prefix + _INDEX_SUFFIX] + data_files(prefix)
    return file_systems.glob(glob.escape(prefix) + "-?????-of-?????") or [prefix]


def regular_file_size(path):
    """The size of input file `path` -> int; CheckpointError unless it is a regular file."""
    if file_systems.is_url(path):
        return file_systems.file_size(path, "checkpoint file")
    try:
        info = os.stat(path)
    except OSError as exc:
        raise errors.CheckpointError(f"{path}: cannot read it ({exc.strerror}).") from exc
    if not stat.S_ISREG(info.st_mode):
        raise errors.CheckpointError(
            f"{path}: is {_kind(info.st_mode)}, not a regular file; give a checkpoint whose "
            f"files are regular files (copy them).")
    return info.st_size


def open_input(path, what):
    """A file descriptor open for reading on input file `path`, a regular file -> int.

    Opened without blocking (a FIFO's open would wait for a writer), then checked on the open
    file, so a file swapped after a look by name is caught. The caller closes it.
    Raises CheckpointError naming `path` (`what` names the kind of file) if it cannot be opened
    or is not a regular file.
    """
    path = tf_paths.given_path(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise errors.CheckpointError(f"{path}: cannot read the {what} ({exc.strerror}).") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise errors.CheckpointError(f"{path}: the {what} is {_kind(mode)}, not a regular file; "
                                     f"give the {what} itself.")
    return fd


def read_input(path, limit, what):
    """The bytes of input file `path` -> bytearray, read without following it into a FIFO or
    device.

    Raises CheckpointError naming `path` if it is not a regular file or holds more than `limit`
    bytes (checked before reading; `what` names the kind of file in the message).
    """
    if file_systems.is_url(path):
        return file_systems.read_bytes(path, limit, what)
    fd = open_input(path, what)
    try:
        info = os.fstat(fd)
        if info.st_size > limit:
            raise errors.CheckpointError(
                f"{path}: the {what} has {info.st_size} bytes, more than any {what} ({limit}); "
                f"give the {what} itself.")
        # Read into one buffer of the announced size (one byte more: a file that grows is
        # caught): the peak is the file's size, not twice it as chunks joined would be.
        data = bytearray(info.st_size + 1)
        view, total = memoryview(data), 0
        while total < len(data):
            count = os.readv(fd, [view[total:total + (1 << 24)]])
            if not count:
                break
            total += count
        view.release()
        if total > info.st_size:
            raise errors.CheckpointError(f"{path}: the {what} grows while it is read; give a "
                                         f"{what} that no other program writes.")
        del data[total:]
        return data
    except OSError as exc:
        raise errors.CheckpointError(f"{path}: cannot read the {what} ({exc.strerror}).") from exc
    finally:
        os.close(fd)


def _kind(mode):
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a file"


def _resolve(path):
    """(prefix, version) for `path`, following the forms `open_checkpoint` accepts."""
    if file_systems.isdir(path):
        return _resolve(_latest_in(path))
    if os.path.basename(path) == state_file.STATE_FILE and file_systems.isfile(path):
        return _resolve(_latest_in(os.path.dirname(path) or "."))
    if path.endswith(_INDEX_SUFFIX) and file_systems.isfile(path):
        return _hint(path, path[:-len(_INDEX_SUFFIX)]), 2
    data = _DATA_RE.search(path)
    if data:
        return _hint(path, path[:data.start()]), 2
    if path.endswith(_META_SUFFIX) and file_systems.isfile(path):
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
    return (file_systems.isfile(prefix + _INDEX_SUFFIX) or file_systems.isfile(prefix)
            or bool(file_systems.glob(glob.escape(prefix) + "-?????-of-?????")))


def _version(prefix):
    return 2 if file_systems.isfile(prefix + _INDEX_SUFFIX) else 1


def _hint(given, prefix):
    _LOG.info("%s is part of the checkpoint %s: reading the whole checkpoint", given, prefix)
    return prefix


def _latest_in(folder):
    """The checkpoint the `checkpoint` state file of `folder` names (relative to `folder` if moved)."""
    state_path = os.path.join(folder, state_file.STATE_FILE)
    state = state_file.read_state(folder)
    if state is None or not state.model_checkpoint_path:
        found = file_systems.glob(os.path.join(glob.escape(folder), "*" + _INDEX_SUFFIX))
        choices = ", ".join(p[:-len(_INDEX_SUFFIX)] for p in found[:3]) or "none found"
        raise errors.CheckpointError(
            f"{folder}: no `checkpoint` state file names a checkpoint here; give a checkpoint "
            f"prefix (candidates: {choices}).")
    named = state.model_checkpoint_path
    latest = named if os.path.isabs(named) else os.path.join(folder, named)
    if file_systems.is_url(folder) != file_systems.is_url(latest):  # never from bucket to disk
        latest = os.path.join(folder, os.path.basename(named))
    if not _exists(latest):
        latest = os.path.join(folder, os.path.basename(latest))  # the folder was moved
        if not _exists(latest):
            raise errors.CheckpointError(
                f"{state_path}: names {named}, which does not exist; give the checkpoint prefix "
                f"instead of the folder.")
    if os.path.basename(latest) == state_file.STATE_FILE or file_systems.isdir(latest):
        raise errors.CheckpointError(  # reading it would follow the state file again, forever
            f"{state_path}: names {named}, which is a state file or a folder, not a checkpoint; "
            f"give the checkpoint prefix instead of the folder.")
    return latest


def data_files(prefix):
    """The V2 data files of `prefix` on disk, sorted."""
    return file_systems.glob(glob.escape(prefix) + ".data-?????-of-?????")
