"""Opens a TF checkpoint (V1 file, V2 prefix, folder, `.index` or `.data-*` path) for reading.

Metadata (names, full shapes, dtypes) comes from the index alone, so planning works when
the data files are missing; `Checkpoint.read` then fails naming the missing file.
"""

import glob
import logging
import os
import re
import struct

import numpy as np

from legacy_share import errors
from legacy_share._tf import tf, tf1
from legacy_share.planning import TensorSpec

__all__ = ["Checkpoint", "open_checkpoint"]

_LOG = logging.getLogger("legacy_share")
_INDEX_SUFFIX = ".index"
_DATA_RE = re.compile(r"\.data-\d{5}-of-(\d{5})$")
_DATA_NAMED_RE = re.compile(r"\.data-\d{5}-of-\d{5}")
_META_SUFFIX = ".meta"
STATE_FILE = "checkpoint"  # the state file Saver keeps in a checkpoint folder


class Checkpoint:
    """A checkpoint opened for reading: `prefix`, `version` (1 or 2), `specs`, `files`, `read(name)`."""

    def __init__(self, prefix, version, reader):
        self.prefix = prefix
        self.version = version
        self._reader = reader
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
        if self.version == 1:
            return sorted(glob.glob(glob.escape(self.prefix) + "-?????-of-?????")) or [self.prefix]
        return [self.prefix + _INDEX_SUFFIX] + data_files(self.prefix)

    def missing_files(self):
        """V2 data files the index needs that are not on disk (by the `-of-N` count of those present)."""
        if self.version == 1:
            return []
        present = data_files(self.prefix)
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
                f"is truncated ({first_line(exc)}); copy the complete data files again.") from exc
        except (tf.errors.OpError, ValueError) as exc:
            named = _DATA_NAMED_RE.search(str(exc))  # the path in it may hold spaces: rebuild it
            named = self.prefix + named.group(0) if named else None
            missing = [named] if named and not os.path.isfile(named) else []
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
    next to its checkpoint.
    """
    path = os.path.expanduser(os.fspath(path))
    prefix, version = _resolve(path)
    if version == 2:
        check_index(prefix + _INDEX_SUFFIX)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as exc:
        kind = "V2 index" if version == 2 else "V1 checkpoint file"
        raise errors.CheckpointError(
            f"{path}: not a readable {kind} ({first_line(exc)}); give the prefix of a checkpoint "
            f"written by tf.compat.v1.train.Saver.") from exc
    ckpt = Checkpoint(prefix, version, reader)
    if version == 1 and not ckpt.specs:
        raise errors.CheckpointError(f"{path}: holds no tensor; give the prefix of a checkpoint "
                                     f"written by tf.compat.v1.train.Saver.")
    return ckpt


def _resolve(path):
    """(prefix, version) for `path`, following the forms `open_checkpoint` accepts."""
    if os.path.isdir(path):
        return _resolve(_latest_in(path))
    if os.path.basename(path) == STATE_FILE and os.path.isfile(path):
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
    state_path = os.path.join(folder, STATE_FILE)
    try:
        state = tf1.train.get_checkpoint_state(folder)
    except (tf.errors.OpError, ValueError) as exc:
        raise errors.CheckpointError(
            f"{state_path}: unreadable state file ({first_line(exc)}); give the checkpoint "
            f"prefix instead of the folder.") from exc
    if state is None or not state.model_checkpoint_path:
        found = sorted(glob.glob(os.path.join(glob.escape(folder), "*" + _INDEX_SUFFIX)))
        choices = ", ".join(p[:-len(_INDEX_SUFFIX)] for p in found[:3]) or "none found"
        raise errors.CheckpointError(
            f"{folder}: no `checkpoint` state file names a checkpoint here; give a checkpoint "
            f"prefix (candidates: {choices}).")
    latest = state.model_checkpoint_path  # get_checkpoint_state joined a relative one to `folder`
    if not _exists(latest):
        moved = os.path.join(folder, os.path.basename(latest))
        if _exists(moved):
            return moved
        raise errors.CheckpointError(
            f"{state_path}: names {state.model_checkpoint_path}, which does not exist; give the "
            f"checkpoint prefix instead of the folder.")
    return latest


def check_index(path):
    """Raises CheckpointError unless every entry of the V2 index `path` is one TensorFlow can take.

    TensorFlow's CheckpointReader aborts the whole process (a C++ CHECK) on an index entry
    that does not parse, so the table is walked here first: the block checksums, the header,
    then each BundleEntryProto (dtype, shape, shard id, slices).
    """
    from tensorflow.core.protobuf import tensor_bundle_pb2  # pylint: disable=import-outside-toplevel
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise errors.CheckpointError(f"{path}: cannot read the index ({exc.strerror}).") from exc
    try:
        entries = list(_table_entries(data))
    except (IndexError, struct.error, _CorruptTable) as exc:
        raise errors.CheckpointError(
            f"{path}: not a readable V2 index ({exc or 'truncated'}); give the prefix of a "
            f"checkpoint written by tf.compat.v1.train.Saver, or an intact copy of it.") from exc
    if entries is None or not entries or entries[0][0] != b"":
        return  # compressed blocks or no header: TensorFlow's own checks answer
    header = tensor_bundle_pb2.BundleHeaderProto()
    entry = tensor_bundle_pb2.BundleEntryProto()
    for key, value in entries:
        proto = header if key == b"" else entry
        name = key.decode("utf-8", "replace")
        try:
            if not key.startswith(b"\x00"):  # slices of partitioned tensors have binary keys
                key.decode("utf-8")
            proto.ParseFromString(value)
            problem = "" if key == b"" else _entry_problem(entry, header.num_shards)
        except UnicodeDecodeError:
            problem = "the name is not UTF-8"
        except Exception as exc:  # pylint: disable=broad-except  # protobuf's DecodeError varies
            problem = f"does not parse ({type(exc).__name__})"
        if key == b"" and not problem and header.num_shards < 1:
            problem = f"says {header.num_shards} data files"
        if problem:
            raise errors.CheckpointError(
                f"{path}: corrupt index entry {name or '(header)'!r}: {problem}; use an intact "
                f"copy of the checkpoint.")


class _CorruptTable(Exception):
    pass


def _varint(data, pos):
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
        if shift > 63:
            raise _CorruptTable("bad varint")


def _block(data, handle_bytes):
    offset, pos = _varint(handle_bytes, 0)
    size, _ = _varint(handle_bytes, pos)
    if offset + size + 5 > len(data):
        raise _CorruptTable("block beyond the end of the file")
    kind = data[offset + size]
    stored = struct.unpack("<I", data[offset + size + 1:offset + size + 5])[0]
    crc = ((stored - 0xA282EAD8) & 0xFFFFFFFF)
    crc = ((crc >> 17) | (crc << 15)) & 0xFFFFFFFF
    if crc != _crc32c(data[offset:offset + size + 1]):
        raise _CorruptTable("block checksum mismatch")
    return kind, data[offset:offset + size]


def _block_entries(block):
    restarts = struct.unpack("<I", block[-4:])[0]
    end = len(block) - 4 - 4 * restarts
    if end < 0:
        raise _CorruptTable("bad restart array")
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        size, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + size > end:
            raise _CorruptTable("entry beyond its block")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + size]
        pos += size


def _table_entries(data):
    """(key, value) of every entry of a leveldb-style table; None if a block is compressed."""
    if len(data) < 48 or data[-8:] != b"\x57\xfb\x80\x8b\x24\x75\x47\xdb":
        raise _CorruptTable("bad magic number")
    footer = data[-48:]
    _, pos = _varint(footer, 0)
    _, pos = _varint(footer, pos)
    kind, index = _block(data, footer[pos:])
    if kind != 0:
        return None
    result = []
    for _, handle_bytes in _block_entries(index):
        kind, block = _block(data, handle_bytes)
        if kind != 0:
            return None
        result.extend(_block_entries(block))
    return result


def _entry_problem(entry, num_shards):
    """What is wrong with a BundleEntryProto ('' if nothing)."""
    try:
        dtype = tf.dtypes.as_dtype(entry.dtype)
    except TypeError:
        return f"unknown dtype {entry.dtype}"
    if dtype._is_ref_dtype:  # pylint: disable=protected-access  # never stored; TF aborts on them
        return f"reference dtype {dtype.name}"
    dims = [d.size for d in entry.shape.dim]
    if entry.shape.unknown_rank or any(d < 0 for d in dims):
        return f"invalid shape {dims}"
    if int(np.prod(dims, dtype=np.float64)) >= 2 ** 62:
        return f"impossible shape {dims}"
    if not entry.slices and entry.shard_id >= max(num_shards, 1):
        return f"data file {entry.shard_id} of {num_shards}"
    for piece in entry.slices:
        if len(piece.extent) != len(dims):
            return f"slice of rank {len(piece.extent)} in a tensor of shape {dims}"
        for extent, dim in zip(piece.extent, dims):
            length = extent.length if extent.HasField("length") else dim - extent.start
            if extent.start < 0 or length < 0 or extent.start + length > dim:
                return f"slice {extent.start}+{length} outside dimension {dim}"
    return ""


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def _crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def data_files(prefix):
    """The V2 data files of `prefix` on disk, sorted."""
    return sorted(glob.glob(glob.escape(prefix) + ".data-?????-of-?????"))


def first_line(exc):
    """The first line of an exception's message (a TF error's `message`), or its type's name."""
    message = getattr(exc, "message", None) or str(exc)
    return message.strip().splitlines()[0] if message.strip() else type(exc).__name__
