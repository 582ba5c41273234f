"""Checks a checkpoint against the variables of a MetaGraphDef, by parsing the proto only.

The graph is never imported nor run: variables come from the `variables` collection
(VariableDef protos), shapes and dtypes from the attrs of their VariableV2 / VarHandleOp nodes.
"""

import dataclasses
import os
from typing import Optional, Tuple

from google.protobuf import message as protobuf_message
from google.protobuf import text_format

from legacy_share import errors
from legacy_share.planning import TensorSpec
from legacy_share.reading import (LFS_POINTER_START, lfs_pointer_problem, open_checkpoint,
                                  read_head, read_input)
from legacy_share.reports import JsonReport
from legacy_share._tf import tf, tf1

__all__ = ["Mismatch", "VerifyReport", "verify_checkpoint", "read_meta_graph_variables",
           "read_meta_graph"]

_VARIABLE_OPS = ("VariableV2", "Variable", "VarHandleOp")
_META_LIMIT = (2 << 30) - 1  # protobuf cannot parse a larger message


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """A variable whose checkpoint shape/dtype differs from the graph's (None: unknown dimension)."""

    name: str
    ckpt_shape: Tuple[int, ...]
    ckpt_dtype: str
    graph_shape: Optional[Tuple[Optional[int], ...]]
    graph_dtype: str


@dataclasses.dataclass(frozen=True)
class VerifyReport(JsonReport):
    """`missing`: graph variables absent from the checkpoint; `unexpected`: the reverse."""

    checkpoint: str
    meta_graph: str
    missing: Tuple[TensorSpec, ...]
    unexpected: Tuple[TensorSpec, ...]
    mismatched: Tuple[Mismatch, ...]
    matched: int = 0

    @property
    def ok(self):
        return not (self.missing or self.unexpected or self.mismatched)

    def to_dict(self):
        def spec(s):
            return {"name": s.name, "shape": _shape_list(s.shape), "dtype": s.dtype}

        return {
            "checkpoint": self.checkpoint,
            "meta_graph": self.meta_graph,
            "ok": self.ok,
            "matched": self.matched,
            "missing": [spec(s) for s in self.missing],
            "unexpected": [spec(s) for s in self.unexpected],
            "mismatched": [{"name": m.name, "checkpoint_shape": list(m.ckpt_shape),
                            "checkpoint_dtype": m.ckpt_dtype,
                            "graph_shape": _shape_list(m.graph_shape),
                            "graph_dtype": m.graph_dtype} for m in self.mismatched],
        }

    def format(self):
        """Human-readable report: one line per problem, then a summary line."""
        lines = []
        for s in self.missing:
            lines.append(f"missing     {s.name}  {s.dtype}{_shape_list(s.shape)}  (in the graph, "
                         f"not in the checkpoint)")
        for s in self.unexpected:
            lines.append(f"unexpected  {s.name}  {s.dtype}{_shape_list(s.shape)}  (in the "
                         f"checkpoint, not in the graph)")
        for m in self.mismatched:
            lines.append(f"mismatched  {m.name}  checkpoint {m.ckpt_dtype}{list(m.ckpt_shape)}  "
                         f"graph {m.graph_dtype}{_shape_list(m.graph_shape)}")
        verdict = "OK" if self.ok else "FAILED"
        lines.append(f"{verdict}: {self.matched} variable(s) match; {len(self.missing)} missing, "
                     f"{len(self.unexpected)} unexpected, {len(self.mismatched)} mismatched "
                     f"({self.checkpoint} against {self.meta_graph})")
        return "\n".join(lines)


def verify_checkpoint(ckpt, meta_graph_path):
    """Compares the tensors of a checkpoint with the variables a graph will restore.

    The `.meta` is parsed, never imported nor run: a hostile graph's ops do not execute.

    Args:
      ckpt: a checkpoint (prefix, folder, V1 file or .index), e.g. the output of `migrate`.
      meta_graph_path: the MetaGraphDef (`.meta`) of the graph that will restore it.
    Returns:
      A VerifyReport: tensors missing from the checkpoint, tensors the graph has no variable
      for, and shape / dtype mismatches (`ok` when there are none).
    Raises:
      CheckpointError: either file cannot be read or is not what it claims to be.
    """
    checkpoint = open_checkpoint(ckpt)
    graph = {spec.name: spec for spec in read_meta_graph_variables(meta_graph_path)}
    stored = {spec.name: spec for spec in checkpoint.specs}
    missing = tuple(graph[name] for name in sorted(set(graph) - set(stored)))
    unexpected = tuple(stored[name] for name in sorted(set(stored) - set(graph)))
    mismatched = []
    for name in sorted(set(graph) & set(stored)):
        want, got = graph[name], stored[name]
        if want.dtype != got.dtype or not _compatible(want.shape, got.shape):
            mismatched.append(Mismatch(name, got.shape, got.dtype, want.shape, want.dtype))
    matched = len(set(graph) & set(stored)) - len(mismatched)
    return VerifyReport(checkpoint.prefix, str(meta_graph_path), missing, unexpected,
                        tuple(mismatched), matched)


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
        text_format.ParseLines((bytes(line) for line in data.split(b"\n")), meta)
    except (UnicodeDecodeError, text_format.ParseError, RecursionError) as exc:
        nested = " (nested too deeply)" if isinstance(exc, RecursionError) else ""
        raise errors.CheckpointError(not_meta.format(nested)) from exc
    return meta


def _first_byte(path):
    return read_head(os.fspath(path), 1, "MetaGraphDef")  # a local file or a URL


def _node_shape(node):
    proto = node.attr["shape"].shape
    if proto.unknown_rank:
        return None
    return tuple(None if d.size < 0 else int(d.size) for d in proto.dim)


def _compatible(graph_shape, ckpt_shape):
    if graph_shape is None:
        return True
    return len(graph_shape) == len(ckpt_shape) and all(
        g is None or g == c for g, c in zip(graph_shape, ckpt_shape))


def _shape_list(shape):
    return None if shape is None else list(shape)
