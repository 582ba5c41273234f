"""The MetaGraphDef reader: a binary or text `.meta` file parsed (never imported nor run).

Hostile input: a regular file only, its size checked before it is read (protobuf parses at
most 2 GiB), a Git LFS pointer named as such, a text graph parsed line by line.
"""

import os

from google.protobuf import message as protobuf_message
from google.protobuf import text_format

from legacy_share import errors
from legacy_share import tf_paths
from legacy_share.plans import TensorSpec
from legacy_share.reading import LFS_POINTER_START, lfs_pointer_problem, read_head, read_input
from legacy_share._tf import tf, tf1

__all__ = ["read_meta_graph", "read_meta_graph_variables"]

_VARIABLE_OPS = ("VariableV2", "Variable", "VarHandleOp")
_META_LIMIT = (2 << 30) - 1  # protobuf cannot parse a larger message


def read_meta_graph_variables(meta_graph_path):
    """TensorSpecs (checkpoint names, full shapes, dtypes) of the saved variables of a .meta file."""
    meta = read_meta_graph(meta_graph_path)
    nodes = {node.name: node for node in meta.graph_def.node}
    collection = meta.collection_def.get("variables")
    if collection is None or not collection.bytes_list.value:
        raise errors.CheckpointError(
            f"{meta_graph_path}: has no `variables` collection; export it with "
            f"tf.compat.v1.train.export_meta_graph or Saver.save.")
    specs = {}
    for serialized in collection.bytes_list.value:
        variable = _variable_def()
        try:
            variable.ParseFromString(serialized)
        except protobuf_message.DecodeError as exc:
            raise errors.CheckpointError(
                f"{meta_graph_path}: an entry of its `variables` collection is not a VariableDef "
                f"({exc}); the MetaGraphDef is corrupt, export it again.") from exc
        op_name = variable.variable_name.split(":")[0]
        node = nodes.get(op_name)
        if node is None or node.op not in _VARIABLE_OPS:
            raise errors.CheckpointError(
                f"{meta_graph_path}: variable {op_name} has no variable node in the graph_def; "
                f"the MetaGraphDef is inconsistent, export it again.")
        try:
            dtype = tf.as_dtype(node.attr["dtype"].type).name
        except TypeError as exc:
            raise errors.CheckpointError(
                f"{meta_graph_path}: variable {op_name} has unknown dtype enum "
                f"{node.attr['dtype'].type}; the MetaGraphDef is corrupt, export it again.") from exc
        if variable.HasField("save_slice_info_def"):
            info = variable.save_slice_info_def
            specs[info.full_name] = TensorSpec(info.full_name, tuple(info.full_shape), dtype)
        else:
            specs[op_name] = TensorSpec(op_name, _node_shape(node), dtype)
    return sorted(specs.values(), key=lambda spec: spec.name)


def _variable_def():
    # VariableDef is not exported under tf.*; its proto module is part of TF's public protos.
    from tensorflow.core.framework import variable_pb2  # pylint: disable=import-outside-toplevel
    return variable_pb2.VariableDef()


def read_meta_graph(path):
    """The MetaGraphDef proto of a binary or text `.meta` file; CheckpointError if it is none.

    The error's `file` is `path` (for `--json` errors: the file at fault is the graph).
    """
    path = tf_paths.given_path(path, "MetaGraphDef")
    try:
        return _parse_meta_graph(path)
    except errors.CheckpointError as exc:
        exc.file = path
        raise


def _parse_meta_graph(path):
    not_meta = (f"{path}: not a MetaGraphDef (binary or text){{}}; give the .meta file written "
                f"by Saver.save or export_meta_graph.")
    if _first_byte(path) == b"\0":  # no tag nor text starts so: refused before a sparse GiB
        raise errors.CheckpointError(not_meta.format(" (it starts with a zero byte)"))
    data = read_input(path, _META_LIMIT, "MetaGraphDef")
    if data.startswith(LFS_POINTER_START):
        raise errors.CheckpointError(lfs_pointer_problem(path, "MetaGraphDef") + ".")
    meta = tf1.MetaGraphDef()
    try:
        try:
            meta.ParseFromString(data)
        except TypeError:  # older protobuf (TF 2.12's) takes bytes only: one copy then
            meta.ParseFromString(bytes(data))
        if meta.graph_def.node or meta.collection_def:
            return meta
    except protobuf_message.DecodeError:
        pass
    if b"\0" in data:  # text holds no zero byte; parsing it as text would copy it twice
        raise errors.CheckpointError(not_meta.format(""))
    meta = tf1.MetaGraphDef()
    try:
        # Lines of bytes, each decoded as it is parsed: never a second copy of the whole file.
        text_format.ParseLines(_lines(data), meta)
    except (UnicodeDecodeError, text_format.ParseError, RecursionError) as exc:
        nested = " (nested too deeply)" if isinstance(exc, RecursionError) else ""
        raise errors.CheckpointError(not_meta.format(nested)) from exc
    return meta


def _lines(data):
    """The lines of `data` as bytes, one at a time (a list of them would be a second copy)."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        yield bytes(data[start:end])
        start = end


def _first_byte(path):
    return read_head(os.fspath(path), 1, "MetaGraphDef")  # a local file or a URL


def _node_shape(node):
    proto = node.attr["shape"].shape
    if proto.unknown_rank:
        return None
    return tuple(None if d.size < 0 else int(d.size) for d in proto.dim)
