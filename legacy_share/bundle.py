"""The V2 checkpoint index (`.index`): a leveldb-style table of BundleEntryProtos, checked in Python.

TensorFlow's CheckpointReader aborts the whole process (a C++ CHECK) on some index entries,
and allocates what an entry declares before it reads anything. `check_index` walks the table
first, one block at a time (memory bounded by the largest block, not by the file): the footer's
magic, every block's CRC32C, the header, then each entry's dtype, rank, shape, shard, slices
and its byte range against the size of its data file.

Table layout (leveldb): blocks of entries, each followed by a 1-byte kind and a masked CRC32C;
a 48-byte footer holds the handles (varint offset, varint size) of the meta and index blocks;
the index block's entries are the handles of the data blocks.
"""

import math
import os
import struct

import google_crc32c  # its own pure-Python code answers where its C extension cannot load

from legacy_share import errors

__all__ = ["MAGIC", "MAX_RANK", "crc32c", "masked_crc32c", "read_varint", "table_blocks",
           "table_entries", "check_index", "entry_problem"]

MAGIC = b"\x57\xfb\x80\x8b\x24\x75\x47\xdb"
FOOTER_SIZE = 48
TRAILER_SIZE = 5  # kind byte + masked CRC32C
MAX_RANK = 254  # TensorShape's limit; a deeper shape is a CHECK failure in TensorFlow
MAX_BLOCK = 64 << 20  # TensorFlow writes blocks of ~256 KiB; one entry lists at most its slices
_STRING_DTYPE = 7
_UNSIZED_DTYPES = (20, 21)  # resource, variant: no fixed size per element


class _Corrupt(Exception):
    pass


def crc32c(data):
    """CRC32C (Castagnoli) of `data` (bytes-like) -> int."""
    return google_crc32c.value(bytes(data))


def masked_crc32c(data):
    """The masked CRC32C leveldb stores after a block (`data` = block bytes + kind byte) -> int."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_varint(data, pos):
    """Decodes the varint64 at `data[pos]` -> (value, position after it).

    Raises:
      IndexError: `data` ends inside the varint; ValueError: it is longer than 10 bytes.
    """
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
        if shift > 63:
            raise ValueError("bad varint")


def table_blocks(data):
    """(offset, size) of every block of the table `data` (bytes): meta, index, then data blocks.

    For tools that rewrite a table (tests repair the checksums of blocks they mutate).
    Raises ValueError if `data` is not a table.
    """
    try:
        table = _Table(_BytesSource(data))
        blocks = list(table.handles)
        for _, handle in _block_entries(table.block(table.handles[1])[1]):
            blocks.append(_handle(handle))
    except (_Corrupt, IndexError, struct.error) as exc:
        raise ValueError(f"not a table ({exc or 'truncated'})") from exc
    return blocks


def table_entries(data):
    """(key, value) of every entry of the table `data` (bytes), in order; [] if compressed.

    Raises ValueError if `data` is not a table or a block checksum does not match.
    """
    try:
        return list(_Table(_BytesSource(data)).entries())
    except (_Corrupt, IndexError, struct.error) as exc:
        raise ValueError(f"not a table ({exc or 'truncated'})") from exc


def check_index(path, fd, data_file=None):
    """Raises CheckpointError unless every entry of V2 index `path` is one TensorFlow can take.

    Args:
      path: the `.index` file, for messages.
      fd: a file descriptor open on it for reading (reading.open_input: a regular file), or
        an object with `read(offset, size)` and `size` (a file at a URL); the caller closes it.
      data_file: callable(shard_id, num_shards) -> (path, size in bytes) of that data file, or
        None when it is missing (then its byte ranges are not checked).
    Raises:
      CheckpointError: naming `path` and the first problem found.
    """
    from tensorflow.core.protobuf import tensor_bundle_pb2  # pylint: disable=import-outside-toplevel
    header = tensor_bundle_pb2.BundleHeaderProto()
    entry = tensor_bundle_pb2.BundleEntryProto()
    first, checking = True, True
    try:
        source = _FileSource(fd) if isinstance(fd, int) else fd
        for key, value in _Table(source).entries():
            if first and key != b"":
                checking = False  # no header: walk on for the table's structure only
            first, is_header = False, first
            if not checking:
                continue
            problem = _parse(header if is_header else entry, key, value)
            if is_header and not problem and header.num_shards < 1:
                problem = f"says {header.num_shards} data files"
            if not is_header and not problem:
                problem = entry_problem(entry, header.num_shards)
            if not is_header and not problem and not entry.slices and data_file:
                _check_range(entry, key, data_file(entry.shard_id, header.num_shards))
            if problem:
                name = key.decode("utf-8", "replace")
                raise errors.CheckpointError(
                    f"{path}: corrupt index entry {name or '(header)'!r}: {problem}; use an "
                    f"intact copy of the checkpoint.")
    except (_Corrupt, IndexError, ValueError, struct.error) as exc:
        raise errors.CheckpointError(
            f"{path}: not a readable V2 index ({exc or 'truncated'}); give the prefix of a "
            f"checkpoint written by tf.compat.v1.train.Saver, or an intact copy of it.") from exc
    except OSError as exc:
        raise errors.CheckpointError(f"{path}: cannot read the index ({exc.strerror}).") from exc


def _parse(proto, key, value):
    try:
        if not key.startswith(b"\x00"):  # slices of partitioned tensors have binary keys
            key.decode("utf-8")
        proto.ParseFromString(value)
    except UnicodeDecodeError:
        return "the name is not UTF-8"
    except Exception as exc:  # pylint: disable=broad-except  # protobuf's DecodeError varies
        return f"does not parse ({type(exc).__name__})"
    return ""


def _check_range(entry, key, data_file):
    if data_file is not None and entry.offset + entry.size > data_file[1]:
        raise errors.CheckpointError(
            f"{data_file[0]}: is truncated: it has {data_file[1]} bytes, and tensor "
            f"{key.decode('utf-8', 'replace')!r} lies at bytes {entry.offset}.."
            f"{entry.offset + entry.size}; copy the complete data files again.")


def entry_problem(entry, num_shards):
    """What is wrong with BundleEntryProto `entry` of an index of `num_shards` data files ('' if nothing)."""
    from legacy_share._tf import tf  # pylint: disable=import-outside-toplevel
    try:
        dtype = tf.dtypes.as_dtype(entry.dtype)
    except TypeError:
        return f"unknown dtype {entry.dtype}"
    if dtype._is_ref_dtype:  # pylint: disable=protected-access  # never stored; TF aborts on them
        return f"reference dtype {dtype.name}"
    if entry.shape.unknown_rank or len(entry.shape.dim) > MAX_RANK:
        return f"rank {len(entry.shape.dim)} (at most {MAX_RANK})"
    dims = [d.size for d in entry.shape.dim]
    if any(d < 0 for d in dims):
        return f"invalid shape {dims}"
    elements = math.prod(dims)
    if elements >= 2 ** 62:
        return f"impossible shape {dims}"
    if entry.slices:  # the full tensor of a partitioned variable: its slices carry the data
        return _slices_problem(entry, dims)
    if entry.shard_id >= max(num_shards, 1):
        return f"data file {entry.shard_id} of {num_shards}"
    if entry.dtype == _STRING_DTYPE:
        if entry.size < elements + 4:  # a varint length per element, then a CRC32C
            return f"{elements} strings cannot fit in {entry.size} bytes"
    elif entry.dtype not in _UNSIZED_DTYPES and entry.size != elements * dtype.size:
        return f"{entry.size} bytes for {elements} x {dtype.name}"
    return ""


def _slices_problem(entry, dims):
    for piece in entry.slices:
        if len(piece.extent) != len(dims):
            return f"slice of rank {len(piece.extent)} in a tensor of shape {dims}"
        for extent, dim in zip(piece.extent, dims):
            length = extent.length if extent.HasField("length") else dim - extent.start
            if extent.start < 0 or length < 0 or extent.start + length > dim:
                return f"slice {extent.start}+{length} outside dimension {dim}"
    return ""


class _BytesSource:
    def __init__(self, data):
        self.data, self.size = bytes(data), len(data)

    def read(self, offset, size):
        return self.data[offset:offset + size]


class _FileSource:
    def __init__(self, fd):
        self.fd, self.size = fd, os.fstat(fd).st_size

    def read(self, offset, size):
        parts = []
        while size > 0:
            part = os.pread(self.fd, min(size, 1 << 24), offset)
            if not part:
                raise _Corrupt("the file ends too soon")
            parts.append(part)
            offset, size = offset + len(part), size - len(part)
        return b"".join(parts)


class _Table:
    """A table read block by block from `source` (.read(offset, size), .size)."""

    def __init__(self, source):
        self.source = source
        if source.size < FOOTER_SIZE:
            raise _Corrupt("bad magic number")
        footer = source.read(source.size - FOOTER_SIZE, FOOTER_SIZE)
        if footer[-8:] != MAGIC:
            raise _Corrupt("bad magic number")
        meta = _handle(footer)
        index = _handle(footer[_handle_length(footer):])
        self.handles = [meta, index]

    def block(self, handle):
        """(kind, bytes) of the block at `handle` (offset, size), its checksum checked."""
        offset, size = handle
        if size > MAX_BLOCK:
            raise _Corrupt(f"a block of {size} bytes (at most {MAX_BLOCK})")
        if offset + size + TRAILER_SIZE > self.source.size:
            raise _Corrupt("block beyond the end of the file")
        data = self.source.read(offset, size + TRAILER_SIZE)
        stored = struct.unpack("<I", data[-4:])[0]
        if stored != masked_crc32c(data[:-4]):
            raise _Corrupt("block checksum mismatch")
        return data[size], data[:size]

    def entries(self):
        """Yields (key, value) of every entry, block by block; stops at a compressed block."""
        kind, index = self.block(self.handles[1])
        if kind != 0:
            return
        for _, handle in _block_entries(index):
            kind, block = self.block(_handle(handle))
            if kind != 0:
                return  # compressed: TensorFlow's own checks answer
            yield from _block_entries(block)


def _handle(data):
    offset, pos = read_varint(data, 0)
    size, _ = read_varint(data, pos)
    return offset, size


def _handle_length(data):
    _, pos = read_varint(data, 0)
    return read_varint(data, pos)[1]


def _block_entries(block):
    if len(block) < 4:
        raise _Corrupt("bad restart array")
    restarts = struct.unpack("<I", block[-4:])[0]
    end = len(block) - 4 - 4 * restarts
    if end < 0:
        raise _Corrupt("bad restart array")
    pos, key = 0, b""
    while pos < end:
        shared, pos = read_varint(block, pos)
        unshared, pos = read_varint(block, pos)
        size, pos = read_varint(block, pos)
        if shared > len(key) or pos + unshared + size > end:
            raise _Corrupt("entry beyond its block")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + size]
        pos += size
